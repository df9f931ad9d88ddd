"""Benchmark the flow engine on the standard London workload.

    python benchmarks/bench_engine.py                 # 200 and 1,000 replicates
    python benchmarks/bench_engine.py --replicates 1000 --repeats 3

The workload: 32 areas x 6 services x 60 monthly steps, waits kept by month up to 36 months
(K = 37 buckets), stochastic mode; 1,000 replicates make C = 32,000 chains. The six services
are a realistic mix: mean support durations of 2.3 to 18 months as Erlang phases, loads
(demand / capacity) of 0.8 to 1.1, priority classes in three services, drop-out while
waiting, soft-closure re-engagement, and one stretch service that never queues. Demand
varies by area (lognormal), by replicate (a gamma demand multiplier) and by month
(seasonality).

Each replicate count runs in a fresh subprocess so that its peak memory is its own. Wall
time is the best (and median) of ``--repeats`` calls of ``simulate`` after a warm-up call that
compiles (or loads the compiled kernel from Numba's cache), with the median CPU time of the
process (every thread counts) and the machine's load average (it is shared: wall times vary
by 2x or more when others are running; CPU time is steadier). Memory is reported three ways:

- peak RSS of the process (``ru_maxrss``) and its growth over the inputs already built,
- the NumPy-side peak inside ``simulate`` (tracemalloc sees NumPy's allocations but not the
  kernel's own output array, which Numba allocates), and
- the size of that output array, one channel per output (flow.CHANNELS) x C x S x T float32.

Targets: 1,000 replicates in at most 2 s and 2 GB; 200 replicates in at most 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass

import numba
import numpy as np

from needsled.flow import CHANNELS, FlowInputs, simulate

AREAS = 32
MONTHS = 60
BUCKETS = 37  # waits by month, 0 to 36 months; the last bucket is "36 months or more"
TARGETS = {1000: (2.0, 2.0), 200: (0.3, None)}  # replicates: (seconds, GB)


@dataclass(frozen=True)
class Service:
    name: str
    referrals_per_month: float  # per area, before area and replicate variation
    mean_months: float
    n_phases: int
    load: float  # demand x duration / slots
    priority_share: float
    drop_per_month: float
    reengage_share: float
    reengage_months: int
    target_months: int
    stretch: bool = False


SERVICES = (
    Service("ISVA (sexual violence advocacy)", 14.0, 18.0, 4, 1.05, 0.10, 0.02, 0.05, 3, 1),
    Service("IDVA (domestic abuse, high risk)", 40.0, 4.0, 2, 0.95, 0.35, 0.05, 0.10, 2, 0),
    Service("Trauma counselling", 18.0, 6.0, 6, 1.10, 0.00, 0.04, 0.00, 0, 3),
    Service("Children and young people", 9.0, 9.0, 3, 0.90, 0.15, 0.03, 0.05, 3, 2),
    Service("General victim support", 55.0, 3.0, 2, 0.80, 0.00, 0.08, 0.00, 0, 1),
    Service("Helpline and practical help", 120.0, 2.3, 1, 1.00, 0.00, 0.00, 0.00, 0, 0, True),
)


def workload(replicates: int, seed: int = 2024) -> FlowInputs:
    """The standard London workload with ``replicates`` Monte Carlo replicates per area."""
    rng = np.random.default_rng(seed)
    n_s, n_c = len(SERVICES), AREAS * replicates
    area_scale = rng.lognormal(0.0, 0.35, size=(AREAS, 1))
    base = np.array([s.referrals_per_month for s in SERVICES])[None, :] * area_scale  # (A, S)
    months = np.arange(MONTHS)
    season = 1.0 + 0.12 * np.sin(2 * np.pi * (months - 3) / 12)  # spring-summer peak
    trend = 1.0 + 0.02 * months / 12  # +2 % a year
    # demand uncertainty per replicate and service: gamma with a 10 % coefficient of variation
    multiplier = rng.gamma(100.0, 0.01, size=(replicates, n_s))
    expected = (
        base[:, None, :, None] * multiplier[None, :, :, None] * (season * trend)[None, None, None]
    ).reshape(n_c, n_s, MONTHS)  # chains ordered area-major, as in needsled.projection
    share = np.array([s.priority_share for s in SERVICES])[None, :, None]
    arrivals = np.empty((n_c, n_s, MONTHS, 2))
    arrivals[..., 0] = expected * share
    arrivals[..., 1] = expected * (1.0 - share)

    mean_months = np.array([s.mean_months for s in SERVICES])
    phases = np.array([s.n_phases for s in SERVICES], dtype=np.int64)
    load = np.array([s.load for s in SERVICES])
    slots_area = np.round(base * mean_months / load)  # (A, S): sized on mean demand
    slots = np.broadcast_to(
        np.repeat(slots_area, replicates, axis=0)[:, :, None], (n_c, n_s, MONTHS)
    ).copy()
    hazard = np.broadcast_to((phases / mean_months)[None, :, None], (n_c, n_s, MONTHS)).copy()
    # start near steady state: a full caseload (a multiple of the phases, whole people in
    # every phase) and a list of about one month of referrals spread over the first 6 months
    demand_open = base * mean_months
    open_area = np.minimum(slots_area, demand_open)
    open_area = np.floor(open_area / phases) * phases
    open_start = np.repeat(open_area, replicates, axis=0)
    stretch = np.array([s.stretch for s in SERVICES])
    waiting_start = np.zeros((n_c, n_s, 2, BUCKETS))
    per_month = np.round(np.repeat(base, replicates, axis=0) / 6.0)
    for s in np.flatnonzero(~stretch):
        prio = np.round(per_month[:, s] * SERVICES[s].priority_share)
        waiting_start[:, s, 0, :6] = prio[:, None]
        waiting_start[:, s, 1, :6] = (per_month[:, s] - prio)[:, None]
    return FlowInputs(
        arrivals=arrivals,
        slots=slots,
        hazard=hazard,
        n_phases=phases,
        drop=np.broadcast_to([s.drop_per_month for s in SERVICES], (n_c, n_s)).copy(),
        reengage_share=np.broadcast_to([s.reengage_share for s in SERVICES], (n_c, n_s)).copy(),
        reengage_steps=np.array([s.reengage_months for s in SERVICES], dtype=np.int64),
        waiting_start=waiting_start,
        open_start=open_start,
        target_steps=np.array([s.target_months for s in SERVICES], dtype=np.int64),
        stretch=stretch,
        priority_first=np.array([s.priority_share > 0 for s in SERVICES]),
        seeds=rng.integers(0, 2**62, size=(n_c, n_s), dtype=np.int64),  # one per service
    )


def rss_gb() -> float:
    """Peak resident set size of this process so far, GB (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def worker(replicates: int, repeats: int) -> None:
    """Build one workload, time it and print one result line (run in a fresh process)."""
    t0 = time.perf_counter()
    inputs = workload(replicates)
    build = time.perf_counter() - t0
    arrays = [getattr(inputs, f) for f in inputs.__dataclass_fields__]
    input_gb = sum(a.nbytes for a in arrays if isinstance(a, np.ndarray)) / 1e9
    rss_inputs = rss_gb()
    t0 = time.perf_counter()
    simulate(inputs)  # compiles, or loads the cached kernel
    first = time.perf_counter() - t0
    times, cpus = [], []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = simulate(inputs)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        del out
    tracemalloc.start()
    out = simulate(inputs)
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    c, s, t = out.starts.shape
    kernel_out_gb = len(CHANNELS) * c * s * t * 4 / 1e9
    waiting = float(out.waiting[:, :, -1].mean())
    del out
    print(
        f"RESULT replicates={replicates} chains={c} best={min(times):.3f} "
        f"median={sorted(times)[len(times) // 2]:.3f} cpu={sorted(cpus)[len(cpus) // 2]:.3f} "
        f"load={os.getloadavg()[0]:.2f} first={first:.3f} build={build:.2f} "
        f"rss_peak={rss_gb():.3f} rss_inputs={rss_inputs:.3f} inputs={input_gb:.3f} "
        f"numpy_peak={numpy_peak / 1e9:.3f} kernel_out={kernel_out_gb:.3f} "
        f"waiting_m60={waiting:.1f}"
    )


def run_in_subprocess(replicates: int, repeats: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", "--replicates", str(replicates)]
    cmd += ["--repeats", str(repeats)]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"worker for {replicates} replicates failed:\n{done.stderr}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT"))
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}


def report(r: dict[str, float], replicates: int) -> None:
    seconds, gb = TARGETS.get(replicates, (None, None))
    chain_steps = r["chains"] * len(SERVICES) * MONTHS

    def verdict(value: float, target: float | None) -> str:
        if target is None:
            return ""
        return f"   target <= {target:g}: {'met' if value <= target else 'NOT MET'}"

    print(f"\n{replicates:,} replicates: C = {int(r['chains']):,} chains x S = {len(SERVICES)}")
    print(f"  chain-steps          {chain_steps / 1e6:.1f} M")
    print(
        f"  wall, best of runs   {r['best']:.3f} s  (median {r['median']:.3f} s; "
        f"{r['best'] / chain_steps * 1e9:.0f} ns per chain-step)" + verdict(r["best"], seconds)
    )
    print(f"  CPU, median          {r['cpu']:.3f} s  (load average {r['load']:.1f})")
    print(f"  first call           {r['first']:.2f} s (compile or cache load)")
    print(f"  peak RSS             {r['rss_peak']:.2f} GB" + verdict(r["rss_peak"], gb))
    print(
        f"    of which inputs    {r['inputs']:.2f} GB arrays "
        f"(RSS {r['rss_inputs']:.2f} GB before the first call)"
    )
    print(f"  NumPy peak in call   {r['numpy_peak']:.2f} GB (tracemalloc)")
    print(f"  kernel output array  {r['kernel_out']:.2f} GB (9 x C x S x T float32)")
    print(f"  mean list, month 60  {r['waiting_m60']:.1f} per area and service (sanity)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, nargs="*", default=[200, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.replicates[0], args.repeats)
        return
    threads = os.environ.get("NUMBA_NUM_THREADS", str(numba.config.NUMBA_NUM_THREADS))
    print(
        f"needsled flow engine: {AREAS} areas x {len(SERVICES)} services x {MONTHS} months, "
        f"K = {BUCKETS}, stochastic; {os.cpu_count()} CPUs, {threads} Numba threads"
    )
    for s in SERVICES:
        kind = "stretch" if s.stretch else f"load {s.load:.2f}"
        print(
            f"  {s.name:34s} {s.mean_months:4.1f} months ({s.n_phases} phases), {kind}, "
            f"priority {s.priority_share:.0%}, drop {s.drop_per_month:.0%}/month"
        )
    for replicates in args.replicates:
        report(run_in_subprocess(replicates, args.repeats), replicates)


if __name__ == "__main__":
    main()
