"""Benchmark the optimiser on the built-in London example.

    python benchmarks/bench_optimise.py                # one plan, then the curve at 20 budgets
    python benchmarks/bench_optimise.py --budgets 20 --repeats 3

The workload: 32 boroughs x 6 services, three service options (group counselling, online
emotional support, a by-and-for grant, up to 2, 2 and 1 units per borough), one contract lot
(ISVA with children's ISVA), a 3-year contract, services may grow 30% and shrink 20%.

Timed, each the best of ``--repeats`` (figures also show the median):

- *prepare*: the crime point forecast and the response curves from one deterministic engine
  call (a chain per borough and 0.1-FTE step);
- *one plan*: the MILP at today's budget, solved to a proven 0.01% gap, plus the engine's
  evaluation of the plan (what ``needsled optimise`` does before its extras);
- *one plan with a floor*: the same with a 60% equity floor;
- *curve*: the marginal-money curve at ``--budgets`` budgets from today's cost -20% to +£2m.

Targets (issue 5): one plan (prepare + solve) at most 5 s; the curve at 20 budgets at most 30 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from needsled import optimise as op
from needsled.example import write_example
from needsled.io.load import load_model


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(write_example(Path(tmp) / "london"))
    settings = op.Settings(budget=0.0)
    op.prepare(model, settings)  # warm-up: compile or load the engine, import HiGHS
    best, med, pb = timed(lambda: op.prepare(model, settings), args.repeats)
    assert isinstance(pb, op.PlanProblem)
    print(f"prepare (forecast + response curves): best {best:.2f} s, median {med:.2f} s")
    pairs = int(pb.served.sum())
    segments = sum(len(pb.places[a][s]) - 1 for a, s in zip(*np.nonzero(pb.served), strict=True))
    print(f"  {pairs} service-area pairs, {segments} curve segments, {len(pb.options)} options")
    budget = pb.today_cost()
    best_s, med_s, plan = timed(lambda: op.solve(pb, budget), args.repeats)
    assert isinstance(plan, op.Plan)
    print(
        f"one plan at today's budget (£{budget / 1e6:.2f}m): solve best {best_s:.2f} s, "
        f"median {med_s:.2f} s; prepare + solve best {best + best_s:.2f} s (target 5 s)"
    )
    print(f"  gap {plan.gap:.4%}, status {plan.status}, within target {plan.within.sum():,.0f}")
    floor_pb = op.with_settings(pb, equity_floor=0.6)
    best_f, med_f, _ = timed(lambda: op.solve(floor_pb, budget), args.repeats)
    print(f"one plan with a 60% equity floor: solve best {best_f:.2f} s, median {med_f:.2f} s")
    budgets = np.linspace(0.8 * budget, budget + 2e6, args.budgets).round(-3).tolist()
    workers = os.cpu_count() or 1
    with ThreadPoolExecutor(workers) as pool:
        best_c, _, curve = timed(lambda: op.marginal_curve(pb, budgets, executor=pool), 1)
    print(
        f"marginal curve at {args.budgets} budgets on {workers} threads: {best_c:.2f} s "
        f"(target 30 s at 20), {best_c / args.budgets:.2f} s a budget"
    )
    print(curve.to_string(index=False, columns=["budget", "cost", "supported_within_target"]))


if __name__ == "__main__":
    main()
