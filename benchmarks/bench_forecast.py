"""Benchmark and evidence for needsled.forecast.

    python benchmarks/bench_forecast.py              # timing: 64 series x 1000 paths x 60 months
    python benchmarks/bench_forecast.py --evidence   # rolling-origin backtests on Met data (~3 min)
    python benchmarks/bench_forecast.py --evidence --with-ets   # + per-series ETS (~20 min more)

The evidence mode prints the tables in docs/forecasting.md. It needs the shared data folder
(default /work/shared/data, or --data PATH).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd

from needsled.forecast import DEFAULT_METHOD, backtest, forecast
from needsled.sources.met import MetCrime, read_met_borough_crime

OFFENCES = ("RAPE", "OTHER SEXUAL OFFENCES")
MPS_TOTAL = "MPS total (incl. Unknown, airports)"
COVID = (201904, 202203)  # origins whose held-out year or the year before touch 2020-03..2021-03


def synthetic(rng: np.random.Generator, k: int = 64, n: int = 120) -> np.ndarray:
    """k Poisson series with seasonality and a drifting level (two groups of 32 here)."""
    t = np.arange(n)
    season = 0.2 * np.sin(2 * np.pi * t / 12)
    level = np.log(rng.uniform(10, 80, size=(k, 1))) + 0.01 * rng.standard_normal((1, n)).cumsum(1)
    return rng.poisson(np.exp(level + season)).astype(float)


def bench(repeats: int, with_ets: bool) -> None:
    y = synthetic(np.random.default_rng(0))
    groups = np.repeat([0, 1], 32)
    methods = ["seasonal_naive", "mean", "pooled_ets"] + (["ets"] if with_ets else [])
    print(f"forecast(): {y.shape[0]} series, 1000 paths, 60-month horizon, {y.shape[1]} months")
    for method in methods:
        times = []
        for r in range(repeats if method != "ets" else 1):
            t0 = time.perf_counter()
            fc = forecast(y, 60, 1000, np.random.default_rng(r), method=method, groups=groups)
            times.append(time.perf_counter() - t0)
        print(
            f"  {method:15s} median {statistics.median(times):6.2f} s  min {min(times):6.2f} s"
            f"  paths {fc.paths.shape} {fc.paths.nbytes / 1e6:.0f} MB"
        )


def read_met(data: Path) -> MetCrime:
    """The newformat pair through the official reader (the recent release wins on overlap)."""
    return read_met_borough_crime(sorted((data / "london_mps_borough").glob("*_newformat_*.csv")))


def yyyymm(months: pd.Index) -> list[int]:
    return [p.year * 100 + p.month for p in months]


def summarise(bt: pd.DataFrame, title: str) -> None:
    print(f"\n### {title}: {bt['origin'].nunique()} origins")
    total = bt[bt["series"] == "London total"]
    tab = total.groupby(["offence", "method"])[["mase", "coverage80"]].mean().unstack(0)
    print("London total (mean over origins):")
    print(tab.round(3).to_string())
    boroughs = bt[~bt["series"].isin(["London total", MPS_TOTAL])]
    if boroughs.empty:
        return
    per = boroughs.groupby(["offence", "method", "series"])["mase"].mean().unstack("method")
    rows = []
    for offence, g in per.groupby(level="offence"):
        for method in g.columns:
            cov = boroughs[(boroughs["offence"] == offence) & (boroughs["method"] == method)]
            rows.append(
                {
                    "offence": offence,
                    "method": method,
                    "mean MASE": g[method].mean(),
                    "beats SN (of 32)": int((g[method] < g["seasonal_naive"]).sum()),
                    "coverage80": cov["coverage80"].mean(),
                }
            )
    print("Boroughs (per-borough mean over origins, then mean over boroughs):")
    print(pd.DataFrame(rows).round(3).to_string(index=False))


def evidence(data: Path, with_ets: bool, out: Path | None) -> None:
    methods = ["seasonal_naive", "mean", DEFAULT_METHOD] + (["ets"] if with_ets else [])
    frames = []
    met = read_met(data)
    for offence in OFFENCES:
        rows = met.data[met.data["minor"] == offence]
        wide = rows.pivot_table(index="area_name", columns="month", values="count", aggfunc="sum")
        months = yyyymm(wide.columns)
        origins = [i for i, m in enumerate(months) if 201503 <= m <= 202403 and m % 100 % 3 == 0]
        y = wide.to_numpy(float)
        mps_total = met.london_total(minor=offence)  # includes Unknown and the airports
        assert yyyymm(mps_total.index) == months
        mps = mps_total.to_numpy(float)[None, :]
        for name, arr, meths, series in (
            ("London total", y.sum(0)[None, :], methods, ["London total"]),
            ("MPS total", mps, methods, [MPS_TOTAL]),
            ("boroughs", y, methods, list(wide.index)),
        ):
            t0 = time.perf_counter()
            bt = backtest(arr, 12, origins, meths, series_names=series, month_labels=months)
            bt["offence"] = offence
            frames.append(bt)
            print(f"{offence:22s} {name:13s} {time.perf_counter() - t0:6.1f} s")
    bt = pd.concat(frames, ignore_index=True)
    if out is not None:
        bt.to_csv(out, index=False)
    covid = bt["origin"].between(*COVID)
    summarise(bt, "All origins 2015-03..2024-03, quarterly")
    summarise(bt[~covid], "Excluding COVID-affected origins 2019-04..2022-03")
    summarise(bt[bt["origin"] > COVID[1]], "Post-COVID origins only, 2022-06..2024-03")
    summarise(bt[bt["origin"] >= 201903], "Last 5 years of origins, 2019-03..2024-03")
    mps = bt[bt["series"] == MPS_TOTAL].copy()
    mps["series"] = "London total"
    summarise(mps, "Sensitivity: MPS total including Unknown and airports, all origins")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--evidence", action="store_true", help="run the Met backtests")
    parser.add_argument("--with-ets", action="store_true", help="include per-series ETS")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--out", type=Path, help="also write the backtest rows to this CSV")
    args = parser.parse_args()
    if args.evidence:
        evidence(args.data, args.with_ets, args.out)
    else:
        bench(args.repeats, args.with_ets)


if __name__ == "__main__":
    main()
