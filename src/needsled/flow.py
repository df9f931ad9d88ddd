"""The flow engine: waiting lists and open caseloads, step by step, for many chains at once.

A *chain* is one area in one Monte Carlo replicate; it holds ``S`` services, and each service
of each chain draws from its own random streams, seeded on its own (``FlowInputs.seeds``, one
per chain and service, which also seeds its referrals' stream: see below). A service's numbers
therefore depend only on its own inputs and seed: not on the services simulated before it,
nor on which other chains or services are in the run. The kernel runs the chains in parallel
(Numba ``prange``), and any subset of chains (one area, one scenario) or of services (the one
a lever moved) can run on its own and give exactly the numbers of a whole run.

One step (a month by default, or a week) runs these events in this order:

1. **Completions.** Open cases move through ``n_phases`` Erlang phases; each phase is left with
   probability ``hazard`` per step, so a support duration has mean ``n_phases / hazard`` steps
   and coefficient of variation ``1 / sqrt(n_phases)`` (a phase-type approximation of the
   service's duration distribution; ``hazard = 1`` gives a fixed duration of ``n_phases``
   steps). Cases leaving the last phase close.
2. **Re-engagement.** A share of closed cases come back ``reengage_steps`` later and re-enter
   the caseload straight away, without a new wait (soft closure).
3. **Drop-out while waiting.** Everyone waiting leaves with probability ``drop`` this step.
4. **Arrivals** (referrals) join the list with zero time waited, one list per priority class.
5. **Starts.** Free slots = ``floor(slots) - open cases``. They are filled first from the
   priority class (when the service serves priority victims first), and within a class from
   the longest wait (FIFO). A *stretch* service starts everyone at once and never queues.
6. **Ageing.** Everyone still waiting has waited one more step; the last bucket holds
   "``K - 1`` steps or more".

In the stochastic mode arrivals are Poisson and phase exits, re-engagements and drop-outs are
binomial; in the deterministic mode every random draw is replaced by its expected value, which
gives the deterministic baseline run (and exact hand-solvable trajectories in tests).

Each service of each chain draws its arrivals from a stream of their own (seeded from the
service's seed, :data:`ARRIVALS_KEY`), apart from the stream of its phase exits,
re-engagements and drop-outs. The arrivals therefore depend only on the expected referrals
and the seed: a scenario that changes a service's staff or support length meets exactly the
same referrals (common random numbers), and they can be drawn once (:func:`draw_arrivals`) and
passed to :func:`simulate` for every such scenario, which gives the same numbers as drawing
them in the run.

A wait is counted in whole steps: a referral that arrives and starts in the same step has
waited 0 steps. Use a weekly step where that resolution matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np
from numpy.typing import NDArray

from needsled import _rng
from needsled._parallel import launch_guard

__all__ = ["ARRIVALS_KEY", "FlowInputs", "FlowOutputs", "draw_arrivals", "simulate"]

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

# XORed into a service's seed (then mixed) for the seed of its arrivals' stream
ARRIVALS_KEY = np.uint64(0xA5F1_52D3_7C0E_9B61)
_NO_DRAWS = np.zeros((0, 0, 0, 2), dtype=np.float32)

# Output channels of the kernel, in order.
CHANNELS = (
    "referrals",
    "starts",
    "waiting",
    "open_cases",
    "drop_outs",
    "completions",
    "wait_sum_steps",
    "within_target",
    "p90_wait_steps",
    "within_target_priority",
)


@dataclass(frozen=True)
class FlowInputs:
    """Arrays for ``C`` chains, ``S`` services, ``T`` steps and ``K`` wait buckets.

    arrivals: (C, S, T, 2) expected referrals per step; class 0 is priority, 1 standard.
    slots: (C, S, T) open-case slots (FTE x caseload per FTE); ignored for stretch services.
    hazard: (C, S, T) probability of leaving a phase in one step, in (0, 1].
    n_phases: (S,) Erlang phases of the support duration.
    drop: (C, S) probability a waiting referral leaves the list in one step.
    reengage_share: (C, S) share of closed cases that come back; reengage_steps: (S,) delay.
    waiting_start: (C, S, 2, K) waiting list at the start, by class and steps waited.
    open_start: (C, S) open cases at the start, spread evenly over the phases.
    target_steps: (S,) the longest wait, in whole steps, that still meets the target.
    stretch, priority_first: (S,) booleans.
    seeds: (C, S) one seed per chain and service (ignored in the deterministic mode): the
        state at its start of the random stream that service draws its phase exits,
        re-engagements and drop-outs from in that chain (int64, whose bits are taken as they
        are, or uint64); its referrals' stream starts from the seed XOR :data:`ARRIVALS_KEY`,
        mixed. Streams are not shared, so a subset of services runs on its own with its
        columns of the seeds.
    period: (T,) optional reporting period of each step, e.g. the month of each week; outputs
        are per period (flows summed, stocks at the period's last step, waits over everyone
        who started in the period). Default: every step is its own period.
    """

    arrivals: F64
    slots: F64
    hazard: F64
    n_phases: NDArray[np.int64]
    drop: F64
    reengage_share: F64
    reengage_steps: NDArray[np.int64]
    waiting_start: F64
    open_start: F64
    target_steps: NDArray[np.int64]
    stretch: NDArray[np.bool_]
    priority_first: NDArray[np.bool_]
    seeds: NDArray[np.int64] | NDArray[np.uint64]
    period: NDArray[np.int64] | None = None

    def periods(self) -> NDArray[np.int64]:
        """Reporting period of each step (default: every step is its own period)."""
        n_steps = self.arrivals.shape[2]
        if self.period is None:
            return np.arange(n_steps, dtype=np.int64)
        return np.ascontiguousarray(self.period, dtype=np.int64)

    def __post_init__(self) -> None:
        c, s, t, _ = self.arrivals.shape
        checks = {
            "slots": (self.slots.shape, (c, s, t)),
            "hazard": (self.hazard.shape, (c, s, t)),
            "n_phases": (self.n_phases.shape, (s,)),
            "drop": (self.drop.shape, (c, s)),
            "reengage_share": (self.reengage_share.shape, (c, s)),
            "reengage_steps": (self.reengage_steps.shape, (s,)),
            "open_start": (self.open_start.shape, (c, s)),
            "target_steps": (self.target_steps.shape, (s,)),
            "stretch": (self.stretch.shape, (s,)),
            "priority_first": (self.priority_first.shape, (s,)),
            "seeds": (self.seeds.shape, (c, s)),
        }
        bad = [
            f"{k} has shape {got}, expected {want}"
            for k, (got, want) in checks.items()
            if got != want
        ]
        if self.waiting_start.shape[:3] != (c, s, 2):
            bad.append(
                f"waiting_start has shape {self.waiting_start.shape}, expected ({c}, {s}, 2, K)"
            )
        if self.period is not None:
            per = np.asarray(self.period)
            steps_ok = per.shape == (t,) and t > 0 and per[0] == 0
            if not steps_ok or not np.isin(np.diff(per), (0, 1)).all():
                bad.append(
                    "period must give each step's reporting period, starting at 0 and "
                    "rising by 0 or 1 from one step to the next"
                )
        if bad:
            raise ValueError("flow inputs do not fit together: " + "; ".join(bad))


@dataclass(frozen=True)
class FlowOutputs:
    """Per chain, service and reporting period (C, S, P), float32.

    ``mean_wait_steps`` and ``p90_wait_steps`` are NaN in a step with no starts.
    ``within_target_priority`` counts the priority class's starts within the target wait (zero
    for a service without a separate priority list, where the classes share one list).
    """

    referrals: F32
    starts: F32
    waiting: F32
    open_cases: F32
    drop_outs: F32
    completions: F32
    mean_wait_steps: F32
    within_target_share: F32
    p90_wait_steps: F32
    within_target_priority: F32


def _states(seeds: NDArray[np.int64] | NDArray[np.uint64]) -> NDArray[np.uint64]:
    """Seeds (C, S) as the kernel's uint64 stream states: an int64 seed keeps its bits."""
    x = np.ascontiguousarray(seeds)
    if x.dtype != np.uint64:
        x = np.ascontiguousarray(x, dtype=np.int64).view(np.uint64)
    return np.asarray(x, dtype=np.uint64)


def draw_arrivals(inputs: FlowInputs) -> F32:
    """The referrals (C, S, T, 2) that :func:`simulate` draws in its stochastic mode, by
    class (a service without a separate priority list gets all of them in class 1), from
    each service's arrivals stream: what to pass it as ``arrivals_drawn`` for any inputs
    with the same ``arrivals``, ``priority_first`` and ``seeds``."""
    with launch_guard():
        return _draw_kernel(
            np.ascontiguousarray(inputs.arrivals, dtype=np.float64),
            np.ascontiguousarray(inputs.priority_first, dtype=np.bool_),
            _states(inputs.seeds),
        )


def simulate(
    inputs: FlowInputs, *, stochastic: bool = True, arrivals_drawn: F32 | None = None
) -> FlowOutputs:
    """Run every chain for ``T`` steps; return flows and stocks per reporting period.

    ``arrivals_drawn``: the referrals :func:`draw_arrivals` gave for these inputs' expected
    referrals, priority lists and seeds (the stochastic mode then reads them instead of
    drawing them again: the same numbers, a little faster)."""
    drawn = _NO_DRAWS
    if stochastic and arrivals_drawn is not None:
        want = inputs.arrivals.shape
        if arrivals_drawn.shape != want:
            raise ValueError(
                f"arrivals_drawn has shape {arrivals_drawn.shape}, expected {want} (those of "
                "the inputs' arrivals)"
            )
        drawn = np.ascontiguousarray(arrivals_drawn, dtype=np.float32)
    with launch_guard():  # the kernel runs without the interpreter lock
        out = _kernel(
            np.ascontiguousarray(inputs.arrivals, dtype=np.float64),
            np.ascontiguousarray(inputs.slots, dtype=np.float64),
            np.ascontiguousarray(inputs.hazard, dtype=np.float64),
            np.ascontiguousarray(inputs.n_phases, dtype=np.int64),
            np.ascontiguousarray(inputs.drop, dtype=np.float64),
            np.ascontiguousarray(inputs.reengage_share, dtype=np.float64),
            np.ascontiguousarray(inputs.reengage_steps, dtype=np.int64),
            np.ascontiguousarray(inputs.waiting_start, dtype=np.float64),
            np.ascontiguousarray(inputs.open_start, dtype=np.float64),
            np.ascontiguousarray(inputs.target_steps, dtype=np.int64),
            np.ascontiguousarray(inputs.stretch, dtype=np.bool_),
            np.ascontiguousarray(inputs.priority_first, dtype=np.bool_),
            _states(inputs.seeds),
            inputs.periods(),
            stochastic,
            drawn,
        )
    starts = out[1]
    none = starts <= 0  # in place on the kernel's float32 arrays: no large temporaries
    mean_wait, within, p90 = out[6], out[7], out[8]
    np.divide(mean_wait, starts, out=mean_wait, where=~none)
    np.divide(within, starts, out=within, where=~none)
    for arr in (mean_wait, within, p90):
        arr[none] = np.nan
    return FlowOutputs(
        referrals=out[0],
        starts=starts,
        waiting=out[2],
        open_cases=out[3],
        drop_outs=out[4],
        completions=out[5],
        mean_wait_steps=mean_wait,
        within_target_share=within,
        p90_wait_steps=p90,
        within_target_priority=out[9],
    )


@nb.njit(cache=True, inline="always")
def _arrive(
    state: NDArray[np.uint64], lam0: float, lam1: float, priority: bool
) -> tuple[float, float]:
    """One step's Poisson referrals by class from the arrivals stream ``state``; one list
    (not ``priority``): a single draw for both classes (a sum of Poissons), all in class 1."""
    if priority:
        a0 = _rng.poisson(state, lam0)
        return a0, _rng.poisson(state, lam1)
    return 0.0, _rng.poisson(state, lam0 + lam1)


@nb.njit(cache=True, parallel=True, nogil=True)
def _draw_kernel(
    arrivals: F64, priority_first: NDArray[np.bool_], seeds: NDArray[np.uint64]
) -> F32:
    n_chains, n_services, n_steps, _ = arrivals.shape
    out = np.empty((n_chains, n_services, n_steps, 2), dtype=np.float32)
    for c in nb.prange(n_chains):
        state = np.empty(1, dtype=np.uint64)
        for s in range(n_services):
            state[0] = _rng.mix64(seeds[c, s] ^ ARRIVALS_KEY)
            prio = priority_first[s]
            for t in range(n_steps):
                a0, a1 = _arrive(state, arrivals[c, s, t, 0], arrivals[c, s, t, 1], prio)
                out[c, s, t, 0] = a0
                out[c, s, t, 1] = a1
    return out


@nb.njit(cache=True, inline="always")
def _binom(
    state: NDArray[np.uint64], n: float, p: float, stochastic: bool, log1m_q: float = 1.0
) -> float:
    if p <= 0.0 or n <= 0.0:
        return 0.0
    if p >= 1.0:
        return n
    if not stochastic:
        return n * p
    return min(_rng.binomial(state, n, p, log1m_q), n)  # never more than there are


@nb.njit(cache=True, inline="always")
def _drop_out(
    state: NDArray[np.uint64],
    wait: F64,
    p: int,
    top: int,
    prob: float,
    stochastic: bool,
    log1m_q: float = 1.0,
) -> float:
    """Remove drop-outs from class ``p``'s list; return how many left.

    The total is binomial (each person waiting leaves independently with probability ``prob``);
    it is shared across the wait buckets in proportion to their size, whole people, with the
    remainder taken from the longest waits.
    """
    total = 0.0
    for k in range(top + 1):
        total += wait[p, k]
    if total <= 0.0 or prob <= 0.0:
        return 0.0
    if not stochastic:
        for k in range(top + 1):
            wait[p, k] -= wait[p, k] * prob
        return total * prob
    leaving = min(_rng.binomial(state, total, prob, log1m_q), total)
    if leaving <= 0.0:
        return 0.0
    share = leaving / total
    left = leaving
    for k in range(top + 1):
        d = min(math.floor(wait[p, k] * share), wait[p, k])
        wait[p, k] -= d
        left -= d
    k = top
    while left > 0.0 and k >= 0:
        d = min(left, wait[p, k])
        wait[p, k] -= d
        left -= d
        k -= 1
    return leaving - left


@nb.njit(cache=True)
def _p90(taken: F64, started: float) -> float:
    """The 90th percentile of the waits of those who started (in whole steps)."""
    if started <= 0.0:
        return 0.0
    cum = 0.0
    for k in range(taken.shape[0]):
        cum += taken[k]
        if cum >= 0.9 * started - 1e-6:
            return float(k)
    return float(taken.shape[0] - 1)


@nb.njit(cache=True, parallel=True, nogil=True)  # other threads run while it does
def _kernel(
    arrivals: F64,
    slots: F64,
    hazard: F64,
    n_phases: NDArray[np.int64],
    drop: F64,
    reengage_share: F64,
    reengage_steps: NDArray[np.int64],
    waiting_start: F64,
    open_start: F64,
    target_steps: NDArray[np.int64],
    stretch: NDArray[np.bool_],
    priority_first: NDArray[np.bool_],
    seeds: NDArray[np.uint64],
    period: NDArray[np.int64],
    stochastic: bool,
    drawn: F32,
) -> F32:
    n_chains, n_services, n_steps, _ = arrivals.shape
    n_periods = int(period[-1]) + 1
    n_buckets = waiting_start.shape[3]
    out = np.zeros((len(CHANNELS), n_chains, n_services, n_periods), dtype=np.float32)
    max_phases = max(1, int(n_phases.max()))
    max_delay = max(1, int(reengage_steps.max()))
    read = drawn.shape[0] > 0  # the arrivals drawn already (draw_arrivals)
    for c in nb.prange(n_chains):
        state = np.empty(1, dtype=np.uint64)
        arrive = np.empty(1, dtype=np.uint64)  # the arrivals' stream
        wait = np.empty((2, n_buckets))
        top = np.zeros(2, dtype=np.int64)  # wait[p, k] == 0 for every k > top[p]
        phase = np.empty(max_phases)
        ring = np.empty(max_delay + 1)
        taken = np.empty(n_buckets)
        for s in range(n_services):
            state[0] = seeds[c, s]  # each service its own streams
            arrive[0] = _rng.mix64(seeds[c, s] ^ ARRIVALS_KEY)
            prio = priority_first[s]
            k_ph = n_phases[s]
            delay = reengage_steps[s]
            # log(1 - min(p, 1 - p)) of the chain's fixed probabilities, taken once
            d_p, r_p = drop[c, s], reengage_share[c, s]
            log1m_drop = math.log1p(-min(d_p, 1.0 - d_p)) if 0.0 < d_p < 1.0 else 1.0
            log1m_reengage = math.log1p(-min(r_p, 1.0 - r_p)) if 0.0 < r_p < 1.0 else 1.0
            wait[:, :] = waiting_start[c, s]
            if not priority_first[s]:
                # one first-come-first-served list: everyone is in the standard class
                wait[1, :] += wait[0, :]
                wait[0, :] = 0.0
            for p in range(2):
                top[p] = 0
                for k in range(n_buckets):
                    if wait[p, k] > 0.0:
                        top[p] = k
            phase[:] = 0.0
            if stochastic:  # whole cases, the remainder in the earliest phases
                n_open = math.floor(open_start[c, s] + 0.5)
                phase[:k_ph] = n_open // k_ph
                phase[: int(n_open % k_ph)] += 1.0
            else:
                phase[:k_ph] = open_start[c, s] / k_ph
            ring[:] = 0.0
            taken[:] = 0.0
            for t in range(n_steps):
                # 1. completions, last phase first so a case moves at most one phase a step
                h = hazard[c, s, t]
                log1m_q = math.log1p(-min(h, 1.0 - h)) if 0.0 < h < 1.0 else 1.0
                done = 0.0
                for j in range(k_ph - 1, -1, -1):
                    moved = _binom(state, phase[j], h, stochastic, log1m_q)
                    phase[j] -= moved
                    if j == k_ph - 1:
                        done += moved
                    else:
                        phase[j + 1] += moved
                # 2. re-engagement after soft closure: back into the caseload without a wait
                slot_now = t % (delay + 1)
                phase[0] += ring[slot_now]
                ring[slot_now] = 0.0
                if delay > 0:
                    ring[(t + delay) % (delay + 1)] += _binom(
                        state, done, r_p, stochastic, log1m_reengage
                    )
                # 3. drop-out while waiting, 4. arrivals
                dropped = 0.0
                for p in range(2):
                    dropped += _drop_out(state, wait, p, top[p], d_p, stochastic, log1m_drop)
                lam0, lam1 = arrivals[c, s, t, 0], arrivals[c, s, t, 1]
                if not stochastic:
                    a0, a1 = (lam0, lam1) if prio else (0.0, lam0 + lam1)
                elif read:
                    a0, a1 = float(drawn[c, s, t, 0]), float(drawn[c, s, t, 1])
                else:
                    a0, a1 = _arrive(arrive, lam0, lam1, prio)
                wait[0, 0] += a0  # one list: a0 is 0, everyone in the standard class
                wait[1, 0] += a1
                arrived = a0 + a1
                # 5. starts: priority class first, then the longest wait first
                open_now = 0.0
                for j in range(k_ph):
                    open_now += phase[j]
                if stretch[s]:
                    free = np.inf
                else:
                    free = max(np.floor(slots[c, s, t] + 1e-9) - open_now, 0.0)
                started = 0.0
                wait_sum = 0.0
                within = 0.0
                within_prio = 0.0
                for p in range(2):
                    for k in range(top[p], -1, -1):
                        if free <= 0.0:
                            break
                        take = min(free, wait[p, k])
                        if take > 0.0:
                            wait[p, k] -= take
                            taken[k] += take  # this reporting period's starts by wait
                            free -= take
                            started += take
                            wait_sum += k * take
                            if k <= target_steps[s]:
                                within += take
                                if p == 0:
                                    within_prio += take
                phase[0] += started
                waiting_total = 0.0
                for p in range(2):
                    while top[p] > 0 and wait[p, top[p]] <= 0.0:
                        top[p] -= 1
                    for k in range(top[p] + 1):
                        waiting_total += wait[p, k]
                # record: flows add up over the reporting period, stocks are its last step's
                q = period[t]
                out[0, c, s, q] += arrived
                out[1, c, s, q] += started
                out[2, c, s, q] = waiting_total
                out[3, c, s, q] = open_now + started
                out[4, c, s, q] += dropped
                out[5, c, s, q] += done
                out[6, c, s, q] += wait_sum
                out[7, c, s, q] += within
                out[9, c, s, q] += within_prio
                if t == n_steps - 1 or period[t + 1] != q:
                    out[8, c, s, q] = _p90(taken, out[1, c, s, q])
                    taken[:] = 0.0
                # 6. ageing: shift every bucket one step older; the last one accumulates
                for p in range(2):
                    if n_buckets == 1:
                        continue
                    if top[p] == n_buckets - 1:
                        wait[p, n_buckets - 1] += wait[p, n_buckets - 2]
                        first = n_buckets - 2
                    else:
                        first = top[p] + 1
                    for k in range(first, 0, -1):
                        wait[p, k] = wait[p, k - 1]
                    wait[p, 0] = 0.0
                    top[p] = min(top[p] + 1, n_buckets - 1)
    return out
