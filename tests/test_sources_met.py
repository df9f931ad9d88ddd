"""Tests for the MPS borough-crime reader, the built-in borough table and GLA populations.

Real-data tests use the ``shared_data`` fixture (see ``conftest.py``). Malformed-file tests
write tiny hand-made CSVs into ``tmp_path``; each asserts that the message names the
file, the row and/or column and the offending value.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from needsled.sources import (
    LONDON_BOROUGHS,
    MetCrime,
    SourceFormatError,
    read_borough_codes,
    read_gla_borough_population,
    read_met_borough_crime,
)

MET_DIR = "london_mps_borough"
OLD_HIST = "MPS_Borough_Level_Crime_Historical_201004-202201.csv"
OLD_RECENT = "MPS_Borough_Level_Crime_recent24m_202202-202401.csv"
NEW_HIST = "MPS_Borough_Level_Crime_Historical_newformat_201004-202302.csv"
NEW_RECENT = "MPS_Borough_Level_Crime_recent24m_newformat_202303-202502.csv"
ALL_FILES = (OLD_HIST, OLD_RECENT, NEW_HIST, NEW_RECENT)


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def met(shared_data: Path) -> MetCrime:
    return read_met_borough_crime([shared_data / MET_DIR / f for f in ALL_FILES])


def _yearly(series: pd.Series) -> dict[int, int]:
    return {int(k): int(v) for k, v in series.groupby(series.index.year).sum().items()}


@pytest.mark.realdata
def test_builtin_borough_table_matches_lookup_file(shared_data: Path) -> None:
    lookup = read_borough_codes(shared_data / "lookups" / "london_borough_codes.csv")
    assert list(lookup.itertuples(index=False, name=None)) == list(LONDON_BOROUGHS)


@pytest.mark.realdata
def test_32_boroughs_with_gss_codes(met: MetCrime) -> None:
    boroughs = met.data[["area_code", "area_name"]].drop_duplicates()
    assert len(boroughs) == 32
    assert "E09000001" not in set(boroughs["area_code"])  # City of London: separate force
    expected = {code: name for code, name, _ in LONDON_BOROUGHS if code != "E09000001"}
    assert dict(boroughs.itertuples(index=False, name=None)) == expected


@pytest.mark.realdata
def test_continuous_months_without_gaps(met: MetCrime) -> None:
    months = met.month_sources["month"]
    assert str(months.iloc[0]) == "2010-04"
    assert str(months.iloc[-1]) == "2025-02"
    assert len(months) == 179
    assert met.gaps == ()
    assert (months.diff().iloc[1:].map(lambda d: d.n) == 1).all()
    per_series = met.data.groupby(["area_code", "major", "minor"])["month"].agg(["nunique", "size"])
    assert (per_series["nunique"] == 179).all()
    assert (per_series["size"] == 179).all()  # no duplicate months either


@pytest.mark.realdata
def test_default_precedence_uses_new_format_throughout(met: MetCrime) -> None:
    src = met.month_sources.groupby("source_file")["month"].agg(["min", "max", "size"])
    assert src.loc[NEW_HIST].tolist()[2] == 155
    assert str(src.loc[NEW_HIST, "max"]) == "2023-02"
    assert str(src.loc[NEW_RECENT, "min"]) == "2023-03"
    assert set(met.month_sources["taxonomy"]) == {"new"}
    assert [f.path.name for f in met.files] == [NEW_RECENT, NEW_HIST, OLD_RECENT, OLD_HIST]


@pytest.mark.realdata
def test_categories_use_new_upper_case_names(met: MetCrime) -> None:
    cats = set(met.data[["major", "minor"]].itertuples(index=False, name=None))
    assert ("SEXUAL OFFENCES", "RAPE") in cats
    assert ("SEXUAL OFFENCES", "OTHER SEXUAL OFFENCES") in cats
    assert all(major == major.upper() and minor == minor.upper() for major, minor in cats)
    assert met.warnings == ()
    assert met.unmatched_names == ()


@pytest.mark.realdata
def test_london_rape_yearly_totals_match_readme(met: MetCrime) -> None:
    """README: "about 7,700 (2017), 8,900 (2021), 9,200 (2022) and 8,800 (2024)".

    Those are rounded to the nearest hundred, so the stitched totals must lie within 50.
    They include the ``Unknown`` and airport rows: the published London totals do.
    The exact values are pinned too, so any change to the stitching shows up here.
    """
    yearly = _yearly(met.london_total(minor="RAPE"))
    measured = {2017: 7684, 2021: 8929, 2022: 9224, 2024: 8805}
    for year, readme in {2017: 7700, 2021: 8900, 2022: 9200, 2024: 8800}.items():
        assert abs(yearly[year] - readme) <= 50, (year, yearly[year])
        assert yearly[year] == measured[year]


@pytest.mark.realdata
def test_unknown_rows_are_kept_with_reasons_and_are_large(met: MetCrime) -> None:
    assert set(met.excluded["area_name"]) == {
        "Unknown",
        "London Heathrow and London City Airports",
    }
    assert met.excluded["reason"].str.len().gt(10).all()
    boroughs = _yearly(met.london_total(minor="RAPE", boroughs_only=True))
    everything = _yearly(met.london_total(minor="RAPE"))
    assert boroughs[2022] == 8053
    # ~13% of 2022 London rapes have no borough in the new format: not a rounding issue.
    assert 0.10 < 1 - boroughs[2022] / everything[2022] < 0.16


@pytest.mark.realdata
def test_overlapping_releases_agree_at_london_level(met: MetCrime) -> None:
    """Every overlap is between formats. London-wide totals (all areas) are like for
    like; measured: all crime per month within 1.5% (median 0.01%); rape per month within
    3.4%, the worst being the newest overlapping month (2024-01: 696 vs 719), which the
    MPS was still revising."""
    all_crime = met.london_revisions()
    assert len(all_crime) == 142 + 13 + 11
    assert all_crime["rel_change"].abs().max() < 0.015
    assert all_crime["rel_change"].abs().median() < 0.001
    rape = met.london_revisions(minor="RAPE")
    assert rape["rel_change"].abs().max() < 0.035
    jan24 = rape[rape["month"] == pd.Period("2024-01", freq="M")].iloc[0]
    assert (jan24["old_total"], jan24["new_total"]) == (696, 719)
    # Over whole calendar years of overlap (2011-2023) rape totals agree within 0.4%.
    year = rape["month"].map(lambda p: p.year)
    full = rape[year.map(year.value_counts()) == 12]
    yearly = full.groupby(year)[["old_total", "new_total"]].sum()
    assert len(yearly) == 13
    assert ((yearly["new_total"] / yearly["old_total"] - 1).abs() < 0.004).all()


@pytest.mark.realdata
def test_borough_level_revisions_carry_the_format_change(met: MetCrime) -> None:
    """The old format assigns 'Unknown' offences to boroughs, so old borough counts
    exceed new ones: documented here so nobody mistakes it for revision noise."""
    rape = met.revisions[(met.revisions["minor"] == "RAPE") & met.revisions["new_value"].notna()]
    by_borough = rape.groupby("area_name")[["old_value", "new_value"]].sum()
    assert (by_borough["old_value"] >= by_borough["new_value"] * 0.97).all()
    assert by_borough["old_value"].sum() > 1.1 * by_borough["new_value"].sum()


@pytest.mark.realdata
def test_latest_release_precedence_takes_old_format_months(shared_data: Path) -> None:
    met = read_met_borough_crime(
        [shared_data / MET_DIR / f for f in ALL_FILES], precedence="latest_release"
    )
    old_months = met.month_sources[met.month_sources["source_file"] == OLD_RECENT]["month"]
    assert (str(old_months.min()), str(old_months.max())) == ("2022-02", "2023-02")
    # London totals stay consistent because each month comes from one release only...
    assert _yearly(met.london_total(minor="RAPE"))[2022] == 9223
    # ...but borough series step up in the old-format months.
    west = met.data[(met.data["area_name"] == "Westminster") & (met.data["minor"] == "RAPE")]
    yearly = west.groupby(west["month"].map(lambda p: p.year))["count"].sum()
    assert yearly[2022] > 1.25 * yearly[2021]


@pytest.mark.realdata
def test_old_pair_alone_is_mapped_to_new_names(shared_data: Path) -> None:
    met = read_met_borough_crime([shared_data / MET_DIR / f for f in (OLD_HIST, OLD_RECENT)])
    assert str(met.month_sources["month"].iloc[-1]) == "2024-01"
    assert met.warnings == ()
    assert "Unknown" not in set(met.excluded["area_name"])
    cats = set(met.data["minor"])
    assert {"RAPE", "MISC CRIMES AGAINST SOCIETY", "POSSESSION OF WEAPONS"} <= cats
    assert _yearly(met.london_total(minor="RAPE"))[2017] == 7690


@pytest.mark.realdata
def test_reader_does_not_modify_files(shared_data: Path) -> None:
    paths = [shared_data / MET_DIR / f for f in ALL_FILES]
    before = [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    read_met_borough_crime(paths)
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths] == before


@pytest.mark.realdata
def test_gla_population_two_files_with_bom(shared_data: Path) -> None:
    pop = read_gla_borough_population(sorted((shared_data / "population").glob("*.csv")))
    assert list(pop.columns) == ["area_code", "area_name", "year", "population"]
    assert pop["area_code"].nunique() == 33
    assert sorted(pop["year"].unique()) == list(range(2011, 2025))
    tower = pop[(pop["area_name"] == "Tower Hamlets") & (pop["year"] == 2021)]
    assert tower["population"].item() == 331_620  # README: GLA projection, not Census
    names = dict(pop[["area_code", "area_name"]].drop_duplicates().itertuples(index=False))
    assert names == {code: name for code, name, _ in LONDON_BOROUGHS}


# --------------------------------------------------------------------- hand-made files

NEW_HEADER = "MajorText,MinorText,BoroughName,202301,202302,202303"


def _write(tmp_path: Path, text: str, name: str = "mps.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> SourceFormatError:
    with pytest.raises(SourceFormatError) as info:
        read_met_borough_crime([path])
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)
    assert "How to fix:" in str(info.value)
    return info.value


def _names(err: SourceFormatError, row: int | None, column: str | None, value: str) -> None:
    text = str(err)
    if row is not None:
        assert f"row {row}" in text
    if column is not None:
        assert f"column {column!r}" in text
    assert f"value {value!r}" in text


@pytest.mark.parametrize(
    ("header", "column", "value"),
    [
        ("Major,MinorText,BoroughName,202301", "#1", "Major"),
        ("MajorText,Minor,BoroughName,202301", "#2", "Minor"),
        ("MajorText,MinorText,Borough,202301", "#3", "Borough"),
        ("MajorText,MinorText,BoroughName,2023-01", "#4", "2023-01"),
        ("MajorText,MinorText,BoroughName,202313", "#4", "202313"),
        ("MajorText,MinorText,BoroughName,202301,202303", "#5", "202303"),
        ("MajorText,MinorText,BoroughName,202301,202301", "#5", "202301.1"),
    ],
)
def test_bad_header(tmp_path: Path, header: str, column: str, value: str) -> None:
    n = header.count(",") - 2
    path = _write(tmp_path, f"{header}\nTHEFT,SHOPLIFTING,Barnet{',1' * n}\n")
    _names(_error(path), 1, column, value)


def test_no_month_columns(tmp_path: Path) -> None:
    err = _error(_write(tmp_path, "MajorText,MinorText,BoroughName\nTHEFT,SHOPLIFTING,Barnet\n"))
    assert "row 1" in str(err)
    assert "no YYYYMM month columns" in str(err)


@pytest.mark.parametrize(
    ("cell", "value"),
    [("abc", "abc"), ("", ""), ("1.5", "1.5"), ("-3", "-3"), ("1,000", None)],
)
def test_bad_count(tmp_path: Path, cell: str, value: str | None) -> None:
    if value is None:  # an unquoted comma makes a ragged row instead
        path = _write(tmp_path, f"{NEW_HEADER}\nTHEFT,SHOPLIFTING,Barnet,1,{cell},3\n")
        err = _error(path)
        assert "row 2" in str(err)
        assert "7 fields but the header has 6" in str(err)
        return
    path = _write(tmp_path, f'{NEW_HEADER}\nTHEFT,SHOPLIFTING,Barnet,1,"{cell}",3\n')
    _names(_error(path), 2, "202302", value)


def test_all_problems_in_a_file_are_reported_together(tmp_path: Path) -> None:
    text = (
        f"{NEW_HEADER}\n"
        "THEFT,SHOPLIFTING,Barnet,1,x,3\n"
        "THEFT,OTHER THEFT,,1,2,3\n"
        "THEFT,SHOPLIFTING,Barnet,1,2,y\n"
    )
    err = _error(_write(tmp_path, text))
    assert len(err.problems) == 4  # two bad counts, a blank name, a duplicate row
    _names(err, 2, "202302", "x")
    _names(err, 4, "202303", "y")
    _names(err, 3, "BoroughName", "")
    assert "duplicate row; first seen on row 2" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    assert "the file is empty" in str(_error(_write(tmp_path, "")))


def test_header_only(tmp_path: Path) -> None:
    assert "header only" in str(_error(_write(tmp_path, NEW_HEADER + "\n")))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{NEW_HEADER}\nTHEFT,SHOPLIFTING,Barnet,1,2,3\n".encode() + b"\xff\xfe\n")
    assert "not UTF-8" in str(_error(path))


def test_every_row_one_field_too_many_is_not_silently_shifted(tmp_path: Path) -> None:
    path = _write(tmp_path, f"{NEW_HEADER}\nTHEFT,SHOPLIFTING,Barnet,1,2,3,4\n")
    err = _error(path)
    assert "row 2" in str(err)
    assert "7 fields" in str(err)


def _tiny(tmp_path: Path, name: str, header: str, rows: list[str]) -> Path:
    return _write(tmp_path, "\n".join([header, *rows]) + "\n", name)


def test_unmatched_names_and_non_boroughs_are_kept_not_dropped(tmp_path: Path) -> None:
    path = _tiny(
        tmp_path,
        "a.csv",
        NEW_HEADER,
        [
            "THEFT,SHOPLIFTING,Barnett,1,2,3",
            "THEFT,SHOPLIFTING,barking  &  dagenham,4,5,6",
            "THEFT,SHOPLIFTING,Unknown,7,8,9",
        ],
    )
    met = read_met_borough_crime([path])
    assert met.unmatched_names == ("Barnett",)
    assert any("Barnett" in w for w in met.warnings)
    assert set(met.data["area_code"]) == {"E09000002"}
    assert set(met.data["area_name"]) == {"Barking and Dagenham"}
    reasons = dict(met.excluded[["area_name", "reason"]].drop_duplicates().values.tolist())
    assert "unmatched" in reasons["Barnett"]
    assert "location unknown" in reasons["Unknown"]
    assert int(met.london_total().sum()) == 45


def test_newest_release_wins_and_revisions_are_recorded(tmp_path: Path) -> None:
    older = _tiny(
        tmp_path,
        "older.csv",
        NEW_HEADER,
        ["SEXUAL OFFENCES,RAPE,Barnet,10,20,30", "THEFT,SHOPLIFTING,Barnet,1,1,1"],
    )
    newer = _tiny(
        tmp_path,
        "newer.csv",
        "MajorText,MinorText,BoroughName,202302,202303,202304",
        ["SEXUAL OFFENCES,RAPE,Barnet,21,33,40"],  # shoplifting row omitted = none recorded
    )
    met = read_met_borough_crime([older, newer])
    assert met.month_sources["source_file"].tolist() == [
        "older.csv",
        "newer.csv",
        "newer.csv",
        "newer.csv",
    ]
    rape = met.data[met.data["minor"] == "RAPE"]["count"].tolist()
    assert rape == [10, 21, 33, 40]
    shop = met.data[met.data["minor"] == "SHOPLIFTING"]["count"].tolist()
    assert shop == [1, 0, 0, 0]  # zero-filled from the winning release
    rev = met.revisions.set_index(["minor", met.revisions["month"].astype(str)])
    assert rev.loc[("RAPE", "2023-02"), ["old_value", "new_value"]].tolist() == [20, 21]
    assert rev.loc[("RAPE", "2023-03"), "change"] == 3
    assert rev.loc[("SHOPLIFTING", "2023-03"), "new_value"] == 0
    assert met.london_revisions(minor="RAPE")["change"].tolist() == [1, 3]


def test_old_taxonomy_is_renamed_summed_and_unmapped_flagged(tmp_path: Path) -> None:
    old = _tiny(
        tmp_path,
        "old.csv",
        "MajorText,MinorText,LookUp_BoroughName,202301,202302",
        [
            "Sexual Offences,Rape,Barnet,5,6",
            "Miscellaneous Crimes Against Society,Bigamy,Barnet,1,0",
            "Miscellaneous Crimes Against Society,Perjury,Barnet,2,2",
            "Theft,Cheque Theft,Barnet,9,9",
        ],
    )
    met = read_met_borough_crime([old])
    got = met.data.groupby(["major", "minor"])["count"].sum().to_dict()
    assert got[("SEXUAL OFFENCES", "RAPE")] == 11
    assert got[("MISCELLANEOUS CRIMES AGAINST SOCIETY", "MISC CRIMES AGAINST SOCIETY")] == 5
    assert got[("Theft", "Cheque Theft")] == 18
    assert any("Cheque Theft" in w for w in met.warnings)


def test_ambiguous_releases_and_no_files_are_errors(tmp_path: Path) -> None:
    a = _tiny(tmp_path, "a.csv", NEW_HEADER, ["THEFT,SHOPLIFTING,Barnet,1,2,3"])
    b = _tiny(tmp_path, "b.csv", NEW_HEADER, ["THEFT,SHOPLIFTING,Barnet,1,2,3"])
    with pytest.raises(ValueError, match=r"a\.csv and b\.csv|b\.csv and a\.csv"):
        read_met_borough_crime([a, b])
    with pytest.raises(ValueError, match="no files"):
        read_met_borough_crime([])


def test_gap_between_releases_is_reported(tmp_path: Path) -> None:
    a = _tiny(tmp_path, "a.csv", "MajorText,MinorText,BoroughName,202301", ["T,S,Barnet,1"])
    b = _tiny(tmp_path, "b.csv", "MajorText,MinorText,BoroughName,202303", ["T,S,Barnet,1"])
    met = read_met_borough_crime([a, b])
    assert [str(g) for g in met.gaps] == ["2023-02"]
    assert "no release covers 2023-02" in met.warnings


def test_borough_missing_from_a_release_is_reported(tmp_path: Path) -> None:
    a = _tiny(
        tmp_path, "a.csv", "MajorText,MinorText,BoroughName,202301", ["T,S,Barnet,1", "T,S,Brent,2"]
    )
    b = _tiny(tmp_path, "b.csv", "MajorText,MinorText,BoroughName,202302", ["T,S,Barnet,1"])
    met = read_met_borough_crime([a, b])
    assert met.warnings == ("Brent has no rows in 1 month(s) from 2023-02",)
    assert len(met.data[met.data["area_name"] == "Brent"]) == 1


def test_bad_population_cell_names_file_row_column_value(tmp_path: Path) -> None:
    path = tmp_path / "pop.csv"
    path.write_text(
        "\ufeffCode,Area name,2021_Population\nE09000002,Barking and Dagenham,12a\n",
        encoding="utf-8",
    )
    with pytest.raises(SourceFormatError) as info:
        read_gla_borough_population([path])
    _names(info.value, 2, "2021_Population", "12a")
    assert str(path) in str(info.value)


def test_population_files_that_disagree_are_an_error(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("Code,Area name,2021_Population\nE09000003,Barnet,100\n", encoding="utf-8")
    b.write_text("Code,Area name,2021_Population\nE09000003,Barnet,101\n", encoding="utf-8")
    with pytest.raises(ValueError, match="E09000003 2021"):
        read_gla_borough_population([a, b])
