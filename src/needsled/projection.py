"""Run a model: forecast, draw parameters, simulate every scenario, return metrics.

Pure core: no files, no printing. Work is split into independent chunks (one scenario x a set
of areas, and optionally a set of services) through :func:`run_chunk` and
:func:`chunk_inputs`, which take and return plain arrays, so a distributed executor can take
chunks later. Each service of each chain (one area in one replicate) draws from its own random
stream, seeded from the seed, the area, the replicate and the service's code (see
:func:`chain_seeds`), so results do not depend on the chunking, nor on which other services
are simulated with it; and scenarios share random numbers, as do the services of two
scenarios that differ only in another service, which sharpens the comparison between them.
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from needsled import queueing
from needsled.demand import (
    Draws,
    LeverSizes,
    draw_parameters,
    lever_sizes,
    point_parameters,
    referrals,
    waterfall,
)
from needsled.flow import FlowInputs, FlowOutputs, simulate
from needsled.forecast import DEFAULT_METHOD, forecast
from needsled.model import Model
from needsled.scenarios import Scenario, month_index

__all__ = [
    "DERIVED",
    "METRICS",
    "Capacity",
    "Chunk",
    "RunResult",
    "ScenarioResult",
    "as_slice",
    "capacity",
    "chain_seeds",
    "chunk_inputs",
    "chunk_metrics",
    "cost_shortfall",
    "crime_point_forecast",
    "fte_needed",
    "fte_shortfall",
    "history_before_start",
    "run",
    "run_chunk",
    "service_key",
    "staffing_response",
    "with_total",
]

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
WEEKS_PER_MONTH = 52.0 / 12.0
TIME_TO_TARGET_WEEKS = 26.0  # NHS-R default for relief capacity

METRICS = (
    "referrals",
    "starts",
    "waiting",
    "open_cases",
    "drop_outs",
    "completions",
    "mean_wait_weeks",
    "p90_wait_weeks",
    "within_target_share",
    "utilisation",
    "caseload_per_fte",
    "places",
    "capacity",
    "fte",
    "fte_needed",
    "fte_shortfall",
    "cost_shortfall",
)
SUMMED = (
    "referrals",
    "starts",
    "waiting",
    "open_cases",
    "drop_outs",
    "completions",
    "places",
    "capacity",
    "fte",
    "fte_needed",
    "fte_shortfall",
    "cost_shortfall",
)
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ScenarioResult:
    """Metrics for one scenario.

    ``metrics[m]``: (R, A + 1, S, T) float32, replicates; the last area is all areas together.
    ``deterministic[m]``: (A + 1, S, T), the deterministic baseline run.
    ``waterfall``: (L, A, S) referrals each lever added over the horizon.
    ``demand_per_week``, ``places`` (A, S, T) and ``duration_weeks`` (S, T): the deterministic
    run's, for the analytic queueing layer.
    """

    scenario: Scenario
    metrics: dict[str, F32]
    deterministic: dict[str, F64]
    waterfall: F64
    demand_per_week: F64
    places: F64
    duration_weeks: F64


@dataclass(frozen=True)
class RunResult:
    model: Model
    replicates: int
    seed: int
    months: tuple[str, ...]
    scenarios: tuple[ScenarioResult, ...]
    forecast_method: str
    forecast_notes: tuple[str, ...]
    crime_mean: F64  # (A, O, T)
    crime_lo80: F64
    crime_hi80: F64


def run(
    model: Model,
    scenarios: Sequence[str] | None = None,
    replicates: int = 500,
    seed: int = 20240401,
    progress: Progress | None = None,
    chunk_areas: int | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Simulate the named scenarios (all of the model's by default).

    ``chunk_areas`` splits each scenario's areas into chunks of that many (default: one chunk),
    and ``executor`` (any ``concurrent.futures.Executor``) runs the chunks; the results are
    identical however the work is split.
    """
    if replicates < 1:
        raise ValueError(f"replicates must be at least 1, not {replicates}")
    chosen = [model.scenario(n) for n in scenarios] if scenarios else list(model.scenarios)
    horizon = model.settings.horizon_months
    history = history_before_start(model)
    n_a, n_o = history.shape[:2]
    method = model.settings.forecast_method or DEFAULT_METHOD
    groups = np.tile(np.arange(n_o), n_a)
    fc = forecast(
        history.reshape(n_a * n_o, -1),
        horizon,
        replicates,
        np.random.default_rng([seed, 1]),
        method=method,
        groups=groups,
    )
    paths = fc.paths.reshape(replicates, n_a, n_o, horizon)
    crime_mean = fc.mean.reshape(n_a, n_o, horizon)
    draws = draw_parameters(model, replicates, np.random.default_rng([seed, 2]))
    results = []
    for k, sc in enumerate(chosen):
        if progress:
            progress(sc.name, k, len(chosen))
        sizes = lever_sizes(sc, replicates, np.random.default_rng([seed, 3, _key(sc.name)]))
        results.append(
            _scenario(model, sc, paths, crime_mean, draws, sizes, seed, chunk_areas, executor)
        )
    if progress:
        progress("done", len(chosen), len(chosen))
    return RunResult(
        model,
        replicates,
        seed,
        model.months,
        tuple(results),
        fc.method,
        fc.notes,
        crime_mean,
        fc.lo80.reshape(crime_mean.shape),
        fc.hi80.reshape(crime_mean.shape),
    )


def crime_point_forecast(model: Model, seed: int = 20240401) -> F64:
    """The point forecast of recorded crime (A, O, T) that the deterministic run uses."""
    history = history_before_start(model)
    n_a, n_o = history.shape[:2]
    fc = forecast(
        history.reshape(n_a * n_o, -1),
        model.settings.horizon_months,
        1,
        np.random.default_rng([seed, 1]),
        method=model.settings.forecast_method or DEFAULT_METHOD,
        groups=np.tile(np.arange(n_o), n_a),
    )
    return fc.mean.reshape(n_a, n_o, -1)


def staffing_response(
    model: Model, sc: Scenario, fte: F64, crime_mean: F64, seed: int = 20240401
) -> dict[str, F64]:
    """The deterministic run of one scenario under each of ``J`` staffing plans.

    ``fte`` is (J, A, S); the plans replace today's staffing and the scenario's FTE levers
    (demand, duration and cost levers still apply). Returns (J, A, S, T) arrays: ``starts``,
    ``within`` (starts within the target wait), ``within_priority`` (those of priority
    referrals; where a service keeps one first-come-first-served list the classes are not told
    apart, so its share of ``within`` is the priority share of its referrals), ``open_cases``,
    ``referrals``; and ``cost_per_fte`` (S, T) after the scenario's cost levers.
    """
    n_j = fte.shape[0]
    point, psizes = point_parameters(model), lever_sizes(sc, 1, None)
    arrivals = referrals(model, crime_mean[None], point, sc, psizes)
    tiled = Draws(
        pathway={k: np.repeat(v, n_j, axis=0) for k, v in point.pathway.items()},
        need_mix=np.repeat(point.need_mix, n_j, axis=0),
        duration_weeks=np.repeat(point.duration_weeks, n_j, axis=0),
        drop_out_per_month=np.repeat(point.drop_out_per_month, n_j, axis=0),
        cost_per_fte=np.repeat(point.cost_per_fte, n_j, axis=0),
        reengage_share=np.repeat(point.reengage_share, n_j, axis=0),
    )
    sizes = LeverSizes(tuple(np.repeat(x, n_j) for x in psizes.sizes))
    m = run_chunk(
        model,
        sc,
        np.repeat(arrivals, n_j, axis=0),
        tiled,
        sizes,
        seed,
        stochastic=False,
        fte_base=np.asarray(fte, dtype=np.float64),
    )
    starts = m["starts"].astype(np.float64)
    within = starts * np.nan_to_num(m["within_target_share"].astype(np.float64))
    prio = arrivals[0, ..., 0] / np.maximum(arrivals[0].sum(-1), 1e-12)  # (A, S, T)
    shared = ~model.services.priority_first[None, None, :, None]
    within_priority = np.where(
        shared, within * prio[None], m["within_target_priority"].astype(np.float64)
    )
    cap = capacity(model, sc, point, psizes)
    return {
        "starts": starts,
        "within": within,
        "within_priority": within_priority,
        "open_cases": m["open_cases"].astype(np.float64),
        "referrals": m["referrals"].astype(np.float64),
        "cost_per_fte": cap.cost_per_fte[0],
    }


def _key(name: str) -> int:
    return zlib.crc32(name.encode())


def history_before_start(model: Model) -> F64:
    """Recorded crime (A, O, months) up to the month before the first projected month: what
    the forecast is fitted to."""
    cut = month_index(model.history_end) - (model.first_month - 1)
    if cut <= 0:
        return model.crime_history
    return model.crime_history[..., : model.crime_history.shape[-1] - cut]


def _scenario(
    model: Model,
    sc: Scenario,
    paths: F64,
    crime_mean: F64,
    draws: Draws,
    sizes: LeverSizes,
    seed: int,
    chunk_areas: int | None,
    executor: Executor | None,
) -> ScenarioResult:
    arrivals = referrals(model, paths, draws, sc, sizes)
    n_a = len(model.area_codes)
    step = chunk_areas or n_a
    chunks = [list(range(i, min(i + step, n_a))) for i in range(0, n_a, step)]

    def one(areas: list[int]) -> dict[str, F32]:
        return run_chunk(model, sc, arrivals, draws, sizes, seed, stochastic=True, areas=areas)

    parts = list(executor.map(one, chunks)) if executor else [one(c) for c in chunks]
    metrics = with_total(
        {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}, model.staffing.served
    )
    point, psizes = point_parameters(model), lever_sizes(sc, 1, None)
    det_arr = referrals(model, crime_mean[None], point, sc, psizes)
    det = with_total(
        run_chunk(model, sc, det_arr, point, psizes, seed, stochastic=False), model.staffing.served
    )
    cap = capacity(model, sc, point, psizes)
    places = cap.slots[0]
    return ScenarioResult(
        scenario=sc,
        metrics=metrics,
        deterministic={k: v[0].astype(np.float64) for k, v in det.items()},
        waterfall=waterfall(model, crime_mean, sc),
        demand_per_week=det_arr[0].sum(axis=-1) / WEEKS_PER_MONTH,
        places=places,
        duration_weeks=cap.duration_weeks[0],
    )


@dataclass(frozen=True)
class Capacity:
    """Staff and places (R, A, S, T), support weeks and cost per FTE (R, S, T) by month."""

    fte: F64  # (R, A, S, T)
    slots: F64  # (R, A, S, T)
    duration_weeks: F64  # (R, S, T)
    cost_per_fte: F64  # (R, S, T)


def capacity(
    model: Model,
    sc: Scenario,
    draws: Draws,
    sizes: LeverSizes,
    fte_base: F64 | None = None,
    areas: NDArray[np.int64] | None = None,
    services: NDArray[np.int64] | None = None,
) -> Capacity:
    """Staff, places, support weeks and cost per FTE by month, after the scenario's levers.

    ``fte_base`` (R, A, S), when given, is the staffing of each replicate (a plan being
    appraised); it replaces today's staffing and the scenario's FTE levers. ``areas`` and
    ``services``: only these areas' and services' figures (A and S are then their numbers;
    each value is as for all of them).
    """
    n_r = draws.n
    months = np.arange(model.first_month, model.first_month + model.settings.horizon_months)
    n_t = len(months)
    st = model.staffing
    ai = np.arange(len(model.area_codes)) if areas is None else np.asarray(areas)
    si = np.arange(len(model.services)) if services is None else np.asarray(services)
    cells = np.ix_(ai, si)
    base = st.fte[cells][None] if fte_base is None else fte_base[:, ai][:, :, si]
    fte = np.broadcast_to(base[..., None], (n_r, len(ai), len(si), n_t)).copy()
    dur = np.broadcast_to(draws.duration_weeks[:, si, None], (n_r, len(si), n_t))
    cost = np.broadcast_to(draws.cost_per_fte[:, si, None], dur.shape)
    dur, cost = dur.copy(), cost.copy()
    svc = np.array(model.services.codes)[si]
    codes = [model.area_codes[a] for a in ai]
    for i, lever in enumerate(sc.levers):
        w = lever.profile_weights(months, model.first_month)
        s_on = np.array([lever.services is None or s in lever.services for s in svc], float)
        a_on = np.array([lever.areas is None or a in lever.areas for a in codes], float)
        size = sizes.sizes[i]
        if lever.lever == "fte" and fte_base is None:
            reach = a_on[None, :, None, None] * s_on[None, None, :, None] * w
            rel = size if lever.change is not None else np.zeros(n_r)
            fte *= 1.0 + rel[:, None, None, None] * reach
            if lever.add is not None:
                add = size if lever.change is None else np.full(n_r, lever.add)
                fte += add[:, None, None, None] * reach * st.served[cells][None, :, :, None]
        elif lever.lever in ("support_duration", "cost_per_fte"):
            target = dur if lever.lever == "support_duration" else cost
            target *= 1.0 + size[:, None, None] * (s_on[None, :, None] * w[None, None, :])
    fte = np.maximum(fte, 0.0)
    slots = fte * model.services.places_per_fte[si][None, None, :, None]
    return Capacity(fte, slots, np.maximum(dur, 1e-6), cost)


def n_phases(duration_steps: F64, cv: F64) -> NDArray[np.int64]:
    """Erlang phases for each service: about ``1/cv^2``, but no more than the mean in steps.

    More phases than whole steps in the mean would need a phase to last under one step, which
    a discrete step cannot hold, so the spread is then as narrow as the step allows.
    """
    wanted = np.where(cv > 0, np.round(1.0 / np.maximum(cv, 1e-3) ** 2), 10_000)
    return np.maximum(1, np.minimum(wanted, np.floor(duration_steps))).astype(np.int64)


@dataclass(frozen=True)
class Chunk:
    """One chunk's areas and services, and what turns the engine's outputs for it into
    metrics (:func:`chunk_metrics`): staff and places (R, A_c, S_c, T), support weeks and
    cost per FTE (R, S_c, T), and expected referrals a week (R, A_c, S_c, T)."""

    areas: NDArray[np.int64]
    services: NDArray[np.int64]
    step_weeks: float
    fte: F64
    slots: F64
    duration_weeks: F64
    cost_per_fte: F64
    demand_week: F64


def run_chunk(
    model: Model,
    sc: Scenario,
    arrivals: F64,
    draws: Draws,
    sizes: LeverSizes,
    seed: int,
    *,
    stochastic: bool,
    areas: Sequence[int] | None = None,
    fte_base: F64 | None = None,
) -> dict[str, F32]:
    """Simulate one scenario for some areas (default all); metrics (R, A_chunk, S, T) float32.

    ``arrivals`` is (R, A, S, T, 2) from :func:`needsled.demand.referrals`. Only plain arrays
    go in and out, so a chunk can run anywhere. With ``fte_base`` (R, A, S) each replicate
    runs that staffing (see :func:`capacity`), and the metrics also hold
    ``within_target_priority``, the priority referrals' starts within the target wait.
    The same as :func:`chunk_inputs`, :func:`needsled.flow.simulate`, :func:`chunk_metrics`.
    """
    inputs, chunk = chunk_inputs(
        model, sc, arrivals, draws, sizes, seed, areas=areas, fte_base=fte_base
    )
    out = simulate(inputs, stochastic=stochastic)
    return chunk_metrics(out, chunk, model, priority=fte_base is not None)


def chunk_inputs(
    model: Model,
    sc: Scenario,
    arrivals: F64,
    draws: Draws,
    sizes: LeverSizes,
    seed: int,
    *,
    areas: Sequence[int] | None = None,
    services: Sequence[int] | None = None,
    fte_base: F64 | None = None,
    arrivals_of_services: bool = False,
) -> tuple[FlowInputs, Chunk]:
    """The engine's inputs for one scenario in some areas (default all) and some services
    (default all, in order), as :func:`run_chunk` simulates them, and what
    :func:`chunk_metrics` needs besides. ``arrivals_of_services``: ``arrivals`` holds only
    the ``services``' columns, in their order (``demand.referrals(..., services=...)``).

    Any subset of services runs on its own exactly as in a run of every service: each
    service of each chain has its own random streams (:func:`chain_seeds`), and a service's
    inputs do not depend on the others'.
    """
    ai = np.arange(arrivals.shape[1]) if areas is None else np.asarray(areas, dtype=np.int64)
    sv, st = model.services, model.staffing
    si = np.arange(len(sv)) if services is None else np.asarray(services, dtype=np.int64)
    if len(np.unique(si)) != len(si):
        raise ValueError(f"a chunk's services must differ from one another, not {si.tolist()}")
    a_at, s_at = as_slice(ai), as_slice(si)  # slices where they can be: views, not copies
    arr = arrivals[:, a_at] if arrivals_of_services else arrivals[:, a_at][:, :, s_at]
    if arr.shape[2] != len(si):
        raise ValueError(f"arrivals for {arr.shape[2]} services, not the {len(si)} asked for")
    cap = capacity(model, sc, draws, sizes, fte_base, areas=ai, services=si)
    weekly = model.settings.step == "week"
    step_weeks = 1.0 if weekly else WEEKS_PER_MONTH
    n_r, n_a, n_t = draws.n, len(ai), arrivals.shape[3]
    n_c = n_a * n_r
    k = max(2, round(model.settings.wait_buckets_months * WEEKS_PER_MONTH / step_weeks) + 1)
    base_steps = sv.duration_weeks.value[si] / step_weeks
    phases = n_phases(base_steps, sv.duration_cv[si])
    hazard = np.minimum(1.0, phases[None, :, None] / (cap.duration_weeks / step_weeks))
    drop = 1.0 - (1.0 - draws.drop_out_per_month[:, s_at]) ** (step_weeks / WEEKS_PER_MONTH)

    # chain c is replicate c // A_c in area c % A_c: (R, A_c, ...) arrays are chains as they are
    def chains(x: F64) -> F64:  # (R, A_c, ...) -> (R * A_c, ...)
        return x.reshape(n_c, *x.shape[2:])

    def per_chain(x: F64) -> F64:  # (R, ...) -> repeated for each area
        return np.broadcast_to(x[:, None], (n_r, n_a, *x.shape[1:])).reshape(n_c, *x.shape[1:])

    def per_area(x: F64) -> F64:  # (A_c, ...) -> repeated for each replicate
        return np.broadcast_to(x[None], (n_r, *x.shape)).reshape(n_c, *x.shape[1:])

    prio0 = arr[:, :, :, 0, 0].sum(0) / np.maximum(arr[:, :, :, 0, :].sum((0, 3)), 1e-12)
    cells = np.ix_(ai, si)
    wait0 = _waiting_start(
        st.waiting_start[cells], st.waiting_start_mean_weeks[cells] / step_weeks, prio0, k
    )
    period = None
    if weekly:  # a month's referrals shared evenly among its weeks
        month_of = period = _steps(n_t, weekly)
        per_month = np.bincount(month_of, minlength=n_t)[month_of]  # steps in the step's month
        steps, slots = arr[:, :, :, month_of] / per_month[:, None], cap.slots[..., month_of]
        hazard = hazard[..., month_of]
    else:
        steps, slots = arr, cap.slots
    inputs = FlowInputs(
        arrivals=chains(steps),
        slots=chains(slots),
        hazard=per_chain(hazard),
        n_phases=phases,
        drop=per_chain(drop),
        reengage_share=per_chain(draws.reengage_share[:, s_at]),
        reengage_steps=np.maximum(1, np.round(sv.reengage_after_weeks / step_weeks)).astype(
            np.int64
        )[si],
        waiting_start=per_area(wait0),
        open_start=per_area(st.open_start[cells]),
        target_steps=np.floor(sv.target_wait_weeks / step_weeks + 1e-9).astype(np.int64)[si],
        stretch=sv.stretch[si],
        priority_first=sv.priority_first[si],
        seeds=chain_seeds(seed, ai, n_r, [sv.codes[s] for s in si]),
        period=period,
    )
    chunk = Chunk(
        areas=ai,
        services=si,
        step_weeks=step_weeks,
        fte=cap.fte,
        slots=cap.slots,
        duration_weeks=cap.duration_weeks,
        cost_per_fte=cap.cost_per_fte,
        demand_week=(arr[..., 0] + arr[..., 1]) / WEEKS_PER_MONTH,
    )
    return inputs, chunk


def as_slice(idx: NDArray[np.int64]) -> slice | NDArray[np.int64]:
    """An index array as a slice where it is a run of consecutive indices (indexing with it
    then gives a view, not a copy); otherwise the array itself."""
    if len(idx) and np.array_equal(idx, np.arange(idx[0], idx[0] + len(idx))):
        return slice(int(idx[0]), int(idx[0]) + len(idx))
    return idx


DERIVED: tuple[str, ...] = ("utilisation", "caseload_per_fte", "fte", "places", "capacity")
DERIVED += ("fte_needed", "fte_shortfall", "cost_shortfall")


def chunk_metrics(
    out: FlowOutputs,
    chunk: Chunk,
    model: Model,
    *,
    wanted: Sequence[str] | None = None,
    priority: bool = False,
) -> dict[str, F32]:
    """The metrics (R, A_c, S_c, T) float32 of one chunk from the engine's outputs for it:
    every one in :data:`METRICS` (``wanted``: those engine outputs and those of
    :data:`DERIVED`; the rest are left out), and with ``priority``
    ``within_target_priority`` too."""
    n_a, n_s = len(chunk.areas), len(chunk.services)
    n_t = out.referrals.shape[2]
    n_r = out.referrals.shape[0] // n_a
    want = set(METRICS if wanted is None else wanted)

    def back(x: F32) -> F32:  # (R * A_c, S_c, T) -> (R, A_c, S_c, T)
        return x.reshape(n_r, n_a, n_s, n_t)

    weeks = np.float32(chunk.step_weeks)
    m: dict[str, F32] = {
        "referrals": back(out.referrals),
        "starts": back(out.starts),
        "waiting": back(out.waiting),
        "open_cases": back(out.open_cases),
        "drop_outs": back(out.drop_outs),
        "completions": back(out.completions),
    }
    if "mean_wait_weeks" in want:
        m["mean_wait_weeks"] = back(out.mean_wait_steps) * weeks
    if "p90_wait_weeks" in want:
        m["p90_wait_weeks"] = back(out.p90_wait_steps) * weeks
    m["within_target_share"] = back(out.within_target_share)
    if priority:
        m["within_target_priority"] = back(out.within_target_priority)
    _derived(m, chunk, model, [k for k in DERIVED if k in want])
    stretch = model.services.stretch[chunk.services]
    for key in ("waiting", "mean_wait_weeks", "p90_wait_weeks"):
        if key in m and stretch.any():  # a stretch service keeps no list
            m[key] = np.where(stretch[None, None, :, None], np.float32(0), m[key])
    keep = want | {"within_target_priority"}
    return {k: v for k, v in m.items() if k in keep}


def _steps(n_months: int, weekly: bool) -> NDArray[np.int64]:
    """The month of each simulation step: one step a month, or 52 weekly steps a year (a
    month's referrals are shared evenly among its weeks, and results are reported by month)."""
    if not weekly:
        return np.arange(n_months, dtype=np.int64)
    n_weeks = round(n_months * 52 / 12)
    return np.minimum(np.arange(n_weeks) * 12 // 52, n_months - 1).astype(np.int64)


def _waiting_start(count: F64, mean_steps: F64, prio_share: F64, k: int) -> F64:
    """Starting list (A, S, 2, K) in whole people: spread evenly over waits of 0 to twice the
    average wait (so the average is as given), split between the classes by priority share.
    Each cell's ``total`` people go over its ``span`` buckets ``total // span`` each, one
    more in the first ``total % span``."""
    total = np.round(count).astype(np.int64)[..., None]  # (A, S, 1)
    span = np.minimum(k, np.round(2 * mean_steps).astype(np.int64) + 1)[..., None]
    span = np.maximum(span, 1)  # only read where there is somebody
    bucket = np.arange(k)
    spread = np.where(
        (bucket < span) & (total > 0), total // span + (bucket < total % span), 0
    ).astype(np.float64)
    prio = np.round(spread * prio_share[..., None])
    return np.stack([prio, spread - prio], axis=2)


def service_key(code: str) -> int:
    """A service's key in its random streams' seeds: its code hashed (the first 64 bits of
    BLAKE2b), the same in every process and on every machine, and whatever the service's
    position in the model (so adding or removing a service changes no other's numbers)."""
    return int.from_bytes(hashlib.blake2b(code.encode(), digest_size=8).digest(), "little")


def chain_seeds(
    seed: int, areas: NDArray[np.int64], n_r: int, services: Sequence[str]
) -> NDArray[np.uint64]:
    """The seed of each service's random stream in each chain (R * A_c, S_c), chains
    replicate by replicate, from (seed, area, replicate, service code).

    A chain's word comes from ``SeedSequence([seed, 4, area])`` (its replicate-th word; the
    first words do not depend on how many are made); each service's seed is that word XOR the
    service's :func:`service_key`, put through SplitMix64's finaliser (a bijection that mixes
    every bit into every other). Distinct services of a chain therefore start from distinct,
    unrelated states, and none depends on which other services there are."""
    words = _chain_words(seed, tuple(int(a) for a in areas), n_r)
    keys = np.array([service_key(code) for code in services], dtype=np.uint64)
    return _mix64(words[:, None] ^ keys[None, :])


@functools.lru_cache(maxsize=16)
def _chain_words(seed: int, areas: tuple[int, ...], n_r: int) -> NDArray[np.uint64]:
    """Each chain's word (R * A_c,), read-only (kept: a chunk of one service needs them too)."""
    rows = [np.random.SeedSequence([seed, 4, a]).generate_state(n_r, np.uint64) for a in areas]
    by_area = np.stack(rows) if rows else np.zeros((0, n_r), np.uint64)  # (A_c, R)
    words = np.ascontiguousarray(by_area.T, dtype=np.uint64).reshape(-1)
    words.flags.writeable = False
    return words


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """SplitMix64's finaliser (Stafford's Mix13), element by element, on a new array."""
    z = np.array(x, dtype=np.uint64)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def fte_needed(m: Mapping[str, F32], chunk: Chunk, model: Model) -> F64:
    """FTE needed to meet the target wait (R, A_c, S_c, T), from a chunk's waiting list and
    open cases (a stretch service's from its open cases alone: its list is not read).

    Queue services: the capacity (starts a week) needed is the larger of the NHS-R target
    capacity (Kingman form, cv 1) and the relief capacity that brings today's list to its
    target size in 26 weeks; FTE = capacity / (places per FTE / support weeks). Stretch
    services: FTE = open cases / safe caseload per FTE.
    """
    sv = model.services
    si = chunk.services
    ppf = sv.places_per_fte[si][None, None, :, None]
    stretch = sv.stretch[si]
    queue = ~stretch
    every = slice(None) if queue.all() else queue  # a view where every service queues
    needed = None
    if queue.any():
        demand_week = chunk.demand_week[:, :, every]
        tw = sv.target_wait_weeks[si][queue][None, None, :, None]
        per_fte_week = ppf[:, :, every] / chunk.duration_weeks[:, None, every]
        # the NHS-R formulas without their argument checks (passes over a million cells):
        # demand, waits and list sizes here are finite and not negative by construction
        target = np.asarray(queueing._target_capacity(demand_week, tw), dtype=np.float64)
        waiting = np.maximum(m["waiting"][:, :, every], 0.0)  # no -1e-15 from subtraction
        queue_size = queueing._target_queue_size(demand_week, tw)
        relief = queueing._relief_capacity(demand_week, waiting, queue_size, TIME_TO_TARGET_WEEKS)
        queue_fte = np.divide(np.maximum(target, relief, out=target), per_fte_week, out=target)
        if queue.all():
            needed = queue_fte
    if needed is None:
        needed = np.empty(m["open_cases"].shape)
        needed[:, :, stretch] = m["open_cases"][:, :, stretch] / ppf[:, :, stretch]
        if queue.any():
            needed[:, :, queue] = queue_fte
    return needed


def fte_shortfall(needed: F64, chunk: Chunk) -> F64:
    """FTE short of what the target wait needs (R, A_c, S_c, T): never below 0."""
    return np.maximum(needed - chunk.fte, 0.0)


def cost_shortfall(short: F64, cost_per_fte: F64) -> F32:
    """What the shortfall's staff (R, A_c, S_c, T) would cost, £ a year, float32, at a cost
    per FTE (R, S_c, T)."""
    return (short * cost_per_fte[:, None]).astype(np.float32)


def _derived(m: dict[str, F32], chunk: Chunk, model: Model, wanted: Sequence[str]) -> None:
    """The metrics computed from the engine's (those of :data:`DERIVED` in ``wanted``):
    caseloads, staff and places, the capacity they give, and the FTE needed to meet the
    target wait (:func:`fte_needed`) with the shortfall in FTE and money."""
    fte, slots = chunk.fte, chunk.slots
    with np.errstate(invalid="ignore", divide="ignore"):
        if "utilisation" in wanted:
            util = np.where(slots > 0, m["open_cases"] / slots, np.nan)
            m["utilisation"] = util.astype(np.float32)
        if "caseload_per_fte" in wanted:  # NaN where there is no staff
            load = np.divide(m["open_cases"], fte)
            load[~(fte > 0)] = np.nan
            m["caseload_per_fte"] = load.astype(np.float32)
    if "fte" in wanted:
        m["fte"] = fte.astype(np.float32)
    if "places" in wanted:
        m["places"] = slots.astype(np.float32)
    if "capacity" in wanted:
        dur = chunk.duration_weeks[:, None]
        per_month = np.divide(slots, dur)
        per_month *= WEEKS_PER_MONTH
        m["capacity"] = per_month.astype(np.float32)
    if {"fte_needed", "fte_shortfall", "cost_shortfall"} & set(wanted):
        needed = fte_needed(m, chunk, model)
        m["fte_needed"] = needed.astype(np.float32)
        short = fte_shortfall(needed, chunk)
        m["fte_shortfall"] = short.astype(np.float32)
        if "cost_shortfall" in wanted:
            m["cost_shortfall"] = cost_shortfall(short, chunk.cost_per_fte)


def with_total(
    m: Mapping[str, F32], served: NDArray[np.bool_], *, totals_only: bool = False
) -> dict[str, F32]:
    """Append 'all areas' to metrics (R, A, S, T): (R, A + 1, S, T), the last area all areas
    together (sums, or starts-weighted waits, or pooled ratios; NaN for a 90th percentile),
    and NaN where a service is absent (``served`` (A, S)). With ``totals_only`` only the
    all-areas row (R, 1, S, T), as it would be appended."""
    mask = served[None, :, :, None]
    everywhere = bool(served.all())  # then nothing is masked (and nothing copied for it)

    def masked(x: F32, fill: float) -> F32:
        return x if everywhere else np.where(mask, x, np.float32(fill))

    out: dict[str, F32] = {}
    if {"mean_wait_weeks", "within_target_share"} & set(m):  # weighted by starts
        starts = masked(m["starts"], 0)
        total_starts = starts.sum(1, keepdims=True)
    served_any = np.asarray(served.any(axis=0))[None, None, :, None]
    for key, x in m.items():
        x = masked(x, np.nan)
        if key in SUMMED:
            tot = _nansum_areas(x)
        elif key in ("mean_wait_weeks", "within_target_share"):
            with np.errstate(invalid="ignore", divide="ignore"):
                tot = _nansum_areas(x * starts) / total_starts
        elif key in ("utilisation", "caseload_per_fte"):
            denom = m["places"] if key == "utilisation" else m["fte"]
            with np.errstate(invalid="ignore", divide="ignore"):
                tot = masked(m["open_cases"], 0).sum(1, keepdims=True) / masked(denom, 0).sum(
                    1, keepdims=True
                )
        else:  # a 90th percentile cannot be pooled from the areas' 90th percentiles
            tot = np.full_like(x[:, :1], np.nan)
        if totals_only:
            out[key] = np.where(served_any, tot.astype(np.float32), np.float32(np.nan))
        else:
            out[key] = np.concatenate([x, tot.astype(np.float32)], axis=1)
    if not totals_only:
        for key in out:
            out[key][:, -1:] = np.where(served_any, out[key][:, -1:], np.nan)
    return out


def _nansum_areas(x: F32) -> F32:
    """``np.nansum`` over the areas (axis 1, kept): the same sum, without copying ``x`` to
    zero its NaN when it holds none."""
    if np.isnan(x).any():
        return np.asarray(np.nansum(x, axis=1, keepdims=True), dtype=np.float32)
    return np.asarray(x.sum(1, keepdims=True), dtype=np.float32)
