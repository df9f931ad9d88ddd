"""The explorer's reuse of engine runs (needsled.web.explore) gives a run's figures.

A lever on one service's staff or support length re-simulates that service alone, wherever
it is in the model (each service of each chain has its own random stream, so every other
service's part of a run kept for the same settings is reused); the cost of an FTE
re-simulates nothing. Each result is checked against ``needsled.projection.run`` +
``needsled.results`` of :meth:`Explorer.scenario` at the same seed and replicates: the
summary, and the three charts' whole Vega-Lite specs (data rows and dataset names too, so
the specs built from a kept template equal altair's).
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd
import pytest

from _specs import named_alike
from needsled import charts
from needsled.example import write_example
from needsled.io.load import load_model
from needsled.model import Model
from needsled.projection import run
from needsled.results import results_table, summary_table
from needsled.web.explore import YEARLY, Explorer

REPLICATES, SEED = 12, 5


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    m = load_model(write_example(tmp_path_factory.mktemp("london")))
    return dataclasses.replace(m, scenarios=m.scenarios[:1])


@pytest.fixture(scope="module")
def explorer(model: Model) -> Explorer:
    return Explorer(model, replicates=REPLICATES, seed=SEED)


@pytest.fixture(scope="module")
def base_results(model: Model) -> pd.DataFrame:
    return results_table(run(model, None, replicates=REPLICATES, seed=SEED))


def assert_a_runs_figures(
    ex: Explorer, model: Model, settings: dict[str, float], result: dict[str, Any], base: Any
) -> None:
    """Summary and charts equal those of a run of the explorer's scenario."""
    sc = ex.scenario(None, settings)
    res = run(dataclasses.replace(model, scenarios=(sc,)), None, REPLICATES, SEED)
    label, name, year = result["label"], sc.name, result["year"]
    results = results_table(res).astype({"scenario": str})
    summary = summary_table(res)
    want = summary.loc[(summary["area"] == "ALL") & (summary["year"] == year)]
    want = want.set_index(["service", "metric"])
    for row in result["summary"]:
        for metric in YEARLY:
            for col in ("mean", "p10", "p90", "deterministic"):
                got = row[metric][col]
                assert got == float(want.loc[(row["service"], metric), col]), (metric, col)
    services = dict(zip(model.services.codes, model.services.names, strict=True))
    areas = dict(zip(model.area_codes, model.area_names, strict=True))
    mine = results.assign(scenario=label)  # the explorer's label for the moved scenario
    demand = charts.demand_capacity(mine, label, services).to_dict()
    assert named_alike(result["charts"]["demand"]) == named_alike(demand)
    both = pd.concat([base.astype({"scenario": str}), mine], ignore_index=True)
    waiting = charts.waiting_list(both, services).to_dict()
    assert named_alike(result["charts"]["waiting"]) == named_alike(waiting)
    per_area = summary.assign(scenario=summary["scenario"].astype(str).replace(name, label))
    shortfall = charts.shortfall_by_area(per_area, label, year, areas, services)
    assert named_alike(result["charts"]["shortfall"]) == named_alike(shortfall.to_dict())


# (settings, how many services the engine runs: those whose own levers differ from every
# kept part's; 0: every part kept, e.g. a kept run at another cost per FTE)
STEPS = [
    ({"fte.IDVA": 30.0}, 1),  # the last service: the others from the run as it stands
    ({"fte.IDVA": 30.0, "cost_per_fte": 10.0}, 0),  # the run just made, its cost redone
    ({"fte.ISVA": 25.0}, 1),  # the first service: alone too (IDVA as it stands again)
    ({"support_duration.BY_AND_FOR": 25.0}, 1),
    # COUNSELLING alone: BY_AND_FOR at +25% is kept from the step before
    ({"support_duration.BY_AND_FOR": 25.0, "fte.COUNSELLING": -20.0, "year": 2026.0}, 1),
    # every part kept, from three different runs: IDVA +30%, BY_AND_FOR +25%, the rest as
    # they stand
    ({"fte.IDVA": 30.0, "support_duration.BY_AND_FOR": 25.0, "cost_per_fte": -15.0}, 0),
    ({"cost_per_fte": 20.0}, 0),  # the run as it stands is kept for good
]


def test_kept_parts_lend_every_other_service_and_the_figures_are_a_runs(
    explorer: Explorer, model: Model, base_results: pd.DataFrame
) -> None:
    for settings, simulated in STEPS:
        result = explorer.evaluate(None, settings)
        assert not result["cached"]
        assert result["timings_ms"]["engine.simulated_services"] == simulated, settings
        assert_a_runs_figures(explorer, model, settings, result, base_results)


def test_a_lever_on_one_service_reads_the_referrals_drawn_at_its_demand(
    explorer: Explorer, model: Model, base_results: pd.DataFrame
) -> None:
    """The referrals a run drew are kept by its demand levers: a lever on one service's staff
    then runs that service's engine on them without drawing them again (as it stands, and
    at a moved demand), and the figures are still a run's."""
    quick = explorer.evaluate(None, {"fte.ISVA": 12.0})
    assert quick["timings_ms"]["engine.simulated_services"] == 1
    assert quick["timings_ms"]["engine.drew_referrals"] == 0
    moved = {"police_reports": 12.0}
    demand = explorer.evaluate(None, moved)
    assert demand["timings_ms"]["engine.drew_referrals"] == len(model.services.codes)
    both = {**moved, "fte.COUNSELLING": 12.0}
    after = explorer.evaluate(None, both)
    assert after["timings_ms"]["engine.simulated_services"] == 1
    assert after["timings_ms"]["engine.drew_referrals"] == 0
    assert_a_runs_figures(explorer, model, both, after, base_results)


def test_a_kept_template_gives_altairs_chart_for_new_data(
    explorer: Explorer, model: Model, base_results: pd.DataFrame
) -> None:
    """The same label and year as a chart built before: the template's spec, new rows."""
    settings = {"fte.ISVA": 15.0, "year": 2026.0}
    first = explorer.evaluate(None, settings)
    again = explorer.evaluate(None, {**settings, "fte.ISVA": 20.0})
    assert first["label"] == again["label"]
    for key in ("demand", "waiting", "shortfall"):
        assert first["charts"][key]["datasets"] != again["charts"][key]["datasets"]
    assert_a_runs_figures(explorer, model, {**settings, "fte.ISVA": 20.0}, again, base_results)
    assert not explorer._slow  # every kind of chart took the kept template's path


def test_a_result_does_not_depend_on_which_run_lent_services(
    explorer: Explorer, model: Model
) -> None:
    explorer.evaluate(None, {"support_duration.ESS": 10.0, "fte.IDVA": 10.0})
    settings = {"support_duration.ESS": 10.0, "fte.IDVA": 45.0, "cost_per_fte": 10.0}
    reused = explorer.evaluate(None, settings)  # IDVA alone: ESS from the run just made
    fresh = Explorer(model, replicates=REPLICATES, seed=SEED).evaluate(None, settings)
    assert reused["timings_ms"]["engine.simulated_services"] == 1
    assert fresh["timings_ms"]["engine.simulated_services"] == 2  # ESS and IDVA
    drop = ("timing_ms", "timings_ms", "cached")
    assert {k: v for k, v in reused.items() if k not in drop} == {
        k: v for k, v in fresh.items() if k not in drop
    }


def test_a_lever_on_one_service_leaves_every_other_services_figures_as_they_were(
    explorer: Explorer,
) -> None:
    """Common random numbers across services: each service of each chain has its own random
    stream, so more staff for the first service changes none of the others' figures, the
    simulated ones (mean, p10, p90) as well as the deterministic run's."""
    base = {r["service"]: r for r in explorer.evaluate(None, {})["summary"]}
    for key in ("fte.ISVA", "support_duration.COUNSELLING"):
        moved = explorer.evaluate(None, {key: 40.0})
        rows = {r["service"]: r for r in moved["summary"]}
        code = key.split(".")[1]
        assert rows[code]["waiting"]["mean"] != base[code]["waiting"]["mean"]
        for s, row in rows.items():
            if s == code:
                continue
            assert row == base[s], (key, s)  # every figure, and "base" is its own mean
            assert all(row[m]["base"] == row[m]["mean"] for m in YEARLY)


def test_heavy_says_when_the_engine_would_run_for_several_services(
    model: Model,
) -> None:
    ex = Explorer(model, replicates=REPLICATES, seed=SEED)
    demand = {"police_reports": 35.0}
    assert ex.heavy(None, demand)  # every service at a demand not worked out yet
    assert not ex.heavy(None, {"fte.ISVA": 35.0})  # one service; the rest as they stand
    assert not ex.heavy(None, {"cost_per_fte": 35.0})  # no engine
    ex.evaluate(None, demand)
    assert not ex.heavy(None, demand)  # the result is kept
    assert not ex.heavy(None, {**demand, "fte.ISVA": 35.0})  # one service at that demand
    assert ex.heavy(None, {**demand, "fte.ISVA": 35.0, "fte.IDVA": 35.0})  # two
    assert ex.heavy(None, {"police_reports": 40.0})


def test_quick_and_heavy_results_worked_out_at_once_are_those_worked_out_alone(
    model: Model,
) -> None:
    """The explorer computes a quick and a heavy result on threads of their own, sharing
    its kept runs: results asked for from several threads at once equal those of a fresh
    explorer asked one at a time."""
    asks = [
        {"police_reports": -20.0},
        {"fte.ISVA": 20.0},
        {"referral_share": 15.0, "fte.IDVA": -10.0},
        {"support_duration.ESS": 30.0},
        {"police_reports": -20.0, "fte.COUNSELLING": 10.0},
        {"cost_per_fte": 5.0, "fte.ISVA": 20.0},
    ]
    drop = ("timing_ms", "timings_ms", "cached")

    def strip(result: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in result.items() if k not in drop}

    together = Explorer(model, replicates=REPLICATES, seed=SEED)
    with ThreadPoolExecutor(len(asks)) as pool:
        got = list(pool.map(lambda s: together.evaluate(None, s), asks))
    alone = Explorer(model, replicates=REPLICATES, seed=SEED)
    for settings, result in zip(asks, got, strict=True):
        assert strip(result) == strip(alone.evaluate(None, settings)), settings


def test_a_full_result_after_its_preview_reads_the_previews_deterministic_run(
    model: Model, base_results: pd.DataFrame
) -> None:
    """The page asks for a preview while a lever moves and the full result once it rests:
    the full result reads the deterministic run the preview made (kept, read-only) and is
    the full result of an explorer that never made the preview, and a run's figures."""
    ex = Explorer(model, replicates=REPLICATES, seed=SEED)
    settings = {"police_reports": 25.0, "fte.ESS": -15.0}
    made = len(ex._dets)
    preview = ex.preview(None, settings)
    kept = {key: id(det) for key, det in ex._dets.items()}
    assert len(kept) == made + 1  # the preview's deterministic run
    full = ex.evaluate(None, settings)
    # no new deterministic run: the preview's was read
    assert {key: id(det) for key, det in ex._dets.items()} == kept
    assert all(not x.flags.writeable for det in ex._dets.values() for x in det.values())
    assert preview["mode"] == "preview"
    assert full["mode"] == "full"
    drop = ("timing_ms", "timings_ms", "cached")
    fresh = Explorer(model, replicates=REPLICATES, seed=SEED).evaluate(None, settings)
    assert {k: v for k, v in full.items() if k not in drop} == {
        k: v for k, v in fresh.items() if k not in drop
    }
    assert_a_runs_figures(ex, model, settings, full, base_results)
