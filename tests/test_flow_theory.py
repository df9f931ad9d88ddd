"""Queueing-theory checks of the flow engine (:func:`needsled.flow.simulate`).

Every check compares the engine with a result known independently of it (M/M/c, Little's
law, binomial thinning, the Poisson and binomial laws) or with itself under a change that
must not matter (seeds, batching, threads). Tolerances are named constants; each says
where its width comes from.

Time unit and step for the M/M/c checks
---------------------------------------
The unit of time is one mean support duration (``mu = 1``). A step lasts ``dt``, so the
per-step hazard is ``h = mu * dt`` and the expected referrals per step are ``lambda * dt``.

What a step means in continuous time (the whole-step correction)
----------------------------------------------------------------
Map step ``t`` to the interval ``((t - 1) dt, t dt]``. Completions and referrals that fall
in the interval are settled at its end, where the starts happen (flow.py: completions ->
arrivals -> starts). Two effects follow.

1. *Counting.* A victim who arrives at ``tau_a`` and would start at ``tau_s`` is recorded
   as waiting ``ceil(tau_s / dt) - ceil(tau_a / dt)`` steps. Both ends are rounded up, and
   for an arrival placed uniformly within its step ``E[ceil(u + w) - ceil(u)] = w`` for
   every ``w >= 0``: the whole-step count is unbiased. In particular "arrived and started
   in the same step = 0 steps" needs no +1/2 step: adding one would be wrong (the
   ``c = 20`` checks below, whose waits are hundredths of a step, reject it).
2. *Durations.* A support spell lasts a whole number ``G >= 1`` of steps, geometric with
   ``P(G = k) = h (1 - h)^(k - 1)``: mean ``1 / h`` steps = ``1 / mu`` exactly, but
   variance ``(1 - h) / h^2``, a squared coefficient of variation of ``1 - h`` instead of
   1. The queue is an M/G/c queue with slightly less variable service, and the mean wait
   scales with ``(1 + cv^2) / 2`` (Pollaczek-Khinchine for ``c = 1``; Allen-Cunneen for
   ``c > 1``)::

       W_engine [steps] = mmc_mean_wait(lambda, mu, c) / dt * (1 - h / 2)

   :func:`test_discrete_chain_is_mmc_with_whole_step_correction` solves the engine's exact
   discrete-time Markov chain and confirms this: exact for ``c = 1`` at any ``h``, and within
   ``0.42 h^2`` (relative) for ``c`` up to 20 and loads 0.5-0.9.

The same chain gives, exactly, utilisation ``E[open cases] = lambda / mu`` (each start holds
its slot for ``1 / h`` steps on average) and Little's law for the recorded list,
``E[waiting] = (lambda dt) * W_engine`` (a victim who waits ``k`` steps is on the list at
``k`` end-of-step records).

Monte Carlo design
------------------
Each chain starts from a draw of the exact stationary law of the number of cases (open +
waiting), so the queue length is stationary from step 0. Only the initial waiters' ages
are wrong (they start at 0 steps); the warm-up lasts until they have all started with
probability ``1 - 1e-3`` (1.5 times the mean time to serve the 1e-3 quantile of the initial
list), after which every start is of a victim who arrived during the run and the state,
ages included, is exactly stationary. Standard errors come from batch means: each chain's window
is one independent batch, and ratio estimators are linearised (delta method).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path

import numba
import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from needsled.flow import FlowInputs, FlowOutputs, draw_arrivals, simulate
from needsled.queueing import mmc_mean_wait

F64 = NDArray[np.float64]

# Monte Carlo tolerance: 4 standard errors. Seeds are fixed, so every run is reproducible;
# under other seeds one of the ~90 MC assertions in this file would fail by chance with
# probability about 90 x 6.3e-5 = 0.6 %.
Z_MC = 4.0

# Second-order discretisation residual after the (1 - h/2) correction, relative. The exact
# discrete chain gives at most 0.42 h^2 over c in {1, 5, 20}, rho in [0.5, 0.9],
# h in {0.02, 0.25} (and 0 for c = 1); 0.5 h^2 covers it.
STEP_RESIDUAL_COEF = 0.5

# Float32 outputs: 2^-24 = 6e-8 relative per stored value; a ratio of two values and a
# float64 computation of the reference stay well inside 1e-6.
FLOAT32_RTOL = 1e-6

# The binomial sampler's Normal path rounds to whole people: the variance is n p q plus
# the rounding variance of a uniform error on [-1/2, 1/2], 1/12 (absolute).
NORMAL_ROUNDING_VAR = 1.0 / 12.0

# Goodness-of-fit significance level for the chi-square test of the samplers' laws.
CHI2_ALPHA = 1e-4

# Fine step: the mean support duration is 50 steps (h = 0.02); coarse step: 4 steps.
H_FINE = 0.02
H_COARSE = 0.25

# Probability that an initial waiter is still waiting when the measured window opens.
WARMUP_LEAK = 1e-3


# --- building inputs -------------------------------------------------------------------


def _inputs(
    n_chains: int,
    n_steps: int,
    n_buckets: int,
    *,
    lam: list[float] | F64,
    slots: list[float] | F64,
    hazard: list[float] | F64,
    n_phases: list[int] | None = None,
    priority_share: list[float] | None = None,
    drop: list[float] | None = None,
    reengage_share: list[float] | None = None,
    reengage_steps: list[int] | None = None,
    open_start: F64 | None = None,
    waiting_start: F64 | None = None,
    target_steps: list[int] | None = None,
    stretch: list[bool] | None = None,
    priority_first: list[bool] | None = None,
    seed0: int = 0,
) -> FlowInputs:
    """Inputs constant over chains and steps; one entry per service in every list."""
    lam_a = np.asarray(lam, dtype=np.float64)
    n_services = lam_a.size

    def per_service(value: list[float] | list[int] | list[bool] | F64 | None, fill: float) -> F64:
        if value is None:
            return np.full(n_services, fill, dtype=np.float64)
        return np.asarray(value, dtype=np.float64)

    share = per_service(priority_share, 0.0)
    shape = (n_chains, n_services, n_steps)
    arrivals = np.empty((*shape, 2))
    arrivals[..., 0] = (lam_a * share)[None, :, None]
    arrivals[..., 1] = (lam_a * (1.0 - share))[None, :, None]
    return FlowInputs(
        arrivals=arrivals,
        slots=np.broadcast_to(per_service(slots, 0.0)[None, :, None], shape).copy(),
        hazard=np.broadcast_to(per_service(hazard, 1.0)[None, :, None], shape).copy(),
        n_phases=per_service(n_phases, 1).astype(np.int64),
        drop=np.broadcast_to(per_service(drop, 0.0), (n_chains, n_services)).copy(),
        reengage_share=np.broadcast_to(
            per_service(reengage_share, 0.0), (n_chains, n_services)
        ).copy(),
        reengage_steps=per_service(reengage_steps, 0).astype(np.int64),
        waiting_start=(
            np.zeros((n_chains, n_services, 2, n_buckets))
            if waiting_start is None
            else waiting_start
        ),
        open_start=np.zeros((n_chains, n_services)) if open_start is None else open_start,
        target_steps=per_service(target_steps, 0).astype(np.int64),
        stretch=per_service(stretch, 0).astype(np.bool_),
        priority_first=per_service(priority_first, 0).astype(np.bool_),
        # chain c's service s: seed0 + c + s * 2^40 (apart from any other call's seeds; one
        # service: seed0 + c)
        seeds=seed0 + np.arange(n_chains)[:, None] + (np.arange(n_services) << 40),
    )


def _batch_se(values: F64) -> float:
    """Standard error of the mean of independent per-chain values."""
    return float(values.std(ddof=1) / math.sqrt(values.size))


def _ratio_se(num: F64, den: F64) -> tuple[float, float]:
    """Ratio estimator sum(num) / sum(den) over chains and its delta-method standard error."""
    ratio = float(num.sum() / den.sum())
    return ratio, _batch_se((num - ratio * den) / den.mean())


# --- the engine's exact discrete-time chain ---------------------------------------------


def _discrete_chain(lam_step: float, h: float, c: int) -> F64:
    """Stationary law of the number of cases (open + waiting) recorded at the end of a step.

    One step of the engine with ``n_phases = 1``, no drop-out and ``c`` slots: each of the
    ``min(n, c)`` open cases completes with probability ``h`` (binomial), Poisson(``lam_step``)
    referrals arrive, and free slots are filled, so ``n' = n - Bin(min(n, c), h) + Pois``.
    Truncated where the geometric tail (ratio ``rho`` above ``c``) is below 1e-15.
    """
    rho = lam_step / (c * h)
    size = int(c + math.log(1e-15) / math.log(rho)) + 30
    pois = stats.poisson.pmf(np.arange(size), lam_step)
    binom = [stats.binom.pmf(np.arange(b + 1), b, h)[::-1] for b in range(c + 1)]
    trans = np.zeros((size, size))
    for n in range(size):
        busy = min(n, c)
        lowest = n - busy
        step = np.convolve(binom[busy], pois)[: size - lowest]
        trans[n, lowest:] = step
        trans[n, -1] += 1.0 - trans[n].sum()
    system = trans.T - np.eye(size)
    system[-1] = 1.0
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    pi = np.clip(np.linalg.solve(system, rhs), 0.0, None)
    return np.asarray(pi / pi.sum(), dtype=np.float64)


def _chain_wait_steps(pi: F64, lam_step: float, c: int) -> float:
    """Exact mean wait in steps of the discrete chain, by Little's law on the list."""
    queue = np.maximum(np.arange(pi.size) - c, 0)
    return float(pi @ queue / lam_step)


def _mmc_steps(rho: float, c: int, h: float) -> float:
    """M/M/c mean wait in steps with mu = 1 and dt = h, before any correction."""
    return float(mmc_mean_wait(rho * c, 1.0, c)) / h


@pytest.mark.parametrize("h", [H_FINE, H_COARSE])
def test_discrete_chain_is_mmc_with_whole_step_correction(h: float) -> None:
    """The derivation in the module docstring, checked on the exact discrete chain."""
    for c in (1, 5, 20):
        for rho in (0.5, 0.7, 0.85, 0.9):
            lam_step = rho * c * h
            pi = _discrete_chain(lam_step, h, c)
            exact = _chain_wait_steps(pi, lam_step, c)
            corrected = _mmc_steps(rho, c, h) * (1.0 - h / 2.0)
            residual = abs(exact / corrected - 1.0)
            bound = 1e-9 if c == 1 else STEP_RESIDUAL_COEF * h**2
            assert residual <= bound, (c, rho, h, exact, corrected)
            # the correction matters: without it the error is h/2, first order
            assert abs(exact / _mmc_steps(rho, c, h) - 1.0) == pytest.approx(h / 2, rel=0.5)
            busy = pi @ np.minimum(np.arange(pi.size), c)
            assert busy == pytest.approx(rho * c, rel=1e-9)


# --- M/M/c -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """Per-chain sums over the measured window, arrays of shape (C, S)."""

    wait_sum: F64
    starts: F64
    waiting: F64
    open_cases: F64
    referrals: F64
    n_steps: int


def _warmup_steps(rho: float, c: int, h: float) -> int:
    """Steps until the initial waiters have started, with probability 1 - WARMUP_LEAK.

    In M/M/c the list above ``c`` is geometric with ratio ``rho``, so its 1 - WARMUP_LEAK
    quantile is about ``log(WARMUP_LEAK) / log(rho)``; serving that many at ``c h`` per step
    takes ``q / (c h)`` steps on average, with a standard deviation of ``sqrt(q) / (c h)``,
    so 1.5 times the mean is ``sqrt(q) / 2`` (1.6 to 4.4 here) standard deviations above it.
    A waiter left over only shortens its own recorded wait, by its age at step 0: with
    probability ~1e-3 per chain and one victim among hundreds of starts, a bias far below
    the Monte Carlo error.
    """
    quantile = math.log(WARMUP_LEAK) / math.log(rho)
    return math.ceil(1.5 * quantile / (c * h))


def _buckets(rho: float, c: int, h: float) -> int:
    """Wait buckets so that truncating waits at K - 1 steps is negligible.

    Given a wait, an M/M/c wait is exponential with mean ``1 / (c mu (1 - rho))``, so a cap
    at 8 such means loses ``exp(-8) = 3e-4`` of the mean wait, 1/300 of the Monte Carlo
    tolerance.
    """
    return 1 + math.ceil(8.0 / (c * h * (1.0 - rho)))


def _run_mmc(
    c: int, rhos: list[float], h: float, n_chains: int, n_steps: int, seed: int
) -> tuple[_Window, int]:
    """Simulate M/M/c chains from the stationary law and return window sums and warm-up."""
    warmup = max(_warmup_steps(rho, c, h) for rho in rhos)
    n_buckets = max(_buckets(rho, c, h) for rho in rhos)
    n_services = len(rhos)
    lam_steps = [rho * c * h for rho in rhos]
    rng = np.random.default_rng(seed)
    # at most ~2e6 chain-steps per call keeps the arrays of one call near 250 MB
    chunk = max(1, 2_000_000 // (n_services * n_steps))
    sums: dict[str, list[F64]] = {k: [] for k in ("wait", "starts", "q", "open", "ref")}
    laws = [_discrete_chain(lam, h, c) for lam in lam_steps]
    for first in range(0, n_chains, chunk):
        size = min(chunk, n_chains - first)
        open0 = np.zeros((size, n_services))
        wait0 = np.zeros((size, n_services, 2, n_buckets))
        for s, law in enumerate(laws):
            n0 = rng.choice(law.size, size=size, p=law)
            open0[:, s] = np.minimum(n0, c)
            wait0[:, s, 1, 0] = n0 - open0[:, s]
        inputs = _inputs(
            size,
            n_steps,
            n_buckets,
            lam=lam_steps,
            slots=[float(c)] * n_services,
            hazard=[h] * n_services,
            open_start=open0,
            waiting_start=wait0,
            seed0=seed * 1_000_000 + first,
        )
        out = simulate(inputs)
        window = slice(warmup, None)
        starts = out.starts[:, :, window].astype(np.float64)
        mean_wait = np.nan_to_num(out.mean_wait_steps[:, :, window].astype(np.float64))
        sums["wait"].append((mean_wait * starts).sum(axis=2))
        sums["starts"].append(starts.sum(axis=2))
        sums["q"].append(out.waiting[:, :, window].sum(axis=2, dtype=np.float64))
        sums["open"].append(out.open_cases[:, :, window].sum(axis=2, dtype=np.float64))
        sums["ref"].append(out.referrals[:, :, window].sum(axis=2, dtype=np.float64))
        del out, starts, mean_wait
    merged = {k: np.concatenate(v) for k, v in sums.items()}
    window_sums = _Window(
        wait_sum=merged["wait"],
        starts=merged["starts"],
        waiting=merged["q"],
        open_cases=merged["open"],
        referrals=merged["ref"],
        n_steps=n_steps - warmup,
    )
    return window_sums, warmup


def _check_mmc(
    w: _Window, s: int, c: int, rho: float, h: float, reference_steps: float, model_rtol: float
) -> list[str]:
    """Compare one service of an M/M/c run with theory; return failure messages.

    ``reference_steps`` is the expected mean wait in steps, known to ``model_rtol``
    (relative): the discretisation residual for the corrected formula, 0 for the exact chain.
    """
    failures: list[str] = []
    m = w.n_steps
    lam_step = rho * c * h
    # mean wait of the starts, in steps and in time units
    wait, wait_se = _ratio_se(w.wait_sum[:, s], w.starts[:, s])
    tol = Z_MC * wait_se + model_rtol * reference_steps
    if abs(wait - reference_steps) > tol:
        failures.append(
            f"c={c} rho={rho}: mean wait {wait * h:.5f} vs {reference_steps * h:.5f} "
            f"(time units; tolerance {tol * h:.5f})"
        )
    # Little's law against theory: Lq = lambda * Wq
    lq = w.waiting[:, s] / m
    lq_tol = Z_MC * _batch_se(lq) + model_rtol * lam_step * reference_steps
    if abs(lq.mean() - lam_step * reference_steps) > lq_tol:
        failures.append(
            f"c={c} rho={rho}: mean waiting {lq.mean():.5f} vs lambda*Wq "
            f"{lam_step * reference_steps:.5f} (tolerance {lq_tol:.5f})"
        )
    # Little's law on the sample path: list-steps on record = steps waited by the starts
    # (equal in expectation in steady state: the list's total age is the same at both ends)
    gap = w.waiting[:, s] - w.wait_sum[:, s]
    if abs(gap.mean()) > Z_MC * _batch_se(gap) + 1e-9:
        failures.append(
            f"c={c} rho={rho}: sum of waiting {w.waiting[:, s].mean():.3f} vs sum of waits "
            f"{w.wait_sum[:, s].mean():.3f} per chain (SE {_batch_se(gap):.3f})"
        )
    # flow balance and utilisation
    ref = w.referrals[:, s] / m
    if abs(ref.mean() - lam_step) > Z_MC * _batch_se(ref):
        failures.append(f"c={c} rho={rho}: referrals per step {ref.mean():.5f} vs {lam_step}")
    util = w.open_cases[:, s] / (m * c)
    if abs(util.mean() - rho) > Z_MC * _batch_se(util):
        failures.append(
            f"c={c} rho={rho}: utilisation {util.mean():.4f} vs {rho} (SE {_batch_se(util):.4f})"
        )
    return failures


# (c, loads, chains, steps): 3.6e7 chain-steps in all, giving standard errors of 2.5-3.2 %
# on the mean wait (tolerance Z_MC x that: 10-13 %), except at c = 20, rho = 0.5, where the
# mean wait is 0.02 steps and only ~1 start in 200 waits (SE 12 %).
FINE_RUNS = [
    (1, [0.5, 0.7], 1200, 5000),
    (5, [0.5, 0.7, 0.9], 1000, 4000),
    (20, [0.5, 0.7, 0.85, 0.9], 1000, 3000),
]


@pytest.mark.slow
@pytest.mark.parametrize(("c", "rhos", "n_chains", "n_steps"), FINE_RUNS)
def test_mmc_fine_step(c: int, rhos: list[float], n_chains: int, n_steps: int) -> None:
    """Mean wait, mean list and utilisation against M/M/c at 50 steps per mean duration."""
    w, _ = _run_mmc(c, rhos, H_FINE, n_chains, n_steps, seed=c)
    failures: list[str] = []
    for s, rho in enumerate(rhos):
        reference = _mmc_steps(rho, c, H_FINE) * (1.0 - H_FINE / 2.0)
        failures += _check_mmc(w, s, c, rho, H_FINE, reference, STEP_RESIDUAL_COEF * H_FINE**2)
        if c == 20 and rho <= 0.7:
            # mean waits of 0.02 and 0.8 steps, known to +-0.1 step: a +1/2-step
            # convention for "arrived and started in the same step" would be rejected
            wait, wait_se = _ratio_se(w.wait_sum[:, s], w.starts[:, s])
            assert abs(wait - (reference + 0.5)) > Z_MC * wait_se, (rho, wait, wait_se)
    assert not failures, "\n".join(failures)


def test_mmc_coarse_step_needs_the_whole_step_correction() -> None:
    """At 4 steps per mean duration the (1 - h/2) correction is 12.5 %: visible, and right.

    The reference is the exact discrete chain (module docstring), so the tolerance is Monte
    Carlo only; the uncorrected M/M/c wait and a +1/2-step convention must both be rejected.
    """
    h = H_COARSE
    failures: list[str] = []
    for c, rho, n_chains, n_steps in ((1, 0.7, 1500, 2500), (5, 0.85, 1500, 1500)):
        w, _ = _run_mmc(c, [rho], h, n_chains, n_steps, seed=100 + c)
        lam_step = rho * c * h
        exact = _chain_wait_steps(_discrete_chain(lam_step, h, c), lam_step, c)
        failures += _check_mmc(w, 0, c, rho, h, exact, 0.0)
        wait, wait_se = _ratio_se(w.wait_sum[:, 0], w.starts[:, 0])
        tol = Z_MC * wait_se
        for name, alternative in (
            ("uncorrected M/M/c", _mmc_steps(rho, c, h)),
            ("+1/2 step", exact + 0.5),
        ):
            if abs(wait - alternative) <= tol:
                failures.append(f"c={c} rho={rho}: cannot tell the engine from {name}")
    assert not failures, "\n".join(failures)


# --- Little's law for the open caseload -------------------------------------------------

# Erlang support durations: (phases, hazard) -> mean phases / hazard steps.
#   0: stretch service (never queues), 3 phases of mean 5 steps: an M/E3/inf caseload
#   1: 40 slots, overloaded (load 1.2) with drop-out and priority: the caseload is capped
#   2: fixed 5-step duration (hazard = 1), 100 slots at load 0.5
LITTLE = {
    "lam": [12.5, 3.0, 10.0],
    "slots": [0.0, 40.0, 100.0],
    "hazard": [0.2, 0.25, 1.0],
    "n_phases": [3, 4, 5],
    "priority_share": [0.0, 0.3, 0.0],
    "drop": [0.0, 0.05, 0.0],
    "stretch": [True, False, False],
    "priority_first": [False, True, False],
}


def _little_inputs(n_chains: int, n_steps: int) -> FlowInputs:
    # open_start a multiple of n_phases: the engine spreads it evenly over the phases
    open0 = np.broadcast_to(np.array([186.0, 40.0, 50.0]), (n_chains, 3)).copy()
    return _inputs(n_chains, n_steps, 24, open_start=open0, **LITTLE)


def test_littles_law_open_caseload_deterministic() -> None:
    """Deterministic mode: open cases = starts per step x mean duration, to float error.

    After 500 steps the slowest transient, (1 - h)^t times a polynomial for the Erlang
    phases and (1 - drop)^t for the list, is below 1e-9 of the steady state.
    """
    out = simulate(_little_inputs(1, 600), stochastic=False)
    mean_duration = np.array(LITTLE["n_phases"]) / np.array(LITTLE["hazard"])
    tail = slice(500, None)
    open_cases = out.open_cases[0, :, tail].astype(np.float64)
    expected = out.starts[0, :, tail].astype(np.float64) * mean_duration[:, None]
    np.testing.assert_allclose(open_cases, expected, rtol=FLOAT32_RTOL)
    # and the steady states themselves: uncapped M/E/inf, capped at 40 slots, load 0.5
    np.testing.assert_allclose(open_cases[:, -1], [187.5, 40.0, 50.0], rtol=FLOAT32_RTOL)


def test_littles_law_open_caseload_stochastic() -> None:
    """Stochastic mode: E[open cases] = E[starts per step] x mean duration in steady state.

    Window sums per chain differ by the unfinished durations at the two ends of the window,
    which have the same law in steady state; the tolerance is Z_MC batch-mean errors.
    """
    n_chains, n_steps, warmup = 2000, 400, 200
    out = simulate(_little_inputs(n_chains, n_steps))
    mean_duration = np.array(LITTLE["n_phases"]) / np.array(LITTLE["hazard"])
    window = slice(warmup, None)
    open_sum = out.open_cases[:, :, window].sum(axis=2, dtype=np.float64)
    starts_sum = out.starts[:, :, window].sum(axis=2, dtype=np.float64)
    for s, duration in enumerate(mean_duration):
        ratio, se = _ratio_se(open_sum[:, s], starts_sum[:, s] * duration)
        assert abs(ratio - 1.0) <= Z_MC * se, (s, ratio, se)
    # capacity is respected: never more open cases than slots
    assert out.open_cases[:, 1].max() <= 40.0
    assert out.open_cases[:, 2].max() <= 100.0
    # the stretch service is an M/E3/inf system: caseload mean = lambda * duration
    stretch_mean = open_sum[:, 0] / (n_steps - warmup)
    assert abs(stretch_mean.mean() - 187.5) <= Z_MC * _batch_se(stretch_mean)


# --- drop-out ----------------------------------------------------------------------------


DROP_P, DROP_W0, DROP_LAM = 0.05, 1000.0, 10.0


def _dropout_inputs(n_chains: int, n_steps: int) -> FlowInputs:
    """Two services with no capacity, losing waiters at DROP_P a step.

    0: DROP_W0 = 1,000 people waiting at the start, spread over both classes and ages, no
       referrals;
    1: an empty list and DROP_LAM referrals a step, which join after the step's drop-outs.
    """
    wait0 = np.zeros((n_chains, 2, 2, 12))
    wait0[:, 0, 0, :4] = 50.0
    wait0[:, 0, 1, 2:10] = 100.0
    return _inputs(
        n_chains,
        n_steps,
        12,
        lam=[0.0, DROP_LAM],
        slots=[0.0, 0.0],
        hazard=[0.1, 0.1],
        drop=[DROP_P, DROP_P],
        priority_first=[True, False],
        waiting_start=wait0,
    )


def test_drop_out_deterministic_geometric() -> None:
    """With no capacity the list after t steps (t = 1, 2, ...) is exactly W0 (1 - p)^t.

    With referrals of lam a step and an empty start, drop-outs before arrivals give
    L_t = (1 - p) L_(t-1) + lam, so L_t = lam (1 - (1 - p)^t) / p (arrivals before drop-outs
    would give (1 - p) times that).
    """
    p, n_steps = DROP_P, 100
    out = simulate(_dropout_inputs(1, n_steps), stochastic=False)
    t = np.arange(1, n_steps + 1)
    np.testing.assert_allclose(out.waiting[0, 0], DROP_W0 * (1 - p) ** t, rtol=FLOAT32_RTOL)
    np.testing.assert_allclose(
        out.drop_outs[0, 0], DROP_W0 * (1 - p) ** (t - 1) * p, rtol=FLOAT32_RTOL
    )
    fed = DROP_LAM * (1 - (1 - p) ** t) / p
    np.testing.assert_allclose(out.waiting[0, 1], fed, rtol=FLOAT32_RTOL)
    np.testing.assert_allclose(out.drop_outs[0, 1, 1:], p * fed[:-1], rtol=FLOAT32_RTOL)
    assert np.all(out.starts == 0.0)


def test_drop_out_stochastic_binomial() -> None:
    """Each waiter leaves independently with probability p a step.

    From a list of W0 and no referrals, the list after t steps is Bin(W0, (1 - p)^t): mean
    within Z_MC binomial standard errors over chains; variance within Z_MC standard errors
    of a sample variance (sqrt(2 / (C - 1)) relative for near-Normal counts). Fed by
    Poisson(lam) referrals from empty, the list is Poisson with mean lam (1 - (1 - p)^t) / p
    (thinned Poisson arrivals): index of dispersion within Z_MC sqrt(2 / C) of 1. Both
    variances may carry the Normal path's rounding variance, NORMAL_ROUNDING_VAR a step,
    decaying by (1 - p)^2 a step: at most NORMAL_ROUNDING_VAR / (1 - (1 - p)^2) in all.
    """
    p, n_chains, n_steps = DROP_P, 4000, 60
    out = simulate(_dropout_inputs(n_chains, n_steps))
    waiting = out.waiting.astype(np.float64)
    rounding = NORMAL_ROUNDING_VAR / (1.0 - (1.0 - p) ** 2)
    for t in (1, 5, 14, 30, 60):
        q = (1 - p) ** t
        mean, var = DROP_W0 * q, DROP_W0 * q * (1 - q)
        got = waiting[:, 0, t - 1]
        assert abs(got.mean() - mean) <= Z_MC * math.sqrt(var / n_chains), t
        var_tol = Z_MC * var * math.sqrt(2.0 / (n_chains - 1)) + rounding
        assert abs(got.var(ddof=1) - var) <= var_tol, (t, got.var(ddof=1), var)
        fed_mean = DROP_LAM * (1 - q) / p
        fed = waiting[:, 1, t - 1]
        assert abs(fed.mean() - fed_mean) <= Z_MC * math.sqrt(fed_mean / n_chains), t
        dispersion_tol = Z_MC * math.sqrt(2.0 / n_chains) + rounding / fed_mean
        assert abs(fed.var(ddof=1) / fed_mean - 1.0) <= dispersion_tol, t
    # conservation: everyone who left is counted as a drop-out
    left = DROP_W0 - waiting[:, 0, -1]
    np.testing.assert_allclose(out.drop_outs[:, 0, :].sum(axis=1), left, rtol=FLOAT32_RTOL)
    joined = out.referrals[:, 1, :].sum(axis=1) - waiting[:, 1, -1]
    np.testing.assert_allclose(out.drop_outs[:, 1, :].sum(axis=1), joined, rtol=FLOAT32_RTOL)


# --- samplers as seen through the engine ------------------------------------------------


def _chi2_pvalue(samples: F64, pmf: F64) -> float:
    """Chi-square goodness of fit on 0..k, pooling the right tail (expected counts >= 20)."""
    n = samples.size
    k_max = int(np.nonzero(pmf * n >= 20)[0].max())
    k_min = int(np.nonzero(pmf * n >= 20)[0].min())
    counts = np.bincount(np.clip(samples.astype(np.int64), k_min, k_max + 1) - k_min)
    counts = np.pad(counts, (0, k_max - k_min + 2 - counts.size))
    expected = np.concatenate(
        [[pmf[: k_min + 1].sum()], pmf[k_min + 1 : k_max + 1], [pmf[k_max + 1 :].sum()]]
    )
    expected = expected * n / expected.sum()
    return float(stats.chisquare(counts, expected).pvalue)


@pytest.mark.parametrize("lam", [0.3, 3.0, 12.0, 50.0])
def test_poisson_referrals(lam: float) -> None:
    """Referrals per step are Poisson(lam): inversion below 10, PTRS from 10 (12 and 50).

    Mean within Z_MC sqrt(lam / n); index of dispersion within Z_MC sqrt(2 / n) of 1 (its
    large-sample standard error for Poisson counts); the law by chi-square at CHI2_ALPHA.
    """
    n_chains, n_steps = 2000, 250
    inputs = _inputs(n_chains, n_steps, 2, lam=[lam], slots=[0.0], hazard=[1.0], stretch=[True])
    x = simulate(inputs).referrals[:, 0, :].astype(np.float64).ravel()
    n = x.size
    assert abs(x.mean() - lam) <= Z_MC * math.sqrt(lam / n)
    assert abs(x.var() / x.mean() - 1.0) <= Z_MC * math.sqrt(2.0 / n)
    pmf = stats.poisson.pmf(np.arange(int(lam + 20 * math.sqrt(lam) + 20)), lam)
    assert _chi2_pvalue(x, pmf) > CHI2_ALPHA


@pytest.mark.parametrize(
    ("n", "p"),
    [
        (400, 0.1),  # n p q = 36: Normal approximation
        (400, 0.8),  # n p q = 64, p > 1/2: Normal approximation on the flipped side
        (30, 0.1),  # n p q = 2.7: exact inversion
        (60, 0.6),  # n p q = 14.4, flipped
    ],
)
def test_binomial_completions(n: int, p: float) -> None:
    """Completions from a full caseload of n are Bin(n, p) each step.

    With n slots and a list that never empties, every step starts from exactly n open cases.
    Mean within Z_MC sqrt(n p q / N); variance within Z_MC sqrt(2 / N) n p q, plus
    NORMAL_ROUNDING_VAR on the Normal path (n p q >= 10).
    """
    n_chains, n_steps = 1000, 400
    wait0 = np.zeros((n_chains, 1, 2, 2))
    wait0[:, 0, 1, 0] = 2.0 * n * p * n_steps
    inputs = _inputs(
        n_chains,
        n_steps,
        2,
        lam=[0.0],
        slots=[float(n)],
        hazard=[p],
        open_start=np.full((n_chains, 1), float(n)),
        waiting_start=wait0,
    )
    out = simulate(inputs)
    assert np.all(out.open_cases == n)
    x = out.completions[:, 0, :].astype(np.float64).ravel()
    npq = n * p * (1 - p)
    rounding = NORMAL_ROUNDING_VAR if npq >= 10 else 0.0
    assert abs(x.mean() - n * p) <= Z_MC * math.sqrt(npq / x.size)
    assert abs(x.var() - npq) <= Z_MC * math.sqrt(2.0 / x.size) * npq + rounding
    if npq < 10:
        pmf = stats.binom.pmf(np.arange(n + 1), n, p)
        assert _chi2_pvalue(x, pmf) > CHI2_ALPHA


# --- reproducibility ---------------------------------------------------------------------


def _mixed_inputs(n_chains: int = 48, n_steps: int = 36, seed0: int = 7) -> FlowInputs:
    """Every feature at once, with inputs that vary by chain so chains are distinguishable."""
    base = _inputs(
        n_chains,
        n_steps,
        13,
        lam=[6.0, 2.5, 9.0],
        slots=[40.0, 12.5, 0.0],
        hazard=[0.3, 0.15, 0.5],
        n_phases=[2, 3, 1],
        priority_share=[0.2, 0.5, 0.0],
        drop=[0.03, 0.01, 0.0],
        reengage_share=[0.1, 0.0, 0.2],
        reengage_steps=[3, 0, 2],
        target_steps=[2, 4, 0],
        stretch=[False, False, True],
        priority_first=[True, False, False],
        seed0=seed0,
    )
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.7, 1.3, size=(n_chains, 1, 1, 1))
    wait0 = np.zeros((n_chains, 3, 2, 13))
    wait0[:, :2, :, :6] = rng.integers(0, 4, size=(n_chains, 2, 2, 6))
    return FlowInputs(
        **{
            **{f.name: getattr(base, f.name) for f in fields(base)},
            "arrivals": base.arrivals * scale,
            "waiting_start": wait0,
            "open_start": rng.integers(0, 7, size=(n_chains, 3)).astype(float) * 6,
        }
    )


def _subset(inputs: FlowInputs, idx: NDArray[np.int64]) -> FlowInputs:
    per_chain = {"arrivals", "slots", "hazard", "drop", "reengage_share", "waiting_start"}
    per_chain |= {"open_start", "seeds"}
    return FlowInputs(
        **{
            f.name: getattr(inputs, f.name)[idx] if f.name in per_chain else getattr(inputs, f.name)
            for f in fields(inputs)
        }
    )


def _assert_same(a: FlowOutputs, b: FlowOutputs) -> None:
    for f in fields(a):
        np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name), err_msg=f.name)


def test_same_seeds_same_outputs_different_seeds_differ() -> None:
    inputs = _mixed_inputs()
    first = simulate(inputs)
    _assert_same(first, simulate(inputs))
    other = simulate(_mixed_inputs(seed0=10_007))
    for name in ("referrals", "starts", "completions", "waiting"):
        a, b = getattr(first, name), getattr(other, name)
        differ = np.any(a != b, axis=(1, 2))
        assert differ.all(), f"{name}: {int((~differ).sum())} chains unchanged by the seed"


def test_chain_results_do_not_depend_on_the_batch() -> None:
    inputs = _mixed_inputs()
    full = simulate(inputs)
    for idx in (np.array([40, 3, 17, 47]), np.array([5]), np.arange(47, -1, -2)):
        part = simulate(_subset(inputs, idx))
        for f in fields(full):
            np.testing.assert_array_equal(
                getattr(part, f.name), getattr(full, f.name)[idx], err_msg=f.name
            )


def test_arrivals_drawn_beforehand_give_the_same_run() -> None:
    """``draw_arrivals`` draws exactly the referrals the run draws (by class; one list's in
    class 1), and a run that reads them gives every output the same."""
    inputs = _mixed_inputs()
    drawn = draw_arrivals(inputs)
    assert drawn.shape == inputs.arrivals.shape
    inline = simulate(inputs)
    np.testing.assert_array_equal(drawn.sum(-1), inline.referrals)
    assert np.all(drawn[:, ~inputs.priority_first, :, 0] == 0)
    assert drawn[:, inputs.priority_first, :, 0].sum() > 0
    _assert_same(inline, simulate(inputs, arrivals_drawn=drawn))
    with pytest.raises(ValueError, match=r"arrivals_drawn has shape \(48, 1, 36, 2\)"):
        simulate(inputs, arrivals_drawn=drawn[:, :1])


def test_referrals_are_common_to_scenarios_of_capacity() -> None:
    """Common random numbers: the referrals come from a stream of their own, so a scenario
    with other staff, support length, drop-out or starting lists meets exactly the same
    referrals, and the difference it makes is far less noisy than between independent runs.

    One queue at load 1.0 against the same with a tenth more places (2,000 chains): the
    variance of the difference in the last year's mean waiting list is under a tenth of the
    variance with independent seeds (it is about 0.03 of it; when referrals shared the
    stream of the phase exits and drop-outs it was 0.58).
    """

    def run(slots: float, hazard: float, drop: float, seed0: int) -> FlowOutputs:
        return simulate(
            _inputs(
                2000,
                60,
                30,
                lam=[10.0],
                slots=[slots],
                hazard=[hazard],
                n_phases=[2],
                drop=[drop],
                priority_share=[0.2],
                priority_first=[True],
                seed0=seed0,
            )
        )

    base = run(40.0, 0.25, 0.02, 0)
    for other in (run(44.0, 0.25, 0.02, 0), run(40.0, 0.3, 0.05, 0)):
        np.testing.assert_array_equal(other.referrals, base.referrals)
        assert np.any(other.waiting != base.waiting)
    more = run(44.0, 0.25, 0.02, 0)
    apart = run(44.0, 0.25, 0.02, 999_999)

    def last_year(out: FlowOutputs) -> F64:
        return out.waiting[:, 0, -12:].astype(np.float64).mean(-1)

    shared = np.var(last_year(base) - last_year(more))
    independent = np.var(last_year(base) - last_year(apart))
    assert shared < 0.1 * independent, (shared, independent)


def test_outputs_do_not_depend_on_the_thread_count(tmp_path: Path) -> None:
    """Same outputs with one Numba thread (set at run time, and by NUMBA_NUM_THREADS=1)."""
    inputs = _mixed_inputs(n_chains=64)
    threaded = simulate(inputs)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        _assert_same(threaded, simulate(inputs))
    finally:
        numba.set_num_threads(before)

    arrays = {f.name: getattr(inputs, f.name) for f in fields(inputs)}
    np.savez(tmp_path / "inputs.npz", **{k: v for k, v in arrays.items() if v is not None})
    script = textwrap.dedent(
        """
        import sys
        import numba
        import numpy as np
        from needsled.flow import FlowInputs, simulate
        assert numba.config.NUMBA_NUM_THREADS == 1, numba.config.NUMBA_NUM_THREADS
        with np.load(sys.argv[1]) as z:
            out = simulate(FlowInputs(**{k: z[k] for k in z.files}))
        np.savez(sys.argv[2], **vars(out))
        """
    )
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
        check=True,
        env=env,
        timeout=300,
    )
    with np.load(tmp_path / "out.npz") as single:
        for f in fields(threaded):
            np.testing.assert_array_equal(single[f.name], getattr(threaded, f.name), f.name)


def test_stochastic_open_start_cases_are_conserved() -> None:
    """Every open case at the start completes exactly once; none is created or stuck.

    No referrals and ample slots, so over 300 steps at hazard 0.9 every case leaves
    (the chance one is still open is far below 1e-100). 3 cases over 2 phases and 1 case
    over 3 phases are the two ways the fractional spread goes wrong.
    """
    for open_start, phases in ((3.0, 2), (1.0, 3), (10.0, 4)):
        inputs = _inputs(
            64,
            300,
            2,
            lam=[0.0],
            slots=[50.0],
            hazard=[0.9],
            n_phases=[phases],
            open_start=np.full((64, 1), open_start),
        )
        out = simulate(inputs)
        assert out.open_cases.min() >= 0.0, (open_start, phases)
        np.testing.assert_array_equal(out.completions.sum(axis=(1, 2)), open_start)


def test_runs_from_several_threads_at_once_give_each_its_own_outputs() -> None:
    """The kernel runs without the interpreter lock (a web server's threads launch it at
    once): each thread's outputs are exactly those of the same inputs run alone."""
    runs = [_mixed_inputs(n_chains=64, seed0=s) for s in (7, 10_007, 20_007, 30_007)]
    alone = [simulate(inputs) for inputs in runs]
    for _ in range(3):
        with ThreadPoolExecutor(len(runs)) as pool:
            together = list(pool.map(simulate, runs))
        for a, b in zip(alone, together, strict=True):
            _assert_same(a, b)


def test_other_threads_run_while_the_kernel_does() -> None:
    """While one thread is in the kernel, another keeps running Python: the longest pause
    it sees is a small part of the kernel's time (holding the lock, it would be all of it)."""
    inputs = _mixed_inputs(n_chains=48, n_steps=36)
    reps = 1
    while True:  # a run long enough to tell the two apart whatever else the machine runs
        big = _subset(inputs, np.tile(np.arange(48), reps))
        t0 = time.perf_counter()
        simulate(big)
        took = time.perf_counter() - t0
        if took >= 1.0:
            break
        reps *= 2
    started = threading.Event()

    def engine() -> None:
        started.set()
        simulate(big)

    worker = threading.Thread(target=engine)
    worker.start()
    started.wait()
    longest, last = 0.0, time.perf_counter()
    while worker.is_alive():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    assert longest < took / 2, f"paused {longest:.3f} s while a {took:.3f} s kernel ran"
