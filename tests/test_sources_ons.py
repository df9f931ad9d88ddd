"""Tests for the ONS PFA recorded-crime reader and the LAD → PFA lookup reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from needsled.sources import (
    NON_TERRITORIAL_PFAS,
    TERRITORIAL_PFAS,
    SourceFormatError,
    pfa_code_for_name,
    read_lad_pfa_lookup,
    read_ons_pfa_crime,
)

# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def pfa(shared_data: Path) -> pd.DataFrame:
    return read_ons_pfa_crime(shared_data / "ew_pfa" / "rec-crime-pfa.csv")


@pytest.fixture(scope="module")
def lookup(shared_data: Path) -> pd.DataFrame:
    return read_lad_pfa_lookup(shared_data / "lookups" / "lad21_to_pfa21_lookup.csv")


@pytest.mark.realdata
def test_43_territorial_pfas_and_4_non_territorial(pfa: pd.DataFrame) -> None:
    territorial = pfa[pfa["territorial"]]
    assert territorial["pfa_code"].nunique() == 43
    assert set(territorial["pfa_name"]) == set(TERRITORIAL_PFAS)
    other = pfa[~pfa["territorial"]]
    assert set(other["pfa_name"]) == set(NON_TERRITORIAL_PFAS)
    assert other["pfa_code"].isna().all()
    assert territorial["pfa_code"].notna().all()
    assert pfa.attrs["unmatched_pfa_names"] == ()


@pytest.mark.realdata
def test_dates_are_period_ends_and_the_odd_one_is_fixed(pfa: pd.DataFrame) -> None:
    dates = pd.DatetimeIndex(pfa["year_ending"].unique()).sort_values()
    assert len(dates) == 52
    assert dates.is_month_end.all()
    assert (dates[0], dates[-1]) == (pd.Timestamp("2003-03-31"), pd.Timestamp("2018-12-31"))
    odd = pfa[pfa["year_ending_as_published"] == "30-12-2017"]
    assert len(odd) > 0
    assert set(odd["year_ending"]) == {pd.Timestamp("2017-12-31")}


@pytest.mark.realdata
def test_known_published_value(pfa: pd.DataFrame) -> None:
    """README: Met sexual offences, year ending March 2018 = 19,721."""
    row = pfa[
        (pfa["pfa_name"] == "Metropolitan Police")
        & (pfa["offence"] == "Sexual offences")
        & (pfa["year_ending"] == pd.Timestamp("2018-03-31"))
    ]
    assert row["count"].item() == 19_721


@pytest.mark.realdata
def test_negative_rolling_totals_are_kept(pfa: pd.DataFrame) -> None:
    """25 published rows are negative (2013 fraud transfer, a few driving offences)."""
    negative = pfa[pfa["count"] < 0]
    assert len(negative) == 25
    assert set(negative["offence"]) == {
        "Fraud offences",
        "Death or serious injury caused by illegal driving",
    }


@pytest.mark.realdata
def test_builtin_pfa_table_matches_ons_lookup(lookup: pd.DataFrame) -> None:
    pfas = lookup[["pfa_code", "pfa_name"]].drop_duplicates()
    assert len(pfas) == 43
    assert set(pfas["pfa_code"]) == set(TERRITORIAL_PFAS.values())
    # Every lookup spelling resolves to the right code...
    for code, name in pfas.itertuples(index=False):
        assert pfa_code_for_name(name) == code, name
    # ...and these are exactly the spellings that differ from the recorded-crime file.
    by_code = {code: name for name, code in TERRITORIAL_PFAS.items()}
    differ = {n: by_code[c] for c, n in pfas.itertuples(index=False) if by_code[c] != n}
    assert differ == {
        "Devon & Cornwall": "Devon and Cornwall",
        "London, City of": "City of London",
    }


@pytest.mark.realdata
def test_lad_lookup_shape(lookup: pd.DataFrame) -> None:
    assert len(lookup) == 331
    counts = lookup["pfa_name"].value_counts()
    assert counts["Metropolitan Police"] == 32
    assert counts["London, City of"] == 1
    assert counts["Thames Valley"] == 13


def test_welsh_codes_are_w15_and_names_fold() -> None:
    assert pfa_code_for_name("dyfed-powys") == "W15000004"
    assert pfa_code_for_name("  Avon & Somerset ") == "E23000036"
    assert pfa_code_for_name("British Transport Police") is None
    assert pfa_code_for_name("Atlantis") is None


# --------------------------------------------------------------------- hand-made files

HEADER = "12 months ending,PFA,Region,Offence,Rolling year total number of offences"


def _write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    path = tmp_path / "pfa.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _error(path: Path, **kwargs: Any) -> str:
    with pytest.raises(SourceFormatError) as info:
        read_ons_pfa_crime(path, **kwargs)
    text = str(info.value)
    assert str(path) in text
    assert "How to fix:" in text
    return text


def test_reads_a_small_valid_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "31-03-2018,Kent,South East,Robbery,1000",
            "30-12-2017,Devon & Cornwall,South West,Robbery,-2",
            "31-03-2018,Action Fraud,Fraud: Action Fraud,Action Fraud,5",
        ],
    )
    out = read_ons_pfa_crime(path)
    assert out["pfa_code"].tolist()[:2] == ["E23000032", "E23000035"]
    assert pd.isna(out["pfa_code"].iloc[2])
    assert out["territorial"].tolist() == [True, True, False]
    assert out["year_ending"].iloc[1] == pd.Timestamp("2017-12-31")
    assert out["count"].tolist() == [1000, -2, 5]


def test_wrong_header(tmp_path: Path) -> None:
    text = _error(_write(tmp_path, ["31-03-2018,Kent,SE,Robbery,1"], header=HEADER.upper()))
    assert "row 1, column '#1': value '12 MONTHS ENDING'" in text


@pytest.mark.parametrize(
    ("date", "message"),
    [
        ("31-02-2018", "not a dd-mm-yyyy date"),
        ("2018-03-31", "not a dd-mm-yyyy date"),
        ("15-03-2018", "not the last day of a month"),
        ("30-03-2018", "not the last day of a month"),
    ],
)
def test_bad_dates(tmp_path: Path, date: str, message: str) -> None:
    path = _write(tmp_path, ["31-03-2018,Kent,SE,Robbery,1", f"{date},Kent,SE,Burglary,1"])
    text = _error(path)
    assert f"row 3, column '12 months ending': value {date!r}: {message}" in text


def test_date_fixes_can_be_extended(tmp_path: Path) -> None:
    path = _write(tmp_path, ["30-03-2018,Kent,SE,Robbery,1"])
    out = read_ons_pfa_crime(path, date_fixes={"30-03-2018": "31-03-2018"})
    assert out["year_ending"].iloc[0] == pd.Timestamp("2018-03-31")


def test_unknown_pfa_raises_or_is_kept_and_listed(tmp_path: Path) -> None:
    path = _write(tmp_path, ["31-03-2018,Kent,SE,Robbery,1", "31-03-2018,Devon & Cornwal,SW,X,1"])
    text = _error(path)
    assert "row 3, column 'PFA': value 'Devon & Cornwal'" in text
    out = read_ons_pfa_crime(path, on_unmatched="keep")
    assert out.attrs["unmatched_pfa_names"] == ("Devon & Cornwal",)
    assert out["territorial"].tolist() == [True, False]


@pytest.mark.parametrize("cell", ["abc", "", "12.5"])
def test_bad_count(tmp_path: Path, cell: str) -> None:
    path = _write(
        tmp_path, ["31-03-2018,Kent,SE,Robbery,1", f'31-03-2018,Kent,SE,Burglary,"{cell}"']
    )
    text = _error(path)
    assert f"row 3, column 'Rolling year total number of offences': value {cell!r}" in text


def test_duplicate_and_blank_rows_all_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            "31-03-2018,Kent,SE,Robbery,1",
            "31-03-2018,Kent,SE,Robbery,2",
            "31-03-2018,,SE,Robbery,2",
        ],
    )
    text = _error(path)
    assert "row 3, column 'PFA': value '31-03-2018 / Kent / Robbery': duplicate row" in text
    assert "row 4, column 'PFA': value '': blank value" in text


def test_bad_lookup_row(tmp_path: Path) -> None:
    path = tmp_path / "lookup.csv"
    path.write_text(
        "lad21cd,pfa21cd,pfa21nm\nE06000001,E23000013,Cleveland\nE06000001,E2300013,Cleveland\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceFormatError) as info:
        read_lad_pfa_lookup(path)
    text = str(info.value)
    assert str(path) in text
    assert "row 3, column 'pfa21cd': value 'E2300013': not a PFA code" in text
    assert "row 3, column 'lad21cd': value 'E06000001': duplicate row" in text
