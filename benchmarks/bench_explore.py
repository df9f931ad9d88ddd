"""Benchmark the scenario explorer's computation service on the built-in London example.

    python benchmarks/bench_explore.py                  # 200 replicates, 5 repeats
    python benchmarks/bench_explore.py --replicates 500 --repeats 3

The workload is ``needsled.example.write_example`` (32 boroughs x 6 services x 60 months).
It prints:

- ``Explorer.__init__``: the crime forecast, then each scenario as it stands (full and
  preview), which also loads or compiles the engine;
- ``evaluate()`` for several kinds of lever move, each repeat a new position of the slider
  (so nothing is served from the explorer's caches unless the case says so): best and
  median wall time, the process's CPU time (both cores count; median), the median of each
  part of the work as the explorer reports it in ``timings_ms``, and how many of the six
  services the engine ran (a demand lever runs all six; a lever on one service's staff or
  support length runs that service alone, the first, ISVA, as the last, IDVA; the cost of an
  FTE none);
- ``preview()`` (the deterministic fast path) the same way;
- peak resident memory, and the machine's load average (the machine is shared: figures
  vary by 2x or more when others are running).

With ``--sessions N``, also N threads moving sliders at once (previews while a slider moves,
a full result where it rests), to show what one explorer answers under load without HTTP.

Target (issue 6): at most 0.3 s per update at 200 replicates.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from needsled.example import write_example
from needsled.io.load import load_model
from needsled.web.explore import Explorer

TARGET_S = 0.3
Settings = dict[str, float]


def cases() -> list[tuple[str, str, Callable[[int], Settings]]]:
    """(name, what runs, settings for repeat i): each repeat a new slider position."""
    return [
        ("police reports", "demand + engine", lambda i: {"police_reports": 10.0 + 5 * i}),
        ("FTE, ISVA", "engine, that service", lambda i: {"fte.ISVA": 10.0 + 5 * i}),
        (
            "support length, ISVA",
            "engine, that service",
            lambda i: {"support_duration.ISVA": 10.0 + 5 * i},
        ),
        (
            "support length, BY&FOR",
            "engine, that service",
            lambda i: {"support_duration.BY_AND_FOR": 10.0 + 5 * i},
        ),
        ("FTE, IDVA", "engine, that service", lambda i: {"fte.IDVA": 10.0 + 5 * i}),
        ("cost of an FTE", "engine run kept", lambda i: {"cost_per_fte": 5.0 + 5 * i}),
        (
            "money available",
            "tables only (engine kept)",
            lambda i: {"fte.ISVA": 10.0, "funding_envelope": 1e6 + 1e5 * i},
        ),
        (
            "year shown",
            "tables only (engine kept)",
            lambda i: {"fte.ISVA": 10.0, "year": 2025.0 + i % 5},
        ),
        ("slider moved back", "result kept", lambda _: {"fte.ISVA": 10.0}),
    ]


def rss_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_now_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def measure(
    call: Callable[[Settings], dict[str, Any]], settings: Callable[[int], Settings], repeats: int
) -> dict[str, Any]:
    walls, cpus, parts, ran = [], [], [], []
    for i in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        out = call(settings(i))
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        took = dict(out["timings_ms"]) if not out["cached"] else {"cached": out["timing_ms"]}
        ran.append(took.pop("engine.simulated_services", None))
        parts.append(took)
    keys = dict.fromkeys(k for p in parts for k in p)
    return {
        "best": min(walls),
        "median": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "parts": {k: statistics.median(p.get(k, 0.0) for p in parts) for k in keys},
        "services": sorted({n for n in ran if n is not None}),
    }


def line(name: str, what: str, r: dict[str, Any]) -> None:
    verdict = "met" if r["median"] <= TARGET_S else "NOT MET"
    print(
        f"  {name:22s} {what:26s} best {r['best']:6.3f} s  median {r['median']:6.3f} s  "
        f"CPU {r['cpu']:6.3f} s  target {TARGET_S} s: {verdict}  "
        f"(load {os.getloadavg()[0]:.1f})"
    )
    parts = ", ".join(f"{k} {v:.0f}" for k, v in r["parts"].items() if k != "engine")
    ran = "/".join(map(str, r["services"]))
    runs = f"; services the engine ran: {ran}" if ran else ""
    print(f"  {'':22s} parts (ms, median): {parts}{runs}")


def sessions(ex: Explorer, n: int, seconds: float, think: float) -> None:
    """``n`` threads moving sliders for ``seconds``: each drag sends previews for the
    positions passed over and a full result where the slider rests (one request at a time
    per session, ``think`` seconds apart): what the page would ask of one explorer."""
    levers = [lv for lv in ex.levers() if lv["lever"] is not None and lv["unit"] == "%"]
    times: dict[str, list[float]] = {"preview": [], "evaluate": []}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def one(i: int) -> None:
        rng = random.Random(i)
        settings: Settings = {}
        while time.perf_counter() < deadline:
            lv = rng.choice(levers)
            x = settings.get(lv["key"], 0.0)
            drag = [min(max(x + k * lv["step"], lv["min"]), lv["max"]) for k in range(1, 5)]
            for n_pos, x in enumerate(drag):
                settings[lv["key"]] = x
                kind = "evaluate" if n_pos == len(drag) - 1 else "preview"
                t0 = time.perf_counter()
                getattr(ex, kind)(None, dict(settings))
                with lock:
                    times[kind].append(time.perf_counter() - t0)
                time.sleep(think)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(f"\n{n} sessions moving sliders for {seconds:.0f} s (in process, no HTTP):")
    for kind, xs in times.items():
        xs.sort()
        if xs:
            p50, p95 = xs[len(xs) // 2], xs[min(len(xs) - 1, int(0.95 * len(xs)))]
            print(
                f"  {kind:9s} n={len(xs):4d}  p50 {p50:.3f} s  p95 {p95:.3f} s  max {xs[-1]:.3f} s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=0, help="also N concurrent sessions")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long they move sliders")
    args = parser.parse_args()
    model = load_model(write_example(tempfile.mkdtemp(prefix="needsled-bench-")))
    print(
        f"needsled explorer: {model.name}, {len(model.area_codes)} areas x "
        f"{len(model.services)} services x {model.settings.horizon_months} months, "
        f"{len(model.scenarios)} scenarios, {args.replicates} replicates; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    c0, t0 = time.process_time(), time.perf_counter()
    ex = Explorer(model, replicates=args.replicates)
    init = time.perf_counter() - t0
    print(
        f"\n__init__  {init:.2f} s wall, {time.process_time() - c0:.2f} s CPU "
        f"(forecast {ex.init_seconds['forecast']:.2f} s, the {len(model.scenarios)} scenarios "
        f"as they stand {ex.init_seconds['scenarios']:.2f} s); RSS {rss_now_mb():.0f} MB"
    )
    print(f"\nevaluate() at {args.replicates} replicates, {args.repeats} slider positions each:")
    for name, what, settings in cases():
        line(name, what, measure(lambda s: ex.evaluate(None, s), settings, args.repeats))
    print("\npreview() (deterministic run only; the fast path):")
    for i, (name, _, settings) in enumerate(cases()[:6]):
        res = measure(lambda s: ex.preview(None, s), settings, args.repeats)
        line(name, "demand + det. run" if i == 0 else "det. run (demand kept)", res)
    if args.sessions:
        sessions(ex, args.sessions, args.seconds, think=0.3)
    print(
        f"\nmemory: peak RSS {rss_peak_mb():.0f} MB, now {rss_now_mb():.0f} MB; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
