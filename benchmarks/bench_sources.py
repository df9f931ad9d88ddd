"""Time the source readers on the real shared data.

Run: ``python benchmarks/bench_sources.py [DATA_DIR]`` (default: ``$NEEDSLED_SHARED_DATA``
or ``../shared/data`` next to the repo). Target: reading and stitching the four MPS
borough files in under 2 s. Reports the best of several runs to damp machine noise.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from needsled.sources import read_met_borough_crime, read_ons_pfa_crime

MET_TARGET_SECONDS = 2.0


def timings(fn: Callable[[], object], runs: int = 5) -> tuple[float, float]:
    """(first run, best of ``runs``): the first pays one-off Arrow/pandas warm-up."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times[0], min(times)


def main(argv: list[str]) -> int:
    default = (
        os.environ.get("NEEDSLED_SHARED_DATA")
        or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    root = Path(argv[1]) if len(argv) > 1 else Path(default)
    met_files = sorted((root / "london_mps_borough").glob("*.csv"))
    if len(met_files) != 4:
        print(f"expected 4 MPS files under {root / 'london_mps_borough'}, found {len(met_files)}")
        return 2
    met_first, met_best = timings(lambda: read_met_borough_crime(met_files))
    ons_first, ons_best = timings(lambda: read_ons_pfa_crime(root / "ew_pfa" / "rec-crime-pfa.csv"))
    ok = met_first < MET_TARGET_SECONDS
    print(f"read + stitch 4 MPS borough files: first {met_first:.3f} s, best {met_best:.3f} s")
    print(
        f"  target < {MET_TARGET_SECONDS} s on the first (cold) run: {'OK' if ok else 'TOO SLOW'}"
    )
    print(f"read ONS PFA recorded crime:        first {ons_first:.3f} s, best {ons_best:.3f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
