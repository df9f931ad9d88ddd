"""Tests for needsled.funding (pure share calculations) on synthetic and real data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from needsled.funding import (
    DEFAULT_SEVERITY_WEIGHTS,
    MOJ_VICTIMS_GRANT_LONDON_SHARE,
    funding_shares,
    london_summary,
)
from needsled.sources import TERRITORIAL_PFAS, PeriodNotAvailableError, read_ons_pfa_crime

SHARES = ["share_all_crime", "share_sexual_offences", "share_need_weighted"]
OFFENCES = ["Sexual offences", "Robbery", "Shoplifting", "Fraud offences"]
YE = pd.Timestamp("2018-03-31")


def synthetic(counts: np.ndarray | None = None, when: pd.Timestamp = YE) -> pd.DataFrame:
    """43 territorial PFAs x OFFENCES, plus British Transport Police and Action Fraud."""
    names = list(TERRITORIAL_PFAS)
    if counts is None:
        counts = np.arange(1, len(names) * len(OFFENCES) + 1).reshape(len(names), -1)
    rows = [
        (when, name, TERRITORIAL_PFAS[name], offence, int(counts[i, j]), True)
        for i, name in enumerate(names)
        for j, offence in enumerate(OFFENCES)
    ]
    rows += [
        (when, "British Transport Police", None, "Robbery", 10**6, False),
        (when, "Action Fraud", None, "Action Fraud", 10**7, False),
    ]
    return pd.DataFrame(
        rows, columns=["year_ending", "pfa_name", "pfa_code", "offence", "count", "territorial"]
    )


def test_shares_sum_to_one_and_exclude_fraud_and_non_territorial() -> None:
    out = funding_shares(synthetic(), date(2018, 3, 31))
    assert len(out) == 43
    assert out["pfa_code"].is_unique
    for col in SHARES:
        assert out[col].sum() == pytest.approx(1.0, abs=1e-12)
    assert out["share_population"].isna().all()
    kent = out.set_index("pfa_name").loc["Kent"]
    i = list(TERRITORIAL_PFAS).index("Kent")
    base = i * len(OFFENCES)
    assert kent["all_crime"] == (base + 1) + (base + 2) + (base + 3)  # fraud left out
    assert kent["sexual_offences"] == base + 1
    w = DEFAULT_SEVERITY_WEIGHTS
    expected = (base + 1) * w["Sexual offences"] + (base + 2) * w["Robbery"]
    assert kent["weighted_crime"] == expected + (base + 3) * w["Shoplifting"]


def test_population_by_name_or_code_and_custom_weights() -> None:
    population: dict[str, float] = dict.fromkeys(TERRITORIAL_PFAS, 1000.0)
    del population["Devon and Cornwall"], population["City of London"]
    population["Devon & Cornwall"] = 1000.0  # lookup spelling
    population["E23000034"] = 3000.0  # City of London by code
    out = funding_shares(
        synthetic(),
        date(2018, 3, 31),
        population=population,
        weights={"Robbery": 0.0, "Shoplifting": 0.0},
    )
    assert out["share_population"].sum() == pytest.approx(1.0)
    city = out.set_index("pfa_code").loc["E23000034"]
    assert city["share_population"] == pytest.approx(3000 / 45000)
    assert out["share_need_weighted"].to_numpy() == pytest.approx(
        out["share_sexual_offences"].to_numpy()
    )


def test_population_as_series() -> None:
    pop = pd.Series(dict.fromkeys(TERRITORIAL_PFAS.values(), 5.0))
    out = funding_shares(synthetic(), YE.date(), population=pop)
    assert out["share_population"].to_numpy() == pytest.approx(np.full(43, 1 / 43))


@pytest.mark.parametrize(
    ("population", "message"),
    [
        ({"Kent": 1.0}, "missing for 42 PFA"),
        ({**dict.fromkeys(TERRITORIAL_PFAS, 1.0), "Atlantis": 1.0}, "'Atlantis'"),
        ({**dict.fromkeys(TERRITORIAL_PFAS, 1.0), "Kent": 0.0}, "not a positive number for: Kent"),
        ({**dict.fromkeys(TERRITORIAL_PFAS, 1.0), "E23000032": 2.0}, "given twice for Kent"),
    ],
)
def test_bad_population(population: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        funding_shares(synthetic(), YE.date(), population=population)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"Robery": 1.0}, "unknown offence group"),
        ({"Robbery": -1.0}, "finite and >= 0"),
        ({"Robbery": float("nan")}, "finite and >= 0"),
    ],
)
def test_bad_weights(weights: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        funding_shares(synthetic(), YE.date(), weights=weights)


def test_offence_without_weight_is_an_error() -> None:
    crime = synthetic()
    crime.loc[crime["offence"] == "Robbery", "offence"] = "Piracy"
    with pytest.raises(ValueError, match=r"no weight for offence group\(s\) \['Piracy'\]"):
        funding_shares(crime, YE.date())
    out = funding_shares(crime, YE.date(), weights={"Piracy": 300.0})
    assert out["share_need_weighted"].sum() == pytest.approx(1.0)


def test_year_not_available_lists_nearest_dates() -> None:
    crime = pd.concat([synthetic(when=pd.Timestamp(d)) for d in ("2017-12-31", "2018-03-31")])
    with pytest.raises(PeriodNotAvailableError) as info:
        funding_shares(crime, date(2018, 4, 30))
    text = str(info.value)
    assert "2018-04-30 is not in the data" in text
    assert "2017-12-31, 2018-03-31" in text
    assert isinstance(info.value, ValueError)


def test_missing_pfa_missing_code_duplicate_and_columns_are_errors() -> None:
    crime = synthetic()
    with pytest.raises(ValueError, match="missing \\['Kent'\\]"):
        funding_shares(crime[crime["pfa_name"] != "Kent"], YE.date())
    broken = crime.copy()
    broken.loc[0, "pfa_code"] = None
    with pytest.raises(ValueError, match="missing pfa_code"):
        funding_shares(broken, YE.date())
    with pytest.raises(ValueError, match="same offence twice"):
        funding_shares(pd.concat([crime, crime.iloc[[0]]]), YE.date())
    with pytest.raises(ValueError, match="lacks column"):
        funding_shares(crime.drop(columns="territorial"), YE.date())


def test_zero_national_total_is_an_error() -> None:
    crime = synthetic()
    crime.loc[crime["offence"] == "Sexual offences", "count"] = 0
    with pytest.raises(ValueError, match="cannot share on sexual_offences: national total 0"):
        funding_shares(crime, YE.date())


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 10**6), min_size=43 * 4, max_size=43 * 4),
    st.integers(1, 1000),
)
def test_shares_properties(values: list[int], scale: int) -> None:
    counts = np.array(values).reshape(43, 4)
    counts[:, 0] += 1  # every PFA has some sexual offences, so no total is zero
    out = funding_shares(synthetic(counts), YE.date())
    scaled = funding_shares(synthetic(counts * scale), YE.date())
    for col in SHARES:
        assert out[col].sum() == pytest.approx(1.0)
        assert out[col].between(0, 1).all()
        assert scaled[col].to_numpy() == pytest.approx(out[col].to_numpy())


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def pfa(shared_data: Path) -> pd.DataFrame:
    return read_ons_pfa_crime(shared_data / "ew_pfa" / "rec-crime-pfa.csv")


@pytest.mark.realdata
def test_real_shares_sum_to_one(pfa: pd.DataFrame) -> None:
    out = funding_shares(pfa, date(2018, 3, 31))
    assert len(out) == 43
    for col in SHARES:
        assert out[col].sum() == pytest.approx(1.0, abs=1e-12)
    assert out["all_crime"].sum() == 4_818_518  # all offences, 43 forces, no fraud/BTP


@pytest.mark.realdata
def test_london_share_of_recorded_crime(pfa: pd.DataFrame) -> None:
    """The "about 21%" London share holds for years ending Mar 2011 to Mar 2014 (20.1% to
    21.4%, peak YE Dec 2012 / Mar 2013); by YE Mar 2018 the same definition gives 17.05%.
    London's MoJ victims' grant share (population-based) was 14.69%."""
    ye2013 = london_summary(funding_shares(pfa, date(2013, 3, 31)))
    assert ye2013["share_all_crime"] == pytest.approx(0.214, abs=0.0005)
    for year in (2011, 2012, 2013, 2014):
        share = london_summary(funding_shares(pfa, date(year, 3, 31)))["share_all_crime"]
        assert 0.20 <= share <= 0.22, (year, share)
    ye2018 = london_summary(funding_shares(pfa, date(2018, 3, 31)))
    assert ye2018["share_all_crime"] == pytest.approx(0.1705, abs=0.0005)
    assert ye2018["share_sexual_offences"] == pytest.approx(0.1330, abs=0.0005)
    assert ye2018["moj_victims_grant_reference"] == MOJ_VICTIMS_GRANT_LONDON_SHARE == 0.1469
    assert ye2018["share_all_crime"] > MOJ_VICTIMS_GRANT_LONDON_SHARE


@pytest.mark.realdata
def test_odd_published_date_is_addressable_as_month_end(pfa: pd.DataFrame) -> None:
    out = funding_shares(pfa, date(2017, 12, 31))
    assert out.attrs["year_ending"] == date(2017, 12, 31)
    with pytest.raises(PeriodNotAvailableError, match="2017-12-30 is not in the data"):
        funding_shares(pfa, date(2017, 12, 30))
