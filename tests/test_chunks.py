"""The engine's chunks: a chain's later services run on their own from its random stream's
state (``FlowOutputs.states``) exactly as in a run of every service; ``with_total``'s
all-areas row alone; metrics left out on request are the only difference.

On the London example (32 areas, 6 services), a few replicates: the checks are equalities,
so they do not depend on the number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from needsled.demand import Draws, LeverSizes, draw_parameters, lever_sizes, referrals
from needsled.example import write_example
from needsled.flow import FlowOutputs, simulate
from needsled.io.load import load_model
from needsled.model import Model
from needsled.projection import (
    METRICS,
    SUMMED,
    chunk_inputs,
    chunk_metrics,
    crime_point_forecast,
    run_chunk,
    with_total,
)
from needsled.scenarios import Scenario

R, SEED = 6, 11


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    return load_model(write_example(tmp_path_factory.mktemp("london")))


@dataclass(frozen=True)
class Case:
    sc: Scenario
    arrivals: np.ndarray
    draws: Draws
    sizes: LeverSizes


@pytest.fixture(scope="module")
def case(model: Model) -> Case:
    """A scenario with levers, its arrivals (R, A, S, T, 2), draws and lever sizes."""
    sc = model.scenarios[-1]
    assert sc.levers
    draws = draw_parameters(model, R, np.random.default_rng([SEED, 2]))
    sizes = lever_sizes(sc, R, np.random.default_rng([SEED, 3]))
    point = crime_point_forecast(model, SEED)
    crime = (
        np.broadcast_to(point[None], (R, *point.shape))
        * np.linspace(0.8, 1.2, R)[:, None, None, None]
    )
    return Case(sc, referrals(model, crime, draws, sc, sizes), draws, sizes)


def _all_services(
    model: Model, case: Case, areas: list[int] | None
) -> tuple[FlowOutputs, dict[str, np.ndarray]]:
    flow_in, chunk = chunk_inputs(
        model, case.sc, case.arrivals, case.draws, case.sizes, SEED, areas=areas
    )
    out = simulate(flow_in, stochastic=True)
    return out, chunk_metrics(out, chunk, model)


@pytest.mark.parametrize("areas", [None, [3, 7, 8, 20]])
def test_later_services_alone_from_the_states_are_the_whole_runs(
    model: Model, case: Case, areas: list[int] | None
) -> None:
    out, whole = _all_services(model, case, areas)
    n_s = len(model.services)
    assert out.states.shape == (R * (len(areas) if areas else len(model.area_codes)), n_s)
    assert out.states.dtype == np.uint64
    for first in (1, 3, n_s - 1):
        later = range(first, n_s)
        part_in, chunk = chunk_inputs(
            model,
            case.sc,
            case.arrivals,
            case.draws,
            case.sizes,
            SEED,
            areas=areas,
            services=later,
            states=out.states[:, first],
        )
        part_out = simulate(part_in, stochastic=True)
        part = chunk_metrics(part_out, chunk, model)
        assert list(chunk.services) == list(later)
        np.testing.assert_array_equal(part_out.states, out.states[:, first:])
        assert set(part) == set(whole) == set(METRICS)
        for key, value in whole.items():
            np.testing.assert_array_equal(part[key], value[:, :, first:], err_msg=key)


def test_the_first_service_state_is_the_chains_seed(model: Model, case: Case) -> None:
    flow_in, _ = chunk_inputs(model, case.sc, case.arrivals, case.draws, case.sizes, SEED)
    out = simulate(flow_in, stochastic=True)
    np.testing.assert_array_equal(out.states[:, 0], flow_in.seeds.astype(np.uint64))
    # the stream moves on from one service to the next (each draws something)
    assert (out.states[:, 1:] != out.states[:, :-1]).all()


def test_some_services_without_the_states_are_refused(model: Model, case: Case) -> None:
    with pytest.raises(ValueError, match="states"):
        chunk_inputs(model, case.sc, case.arrivals, case.draws, case.sizes, SEED, services=[2, 3])


def test_chunk_metrics_leave_out_only_what_is_not_wanted(model: Model, case: Case) -> None:
    args = (model, case.sc, case.arrivals, case.draws, case.sizes, SEED)
    flow_in, chunk = chunk_inputs(*args, areas=[0, 1])
    out = simulate(flow_in, stochastic=True)
    every = chunk_metrics(out, chunk, model)
    some = chunk_metrics(out, chunk, model, wanted=["starts", "capacity", "fte_shortfall"])
    assert set(some) == {"starts", "capacity", "fte_shortfall"}
    for key, value in some.items():
        np.testing.assert_array_equal(value, every[key], err_msg=key)
    chunked = run_chunk(*args, stochastic=True, areas=[0, 1])
    for key, value in every.items():
        np.testing.assert_array_equal(value, chunked[key], err_msg=key)


def _with_total_as_written_before(
    m: dict[str, np.ndarray], served: np.ndarray
) -> dict[str, np.ndarray]:
    """``with_total`` as it was before it skipped copies (the reference)."""
    mask = served[None, :, :, None]
    out = {}
    starts = np.where(mask, m["starts"], 0)
    total_starts = starts.sum(1, keepdims=True)
    for key, x in m.items():
        x = np.where(mask, x, np.float32(np.nan))
        if key in SUMMED:
            tot = np.nansum(x, axis=1, keepdims=True)
        elif key in ("mean_wait_weeks", "within_target_share"):
            with np.errstate(invalid="ignore", divide="ignore"):
                tot = np.nansum(x * starts, axis=1, keepdims=True) / total_starts
        elif key in ("utilisation", "caseload_per_fte"):
            denom = m["places"] if key == "utilisation" else m["fte"]
            with np.errstate(invalid="ignore", divide="ignore"):
                tot = np.where(mask, m["open_cases"], 0).sum(1, keepdims=True) / np.where(
                    mask, denom, 0
                ).sum(1, keepdims=True)
        else:
            tot = np.full_like(x[:, :1], np.nan)
        out[key] = np.concatenate([x, tot.astype(np.float32)], axis=1)
    served_any = np.asarray(served.any(axis=0))[None, None, :, None]
    for key in out:
        out[key][:, -1:] = np.where(served_any, out[key][:, -1:], np.nan)
    return out


@pytest.mark.parametrize("gaps", [False, True])
@pytest.mark.parametrize("nan", [False, True])
def test_with_total_gives_the_sums_it_gave_and_its_last_row_alone(gaps: bool, nan: bool) -> None:
    rng = np.random.default_rng(5)
    shape = (7, 9, 4, 13)
    m = {k: rng.gamma(2.0, 50.0, shape).astype(np.float32) for k in METRICS}
    m["starts"][rng.random(shape) < 0.1] = 0.0
    if nan:  # waits where nobody started, and a few anywhere
        for key in ("mean_wait_weeks", "within_target_share", "p90_wait_weeks"):
            m[key][m["starts"] == 0] = np.nan
        m["caseload_per_fte"][rng.random(shape) < 0.05] = np.nan
    served = np.ones(shape[1:3], dtype=bool)
    if gaps:
        served[[0, 4, 5], 1] = False
        served[:, 3] = False  # a service nowhere
    want = _with_total_as_written_before(m, served)
    got = with_total(m, served)
    alone = with_total(m, served, totals_only=True)
    for key in METRICS:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
        np.testing.assert_array_equal(alone[key], want[key][:, -1:], err_msg=key)
    assert np.isnan(got["referrals"][:, -1, 3]).all() == gaps


def test_a_chunk_of_areas_gives_the_whole_runs_metrics_for_them(model: Model, case: Case) -> None:
    """Areas sliced first, chains replicate by replicate: the same numbers."""
    _, whole = _all_services(model, case, None)
    _, some = _all_services(model, case, [30, 2, 5])
    for key, value in some.items():
        np.testing.assert_array_equal(value, whole[key][:, [30, 2, 5]], err_msg=key)
