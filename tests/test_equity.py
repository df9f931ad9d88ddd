"""Equity measures on hand-made data, and their suppression."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from _models import tiny_areas_model
from needsled import equity
from needsled.io.load import load_model
from needsled.privacy import HIDDEN, SUPPRESSED
from needsled.projection import run


def test_gini_by_hand() -> None:
    assert equity.gini(np.array([5.0, 5.0, 5.0])) == 0.0
    # (0, 0, 1): ordered pairs differing: 4 of them by 1; 4 / (2 x 9 x 1/3) = 2/3
    assert equity.gini(np.array([0.0, 0.0, 1.0])) == pytest.approx(2 / 3)
    # weights count values: (1 x3, 2 x1) is (1, 1, 1, 2): 6 / (2 x 16 x 1.25) = 0.15
    assert equity.gini(np.array([1.0, 2.0]), np.array([3.0, 1.0])) == pytest.approx(0.15)
    assert equity.gini(np.array([1.0, np.nan, 2.0]), np.array([3.0, 9.0, 1.0])) == pytest.approx(
        0.15
    )
    with pytest.raises(ValueError, match="none negative"):
        equity.gini(np.array([-1.0, 1.0]))


def test_reach_and_lottery_by_hand() -> None:
    r = equity.reach(np.array([50.0, 120.0, 0.0]), np.array([1000.0, 1500.0, 0.0]))
    np.testing.assert_allclose(r[:2], [50.0, 80.0])
    assert np.isnan(r[2])
    lot = equity.lottery(r, np.array([1000.0, 1500.0, 0.0]))
    assert lot["ratio"] == pytest.approx(1.6)
    # victims 1,000 at 50 and 1,500 at 80: mean 68; pairs differing: 2 x 1,000 x 1,500 x 30
    assert lot["gini"] == pytest.approx(2 * 1000 * 1500 * 30 / (2 * 2500**2 * 68))


def test_representativeness_by_hand() -> None:
    table, test = equity.representativeness(
        ["women", "men"], np.array([30, 70]), np.array([0.5, 0.5]), suppress=False
    )
    # expected 50 each: chi-squared 2 x 400 / 50 = 16 on 1 degree of freedom
    assert test["chi_squared"] == 16.0
    assert test["p_value"] == float(f"{stats.chi2.sf(16, 1):.2g}")
    # adjusted residual (30 - 50) / sqrt(50 x 0.5) = -4
    assert table["adjusted_residual"].tolist() == [-4.0, 4.0]
    assert table["under_represented"].tolist() == ["yes", "no"]


def test_representativeness_merges_hidden_groups_so_the_statistic_hides_them() -> None:
    groups = ["A", "B", "C", "D"]
    share = np.array([0.2, 0.3, 0.05, 0.45])
    table, test = equity.representativeness(groups, np.array([20, 30, 3, 47]), share)
    hidden = table["sample"].isin([SUPPRESSED, HIDDEN])
    assert hidden.sum() >= 2  # the 3 and, by secondary suppression, one more
    assert table.loc[hidden, "sample_to_expected"].isna().all()
    assert table.loc[hidden, "adjusted_residual"].isna().all()
    assert test["groups_merged"] == hidden.sum()
    # every split of the hidden total gives the same statistic: it reveals only the sum
    shown = {
        g: int(c)
        for g, c in zip(groups, table["sample"], strict=True)
        if c not in (SUPPRESSED, HIDDEN)
    }
    hidden_groups = [g for g in groups if g not in shown]
    total_hidden = 100 - sum(shown.values())
    seen = set()
    for split in itertools.product(range(total_hidden + 1), repeat=len(hidden_groups)):
        if sum(split) != total_hidden:
            continue
        counts = dict(shown) | dict(zip(hidden_groups, split, strict=True))
        _t, other = equity.representativeness(groups, np.array([counts[g] for g in groups]), share)
        if _t["sample"].isin([SUPPRESSED, HIDDEN]).sum() != hidden.sum():
            continue  # a split that would not be hidden the same way is not a candidate
        seen.add(other["chi_squared"])
    assert seen == {test["chi_squared"]}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=2, max_size=6))
def test_no_hidden_sample_count_can_be_recovered(counts: list[int]) -> None:
    share = np.full(len(counts), 1.0 / len(counts))
    table, test = equity.representativeness(
        [f"g{i}" for i in range(len(counts))], np.array(counts), share
    )
    hidden = table["sample"].isin([SUPPRESSED, HIDDEN]).to_numpy()
    # "<5" is said only of counts from 1 to 4; a count hidden to protect one is "[c]"
    small = (np.array(counts) > 0) & (np.array(counts) < 5)
    assert ((table["sample"] == SUPPRESSED).to_numpy() == small).all()
    assert (hidden == ((np.array(counts) > 0) & (np.array(counts) < 5)) | hidden).all()
    if hidden.sum() == 1:
        pytest.fail("a single hidden count could be worked out from the total")
    # the total is known (expected / share); with two or more hidden, their sum is all it gives
    if 0 < sum(counts) < 5:  # a small total is itself hidden, and everything that gives it
        assert table["expected"].isna().all()
        assert np.isnan(test["sample_size"])
        assert np.isnan(test["chi_squared"])
    elif hidden.any():
        n = table["expected"].sum()
        assert n == pytest.approx(sum(counts), abs=0.5)


def test_group_table_from_the_groups_table(tmp_path: Path) -> None:
    folder = tiny_areas_model(
        tmp_path / "m",
        [1.0],
        extra_tables={
            "groups": (
                ["dimension", "group", "victim_share", "users", "sample"],
                [
                    ["sex", "female", 0.75, 300, 60],
                    ["sex", "male", 0.25, 20, 3],
                ],
            )
        },
    )
    m = load_model(folder)
    table = equity.group_table(m)
    row = table.set_index("group")
    # users: 300 / 320 = 0.9375 of users against 0.75 of victims: index 1.25
    assert row.loc["female", "users_share"] == pytest.approx(0.938, abs=5e-4)
    assert row.loc["female", "reach_index"] == pytest.approx(1.25)
    assert row.loc["male", "reach_index"] == pytest.approx(0.25)
    # the sample's 3 men are hidden, and so (secondary suppression, "[c]") is the 60
    assert row["sample"].tolist() == [HIDDEN, SUPPRESSED]


def test_group_shares_must_add_up_to_one(tmp_path: Path) -> None:
    from needsled.errors import InputError

    folder = tiny_areas_model(
        tmp_path / "m",
        [1.0],
        extra_tables={
            "groups": (
                ["dimension", "group", "victim_share"],
                [["sex", "female", 0.7], ["sex", "male", 0.2]],
            )
        },
    )
    with pytest.raises(InputError) as err:
        load_model(folder)
    (p,) = err.value.problems
    assert p.column == "victim_share"
    assert p.row == 2
    assert "adding up to 0.9" in p.message


def test_run_tables_reach_is_starts_per_estimated_victims(tmp_path: Path) -> None:
    # Two areas, 1.0 and 1.2 FTE, 12 referrals a month each: deterministic starts a year are
    # 120 and 144; victims 0.012 x 100,000 = 1,200 each: reach 100 and 120, ratio 1.2.
    m = load_model(tiny_areas_model(tmp_path / "m", [1.0, 1.2]))
    res = run(m, replicates=30, seed=1)
    areas, lottery = equity.run_tables(res)
    # a horizon across two April-to-March years: each part year is scaled to a full year
    assert areas["year"].nunique() == 2
    for code, expected in zip(m.area_codes, (100.0, 120.0), strict=True):
        det = areas.loc[areas["area"] == code, "deterministic"]
        assert det.tolist() == pytest.approx([expected] * 2, abs=0.05)
    ratio = lottery[lottery["measure"] == "best to worst ratio"].iloc[0]
    assert ratio["deterministic"] == pytest.approx(1.2, abs=1e-3)
    assert ratio["p10"] <= ratio["mean"] <= ratio["p90"]
    assert (areas["estimated_victims"] == 1200).all()


def test_every_run_writes_the_equity_tables(tmp_path: Path) -> None:
    from needsled.io.outputs import EQUITY_FILES, write_run

    folder = tiny_areas_model(
        tmp_path / "m",
        [1.0, 1.2],
        extra_tables={
            "groups": (
                ["dimension", "group", "victim_share", "users"],
                [["sex", "female", 0.75, 300], ["sex", "male", 0.25, 3]],
            )
        },
    )
    res = run(load_model(folder), replicates=20, seed=1)
    paths = write_run(res, tmp_path / "out")
    for name in EQUITY_FILES:
        assert paths[name].is_file(), name
    reach = pd.read_csv(paths["equity_reach.csv"])
    assert reach.groupby("area")["deterministic"].first().tolist() == pytest.approx(
        [100.0, 120.0], abs=0.05
    )
    groups = pd.read_csv(paths["equity_groups.csv"], dtype={"users": str})
    assert groups["users"].tolist() == [HIDDEN, SUPPRESSED]  # 300 (secondary), then 3
