"""`needsled backtest`: rolling-origin backtests of the crime forecaster on every series of a
model."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from needsled.cli_common import (
    UserError,
    fail,
    out,
    out_folder,
    split_list,
)

# --------------------------------------------------------------------------- backtest

_BACKTEST_COLUMNS = ["series", "offence", "method", "origin", "horizon", "mase", "coverage80"]


def _origins(n_months: int, horizon: int, count: int | None) -> list[int] | None:
    from needsled.forecast import MIN_MONTHS

    if count is None:
        return None
    last = n_months - horizon
    origins = list(range(last, MIN_MONTHS - 1, -3))[:count][::-1]
    if len(origins) < count:
        raise UserError(
            f"--origins {count}: the history ({n_months} months) allows at most "
            f"{len(origins)} origins 3 months apart with --horizon {horizon}",
            f"use --origins {max(len(origins), 1)} or fewer, or a shorter --horizon",
        )
    return origins


def run_backtest(
    model_path: Path,
    horizon: int = 12,
    methods: Sequence[str] | None = None,
    origins: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Backtest every borough × offence series and each offence's all-areas total ("ALL").

    Boroughs are forecast together per offence (as ``needsled run`` does); totals one per
    offence. Returns the ``backtest.csv`` table.
    """
    from needsled.errors import InputError
    from needsled.forecast import DEFAULT_METHOD, METHODS, MIN_MONTHS, ForecastInputError
    from needsled.forecast import backtest as forecast_backtest
    from needsled.io.load import load_model
    from needsled.scenarios import month_index, month_label

    chosen = split_list(methods) if methods else ["seasonal_naive", "mean", DEFAULT_METHOD]
    bad = [m for m in chosen if m not in METHODS]
    if bad:
        raise UserError(
            f"--methods: unknown method(s) {', '.join(bad)}",
            f"choose from {', '.join(METHODS)} (comma-separated)",
        )
    if not model_path.exists():
        raise UserError(f"{model_path} does not exist", "give a model folder or workbook")
    try:
        model = load_model(model_path)
    except InputError as exc:
        raise UserError(exc.report(), "fix the listed problems (see `needsled validate`)") from None
    hist = np.asarray(model.crime_history, dtype=np.float64)
    n_a, n_o, n = hist.shape
    if n - horizon < MIN_MONTHS:
        raise UserError(
            f"{model_path}: {n} months of crime history is too short to backtest "
            f"{horizon} months ahead",
            f"backtesting needs at least {MIN_MONTHS} + horizon "
            "months: add history or use a shorter --horizon",
        )
    start = month_index(model.history_end) - n + 1
    labels = [month_label(start + i) for i in range(n)]
    at = _origins(n, horizon, origins)
    offences = list(model.offence_codes)
    try:
        boroughs = forecast_backtest(
            hist.reshape(n_a * n_o, n),
            horizon,
            at,
            chosen,
            groups=np.tile(np.arange(n_o), n_a),
            month_labels=labels,
            seed=seed,
        )
        totals = forecast_backtest(
            hist.sum(axis=0),
            horizon,
            at,
            chosen,
            groups=np.arange(n_o),
            month_labels=labels,
            seed=seed,
        )
    except ForecastInputError as exc:
        raise UserError(f"{model_path}: {exc}") from None
    idx = boroughs["series"].to_numpy(dtype=np.int64)
    boroughs["offence"] = [offences[i % n_o] for i in idx]
    boroughs["series"] = [model.area_codes[i // n_o] for i in idx]
    totals["offence"] = [offences[i] for i in totals["series"].to_numpy(dtype=np.int64)]
    totals["series"] = "ALL"
    table = pd.concat([totals, boroughs], ignore_index=True)[_BACKTEST_COLUMNS]
    table.attrs["default_method"] = DEFAULT_METHOD
    return table


def backtest_summary(table: pd.DataFrame, default: str) -> list[str]:
    """Markdown lines: mean MASE and 80% coverage by level, offence and method, and the
    share of boroughs where the default forecaster beats seasonal naive."""
    level = np.where(table["series"] == "ALL", "all boroughs (ALL)", "boroughs")
    frame = table.assign(level=level)
    agg = (
        frame.groupby(["level", "offence", "method"], sort=False)
        .agg(
            mase=("mase", "mean"),
            coverage80=("coverage80", "mean"),
            series=("series", "nunique"),
            origins=("origin", "nunique"),
        )
        .reset_index()
    )
    origins = sorted(set(table["origin"]))
    lines = [
        "# Forecast backtest",
        "",
        f"Rolling origins: {len(origins)} ({origins[0]} to {origins[-1]}), "
        f"{int(table['horizon'].iloc[0])} months ahead. MASE below 1 beats the in-sample "
        "seasonal-naive error; 80% intervals should cover about 0.80 of held-out months.",
        "",
        "| level | offence | method | series | mean MASE | 80% coverage |",
        "|---|---|---|---:|---:|---:|",
    ]
    for r in agg.sort_values(
        ["level", "offence"], ascending=[False, True], kind="stable"
    ).itertuples():
        mark = " (default)" if r.method == default else ""
        lines.append(
            f"| {r.level} | {r.offence} | {r.method}{mark} | {r.series} | "
            f"{r.mase:.3f} | {r.coverage80:.2f} |"
        )
    lines.append("")
    methods = set(table["method"])
    per = (
        frame[frame["level"] == "boroughs"]
        .groupby(["offence", "series", "method"])["mase"]
        .mean()
        .unstack("method")
    )
    if {default, "seasonal_naive"} <= methods and len(per):
        for off, part in per.groupby(level="offence"):
            beats = float((part[default] < part["seasonal_naive"]).mean())
            lines.append(
                f"- {off}: the default ({default}) has a lower mean MASE than "
                f"seasonal naive in {beats:.0%} of {len(part)} boroughs."
            )
    else:
        lines.append(
            f"- Default vs seasonal naive: not compared (run both {default} and seasonal_naive)."
        )
    nan = int(table["mase"].isna().sum())
    if nan:
        lines.append(f"- {nan} row(s) have no MASE (the training series never changed).")
    lines += ["", "Method definitions and how to read this: docs/forecasting.md."]
    return lines


def backtest(
    model: Annotated[Path, typer.Argument(help="Model folder or workbook")],
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for backtest.csv and backtest-summary.md")
    ],
    horizon: Annotated[
        int, typer.Option("--horizon", min=1, max=60, help="Months ahead to forecast")
    ] = 12,
    methods: Annotated[
        list[str] | None,
        typer.Option(
            "--methods",
            help="Methods, comma-separated or repeated (default: seasonal_naive, "
            "mean and the default pooled_ets; 'ets' is slow)",
        ),
    ] = None,
    origins: Annotated[
        int | None,
        typer.Option(
            "--origins",
            min=1,
            help="Number of forecast origins, 3 months apart, ending at the "
            "last possible one (default: every 3 months over 5 years)",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 0,
) -> None:
    """Rolling-origin backtests of the crime forecasts on every series of a model."""
    try:
        table = run_backtest(model, horizon, methods, origins, seed)
        out_folder(out_dir)
    except UserError as err:
        raise fail(err) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(out_dir / "backtest.csv", index=False)
    lines = backtest_summary(table, str(table.attrs["default_method"]))
    (out_dir / "backtest-summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for line in lines:
        out.print(line, markup=False, highlight=False)
    out.print(
        f"\nTables: {(out_dir / 'backtest.csv').resolve()}, "
        f"{(out_dir / 'backtest-summary.md').resolve()}",
        markup=False,
        highlight=False,
    )
