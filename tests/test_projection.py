"""The whole projection on a tiny model solved by hand, the waterfall, and reproducibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import needsled
from _models import tiny_areas_model, tiny_model
from needsled.io.load import load_model
from needsled.projection import run
from needsled.results import queueing_table, results_table, summary_table, waterfall_table


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> needsled.Run:
    model = needsled.load(tiny_model(tmp_path_factory.mktemp("tiny")))
    return needsled.Run(run(model, replicates=50, seed=3))


def det(r: needsled.Run, scenario: str, metric: str) -> np.ndarray:
    sr = next(s for s in r.result.scenarios if s.scenario.name == scenario)
    return sr.deterministic[metric][0, 0]


def test_referrals_follow_the_victim_journey_by_hand(tiny: needsled.Run) -> None:
    assert det(tiny, "baseline", "referrals") == pytest.approx(np.full(12, 12.0))
    # opt-out: police 100 x 0.5 x 0.9 x 0.8 = 36 and +20% reports -> 43.2;
    # engaged (43.2 + 8) x 0.75 = 38.4; need 0.5 -> 19.2
    assert det(tiny, "both", "referrals") == pytest.approx(np.full(12, 19.2))


def test_queue_grows_by_the_excess_and_the_checks_say_so(tiny: needsled.Run) -> None:
    # 12 referrals against 10 one-month places: 10 start, the list grows by 2 a month
    assert det(tiny, "baseline", "starts") == pytest.approx(np.full(12, 10.0))
    assert det(tiny, "baseline", "waiting") == pytest.approx(2.0 * np.arange(1, 13))
    q = queueing_table(tiny.result)
    row = q[(q["scenario"] == "baseline") & (q["service"] == "S")].iloc[0]
    assert row["load"] == pytest.approx(1.2, rel=1e-6)
    assert row["statement"] == "grows by 2 a month, no steady state"
    assert np.isnan(row["mmc_mean_wait_weeks"])  # no number where there is no steady state


def test_waterfall_is_the_shapley_split_and_adds_up(tiny: needsled.Run) -> None:
    w = waterfall_table(tiny.result)
    w = w[(w["scenario"] == "both") & (w["area"] == "ALL")].set_index("lever")["referrals"]
    # f(none)=12, f(reports)=13.8, f(opt-out)=16.5, f(both)=19.2 a month, over 12 months
    assert w["police_reports"] == pytest.approx(12 * 0.5 * ((13.8 - 12) + (19.2 - 16.5)), abs=0.1)
    assert w["referral_model"] == pytest.approx(12 * 0.5 * ((16.5 - 12) + (19.2 - 13.8)), abs=0.1)
    assert w["baseline"] + w["police_reports"] + w["referral_model"] == pytest.approx(
        w["scenario"], abs=0.2
    )


def test_fte_needed_uses_the_nhs_r_capacity_and_shortfall_costs_money(tiny: needsled.Run) -> None:
    # Relief capacity with a growing list is above the Kingman target capacity after month 1;
    # month 0: demand 12/4.333 a week, queue 2, target queue = demand x 4/4 weeks.
    lam = 12 / (52 / 12)
    from needsled import queueing

    relief = queueing.relief_capacity(lam, 2.0, queueing.target_queue_size(lam, 4.0))
    target = queueing.target_capacity(lam, 4.0)
    per_fte = 10 / (52 / 12)
    assert det(tiny, "baseline", "fte_needed")[0] == pytest.approx(
        max(relief, target) / per_fte, rel=1e-5
    )
    short = det(tiny, "baseline", "fte_shortfall")
    assert det(tiny, "baseline", "cost_shortfall") == pytest.approx(short * 40000, rel=1e-5)


def test_same_seed_same_results_and_another_seed_differs(tmp_path: Path) -> None:
    model = needsled.load(tiny_model(tmp_path))
    a = results_table(run(model, replicates=30, seed=11))
    b = results_table(run(model, replicates=30, seed=11))
    c = results_table(run(model, replicates=30, seed=12))
    assert a.equals(b)
    assert not a["mean"].equals(c["mean"])


def test_scenarios_share_random_numbers(tmp_path: Path) -> None:
    # Running one scenario alone gives the same numbers as running it among others.
    model = needsled.load(tiny_model(tmp_path))
    alone = results_table(run(model, ["both"], replicates=20, seed=5))
    both = results_table(run(model, replicates=20, seed=5))
    both = both[both["scenario"] == "both"].reset_index(drop=True)
    alone = alone.astype({"scenario": str})
    both = both.astype({"scenario": str})
    assert alone.equals(both)


def test_results_have_the_promised_columns_and_metrics(tiny: needsled.Run) -> None:
    res = tiny.results
    assert list(res.columns[:9]) == [
        "scenario",
        "area",
        "service",
        "month",
        "metric",
        "mean",
        "p10",
        "p50",
        "p90",
    ]
    wanted = {
        "referrals",
        "starts",
        "waiting",
        "open_cases",
        "mean_wait_weeks",
        "p90_wait_weeks",
        "within_target_share",
        "drop_outs",
        "utilisation",
        "fte_needed",
        "fte_shortfall",
        "cost_shortfall",
    }
    assert wanted <= set(res["metric"].astype(str))
    ok = res.dropna(subset=["p10", "p90"])
    assert (ok["p10"] <= ok["p50"]).all()
    assert (ok["p50"] <= ok["p90"]).all()
    summ = summary_table(tiny.result)
    # Jan 2025 to Dec 2025 spans two April-to-March years
    assert set(summ["year"]) == {"2024/25", "2025/26"}


def test_uncertainty_widens_intervals_but_points_do_not(tmp_path: Path) -> None:
    model = needsled.load(tiny_model(tmp_path))
    res = results_table(run(model, ["baseline"], replicates=200, seed=2))
    ref = res[(res["metric"] == "referrals") & (res["area"] == "ALL")]
    # no parameter uncertainty and a flat forecast: only Poisson noise, mean about 12
    assert ref["mean"].mean() == pytest.approx(12, rel=0.05)
    assert (ref["p90"] - ref["p10"]).mean() == pytest.approx(2 * 1.2816 * np.sqrt(12), rel=0.3)


def test_chunked_runs_give_identical_results(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from needsled.example import write_example

    model = needsled.load(write_example(tmp_path / "ex"))
    whole = run(model, ["opt-out-referral"], replicates=8, seed=9)
    with ThreadPoolExecutor(2) as pool:
        parts = run(model, ["opt-out-referral"], replicates=8, seed=9, chunk_areas=5, executor=pool)
    for key, value in whole.scenarios[0].metrics.items():
        np.testing.assert_array_equal(value, parts.scenarios[0].metrics[key], err_msg=key)


def test_a_weekly_step_agrees_with_the_monthly_one(tmp_path: Path) -> None:
    spec = {**__import__("_models").TINY_SCENARIOS, "step": "week"}
    weekly = run(needsled.load(tiny_model(tmp_path / "w", spec)), ["baseline"], replicates=5)
    monthly = run(needsled.load(tiny_model(tmp_path / "m")), ["baseline"], replicates=5)
    w, m = weekly.scenarios[0].deterministic, monthly.scenarios[0].deterministic
    # the same referrals each month, however the month is cut into weeks
    np.testing.assert_allclose(w["referrals"], m["referrals"], rtol=1e-9)
    # 12 referrals a month against 10 places of 4.33-week cases: the list grows by about 2 a
    # month either way; weekly steps smooth the month's arrivals, so allow a month's growth
    assert w["waiting"][0, 0, -1] == pytest.approx(m["waiting"][0, 0, -1], abs=2.5)
    # waits agree to within the monthly step's resolution, and weekly ones are finer
    np.testing.assert_allclose(w["mean_wait_weeks"], m["mean_wait_weeks"], atol=52 / 12)
    assert {1.0, 2.0, 3.0} <= set(w["p90_wait_weeks"][0, 0].tolist())


def test_a_service_absent_from_an_area_summarises_without_warnings(tmp_path: Path) -> None:
    # service T serves area 1 only: its figures for area 2 are missing (NaN), never a warning
    # (pytest turns warnings into errors) and never zero
    folder = tiny_areas_model(tmp_path / "m", [1.0, 1.0], second_service_fte=[2.0, 2.0])
    rows = (folder / "staffing.csv").read_text(encoding="utf-8").splitlines()
    (folder / "staffing.csv").write_text(
        "\n".join(r for r in rows if r != "T,E09000002,2.0") + "\n", encoding="utf-8"
    )
    res = run(load_model(folder), replicates=10, seed=1)
    summary = summary_table(res)
    t = summary[summary["service"] == "T"]
    assert set(t["area"]) == {"E09000001", "ALL"}
