"""One M/M/c queue simulated by needsled's flow engine and by Ciw: agreement and speed.

    python benchmarks/bench_ciw.py                      # c = 5, rho = 0.85, ~40 s
    python benchmarks/bench_ciw.py --servers 20 --load 0.9 --budget 20
    python benchmarks/bench_ciw.py --hazard 0.25         # a coarser step: 4 steps a duration

Ciw (Palmer, Knight, Harper & Hawa 2019, https://github.com/CiwPython/Ciw) is an exact
event-driven simulator. needsled runs the same queue in discrete time at a fine step: the
mean support duration is 50 steps (per-step hazard h = 0.02), and the step's events run
completions -> arrivals -> starts. Its durations are then geometric, whole steps, with mean
exactly 1 / mu but squared coefficient of variation 1 - h, so its mean wait is the M/M/c
wait times (1 - h / 2) (see tests/test_flow_theory.py for the derivation and the exact
discrete-time check). Both are printed: the engine's raw mean wait against the corrected
formula, and the engine's wait divided by (1 - h / 2) against Ciw and the M/M/c formula.

Both simulators get the same expected number of victims. Ciw runs one long replication
(its warm-up is a negligible share); needsled runs many chains, each from a draw of the M/M/c
stationary law (caseload and list, the list's ages set to 0) with a warm-up of 20 mean
durations discarded, by which time the initial list has been served; warm-up victims count as
simulated in both. The Ciw run is sized from a short pilot so that it takes about
``--budget`` seconds. Speed is compared per victim simulated; the target is needsled at
least 50 times faster.
"""

from __future__ import annotations

import argparse
import math
import time

import ciw
import numba
import numpy as np
from numpy.typing import NDArray

from needsled.flow import FlowInputs, simulate
from needsled.queueing import mmc_mean_wait

H = 0.02  # per-step hazard: 50 steps per mean support duration (mu = 1, dt = h)
WARMUP_DURATIONS = 20.0  # warm-up, in mean support durations
SPEED_TARGET = 50.0

F64 = NDArray[np.float64]


def run_ciw(lam: float, c: int, max_time: float, seed: int) -> tuple[float, F64, F64]:
    """One Ciw replication: (seconds in simulate_until_max_time, arrival dates, waits)."""
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=lam)],
        service_distributions=[ciw.dists.Exponential(rate=1.0)],
        number_of_servers=[c],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    start = time.perf_counter()
    sim.simulate_until_max_time(max_time)
    seconds = time.perf_counter() - start
    records = sim.get_all_records()
    arrived = np.array([r.arrival_date for r in records])
    waits = np.array([r.waiting_time for r in records])
    return seconds, arrived, waits


def ciw_estimate(
    arrived: F64, waits: F64, warmup: float, n_batches: int = 30
) -> tuple[float, float]:
    """Mean wait after the warm-up and its batch-means standard error (batches by arrival)."""
    keep = arrived >= warmup
    a, w = arrived[keep], waits[keep]
    edges = np.linspace(a.min(), a.max(), n_batches + 1)
    idx = np.clip(np.searchsorted(edges, a, side="right") - 1, 0, n_batches - 1)
    sums = np.bincount(idx, weights=w, minlength=n_batches)
    counts = np.bincount(idx, minlength=n_batches)
    mean = float(w.mean())
    resid = (sums - mean * counts) / counts.mean()
    return mean, float(resid.std(ddof=1) / math.sqrt(n_batches))


def mmc_stationary(lam: float, c: int, size: int, rng: np.random.Generator) -> F64:
    """Draws of the number in system (in service + waiting) from the M/M/c stationary law."""
    a, rho = lam, lam / c
    n_max = c + math.ceil(math.log(1e-12) / math.log(rho))
    n = np.arange(n_max + 1)
    log_p = np.where(
        n <= c,
        n * math.log(a) - np.array([math.lgamma(k + 1.0) for k in n]),
        c * math.log(a) - math.lgamma(c + 1.0) + (n - c) * math.log(rho),
    )
    p = np.exp(log_p - log_p.max())
    return rng.choice(n, size=size, p=p / p.sum()).astype(np.float64)


def needsled_inputs(lam: float, c: int, n_chains: int, n_steps: int, n_buckets: int) -> FlowInputs:
    """Chains that start from an M/M/c stationary draw (list ages 0, cleared in the warm-up)."""
    shape = (n_chains, 1, n_steps)
    arrivals = np.zeros((*shape, 2))
    arrivals[..., 1] = lam * H  # expected referrals per step
    in_system = mmc_stationary(lam, c, n_chains, np.random.default_rng(7))
    waiting_start = np.zeros((n_chains, 1, 2, n_buckets))
    waiting_start[:, 0, 1, 0] = np.maximum(in_system - c, 0.0)
    return FlowInputs(
        arrivals=arrivals,
        slots=np.full(shape, float(c)),
        hazard=np.full(shape, H),
        n_phases=np.array([1]),
        drop=np.zeros((n_chains, 1)),
        reengage_share=np.zeros((n_chains, 1)),
        reengage_steps=np.zeros(1, dtype=np.int64),
        waiting_start=waiting_start,
        open_start=np.minimum(in_system, c)[:, None],
        target_steps=np.zeros(1, dtype=np.int64),
        stretch=np.zeros(1, dtype=np.bool_),
        priority_first=np.zeros(1, dtype=np.bool_),
        seeds=np.arange(1, n_chains + 1, dtype=np.int64),
    )


def main() -> None:
    global H
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=5)
    parser.add_argument("--load", type=float, default=0.85)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds for the Ciw run")
    parser.add_argument("--max-victims", type=int, default=600_000)
    parser.add_argument(
        "--hazard",
        type=float,
        default=H,
        help="per-step hazard h = step / mean duration (0.02: 50 steps a duration; 0.25 is "
        "coarser, closer to a monthly step for month-long support, and much faster)",
    )
    args = parser.parse_args()
    H = args.hazard  # the step: a module constant that the helpers read
    c, rho = args.servers, args.load
    lam = rho * c
    wq = float(mmc_mean_wait(lam, 1.0, c))
    print(f"M/M/{c}: lambda = {lam:g}, mu = 1, rho = {rho:g}; M/M/c mean wait Wq = {wq:.5f}")
    print(
        f"needsled step = mean duration / {1 / H:.0f} (h = {H}); Numba threads: "
        f"{numba.get_num_threads()}"
    )

    # Ciw: pilot, then a run of about --budget seconds
    pilot_victims = 5_000
    pilot_s, _, _ = run_ciw(lam, c, pilot_victims / lam, seed=0)
    per_victim = pilot_s / pilot_victims
    victims = int(min(args.max_victims, args.budget / per_victim))
    horizon = victims / lam
    ciw_s, arrived, waits = run_ciw(lam, c, horizon, seed=1)
    ciw_n = arrived.size
    ciw_w, ciw_se = ciw_estimate(arrived, waits, WARMUP_DURATIONS)

    # needsled: the same expected number of victims, over chains of 5,000 steps
    n_steps = 5_000
    warmup = int(WARMUP_DURATIONS / H)
    n_chains = max(1, round(victims / (n_steps * lam * H)))
    tail_steps = 1.0 / (c * H * (1.0 - rho))  # mean conditional wait in steps
    n_buckets = 1 + math.ceil(12 * tail_steps)  # waits capped at K - 1: loses exp(-12)
    inputs = needsled_inputs(lam, c, n_chains, n_steps, n_buckets)
    simulate(inputs)  # compile or load from the cache
    times = []
    for _ in range(3):
        start = time.perf_counter()
        out = simulate(inputs)
        times.append(time.perf_counter() - start)
    ns_s = min(times)
    ns_n = float(out.referrals.sum())
    starts = out.starts[:, 0, warmup:].astype(np.float64)
    wait_sum = np.nan_to_num(out.mean_wait_steps[:, 0, warmup:].astype(np.float64)) * starts
    per_chain_w, per_chain_n = wait_sum.sum(axis=1), starts.sum(axis=1)
    ns_steps = per_chain_w.sum() / per_chain_n.sum()
    resid = (per_chain_w - ns_steps * per_chain_n) / per_chain_n.mean()
    ns_se_steps = resid.std(ddof=1) / math.sqrt(n_chains)
    ns_w, ns_se = ns_steps * H, ns_se_steps * H  # time units
    corr = 1.0 - H / 2.0
    ns_cont, ns_cont_se = ns_w / corr, ns_se / corr

    print(
        f"\nvictims simulated: Ciw {ciw_n:,} in one run of {horizon:,.0f} time units; "
        f"needsled {ns_n:,.0f} in {n_chains} chains x {n_steps} steps"
    )
    print("\nmean wait (time units; +- one standard error)")
    print(f"  M/M/c formula                       {wq:.5f}")
    print(
        f"  Ciw                                 {ciw_w:.5f} +- {ciw_se:.5f}   "
        f"z = {(ciw_w - wq) / ciw_se:+.2f} vs formula"
    )
    print(
        f"  needsled, raw                       {ns_w:.5f} +- {ns_se:.5f}   "
        f"z = {(ns_w - wq * corr) / ns_se:+.2f} vs formula x (1 - h/2) = {wq * corr:.5f}"
    )
    print(
        f"  needsled / (1 - h/2)                {ns_cont:.5f} +- {ns_cont_se:.5f}   "
        f"z = {(ns_cont - wq) / ns_cont_se:+.2f} vs formula"
    )
    diff = ns_cont - ciw_w
    diff_se = math.hypot(ns_cont_se, ciw_se)
    print(
        f"  needsled / (1 - h/2) - Ciw          {diff:+.5f} +- {diff_se:.5f}   "
        f"z = {diff / diff_se:+.2f} ({diff / ciw_w:+.1%} of Ciw's wait)"
    )

    ciw_us = ciw_s / ciw_n * 1e6
    ns_us = ns_s / ns_n * 1e6
    ratio = ciw_us / ns_us
    print("\nspeed (per victim simulated)")
    print(f"  Ciw        {ciw_s:7.2f} s  {ciw_us:8.2f} us per victim")
    print(
        f"  needsled   {ns_s:7.3f} s  {ns_us:8.3f} us per victim (best of 3, "
        f"{ns_s / (n_chains * n_steps) * 1e9:.0f} ns per chain-step)"
    )
    step_ns = ns_s / (n_chains * n_steps) * 1e9
    print(
        f"  needsled's cost is per chain-step ({step_ns:.0f} ns), not per victim: here a chain "
        f"sees {lam * H:.3f} victims a step; at 1 victim a step the ratio would be "
        f"{ciw_us * 1e3 / step_ns:.0f}x"
    )
    verdict = "met" if ratio >= SPEED_TARGET else "NOT MET"
    print(
        f"  needsled / Ciw time per victim = 1 / {ratio:.0f}: needsled {ratio:.0f}x faster "
        f"(target >= {SPEED_TARGET:.0f}x: {verdict})"
    )


if __name__ == "__main__":
    main()
