"""The run as an Excel workbook to take into a meeting (``needsled report RUN_DIR --excel``).

A cover sheet says what the run was and gives the headline sentences; then one sheet per
table, each with a frozen header row, a filter on every column and number formats by what
the number is (counts ``#,##0``, shares ``0.0%``, FTE ``0.0``, money ``£#,##0``). Values are
written as numbers, never as formulas. Excel holds 1,048,576 rows a sheet, which the full
long results table can exceed, so the workbook has the rows for all areas together and the
cover points to ``results.csv`` for the rest.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xlsxwriter

from needsled import __version__
from needsled.privacy import HIDDEN, LEGEND
from needsled.report import ReportInputs, headline
from needsled.results import ALL_AREAS

__all__ = ["ACTUAL_SHEET", "EXCEL_MAX_ROWS", "METRIC_FORMATS", "SHEETS", "write_excel"]

EXCEL_MAX_ROWS = 1_048_576
COUNT, ONE_DP, TWO_DP, SHARE, MONEY, MONTH = (
    "#,##0",
    "0.0",
    "0.00",
    "0.0%",
    "£#,##0",
    "mmm yyyy",
)
#: Number format of each metric's values in the long tables (summary, results).
METRIC_FORMATS: dict[str, str] = {
    "referrals": COUNT,
    "starts": COUNT,
    "waiting": COUNT,
    "open_cases": COUNT,
    "drop_outs": COUNT,
    "completions": COUNT,
    "places": COUNT,
    "capacity": COUNT,
    "mean_wait_weeks": ONE_DP,
    "p90_wait_weeks": ONE_DP,
    "within_target_share": SHARE,
    "utilisation": SHARE,
    "caseload_per_fte": ONE_DP,
    "fte": ONE_DP,
    "fte_needed": ONE_DP,
    "fte_shortfall": ONE_DP,
    "cost_shortfall": MONEY,
}
QUEUE_FORMATS: dict[str, str] = {
    "demand_per_week": ONE_DP,
    "capacity_per_week": ONE_DP,
    "load": TWO_DP,
    "target_queue_size": COUNT,
    "target_capacity_per_week": ONE_DP,
    "relief_capacity_per_week": ONE_DP,
    "waiting_list_pressure": TWO_DP,
    "mmc_mean_wait_weeks": ONE_DP,
    "erlang_c_wait_probability": SHARE,
    "erlang_c_places_needed": COUNT,
    "erlang_c_fte_needed": ONE_DP,
}
STATS = ["mean", "p10", "p50", "p90", "deterministic"]
#: Sheet name and what it holds, in workbook order (the cover lists them).
SHEETS: dict[str, str] = {
    "Cover": "what this run was, and the headlines",
    "Summary": "every metric by scenario, financial year, service and area (ALL = all areas)",
    "Shortfall": "FTE and cost a year short of what the target wait needs, by scenario, year, "
    "service and area",
    "Results all areas": "every metric by scenario, service and month, all areas together",
    "Waterfall": "what each scenario lever adds to referrals over the projection",
    "Queueing checks": "steady-state checks from queueing theory, first and last year",
    "Observed": "starting waiting lists as given by providers (small numbers suppressed)",
    "Assumptions": "every assumption the model used, with its source",
}
#: The sheet a report with providers' returns adds after Observed, and what it holds.
ACTUAL_SHEET = (
    "Actual vs model",
    "providers' returns against the model's 80% band, quarter by quarter (small numbers "
    "suppressed)",
)


@dataclass
class _Book:
    """The workbook and its cell formats, made once and shared by every sheet."""

    wb: Any
    formats: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def fmt(self, num_format: str | None = None, **props: Any) -> Any:
        key = str(num_format) if not props else repr((num_format, sorted(props.items())))
        if key not in self.formats:
            spec = dict(props)
            if num_format:
                spec["num_format"] = num_format
            self.formats[key] = self.wb.add_format(spec)
        return self.formats[key]


def _width(header: str, values: pd.Series) -> float:
    """Characters: numbers get room for a formatted value, text its longest sample."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_datetime64_any_dtype(values):
        return float(max(len(header) + 2, 12))
    longest = max([len(header), *(len(str(v)) for v in values)], default=8)
    return float(min(max(longest + 2, 8), 60))


def _cell(value: object) -> object:
    """A value xlsxwriter can write: None for missing, text for infinities."""
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _values(column: pd.Series) -> list[object]:
    if pd.api.types.is_float_dtype(column):
        x = column.to_numpy(np.float64)
        if np.isfinite(x).all():
            return list(x.tolist())
    elif pd.api.types.is_string_dtype(column) and not column.isna().any():
        return list(column.astype(object).tolist())
    return [_cell(v) for v in column.astype(object)]


def _table(
    book: _Book,
    name: str,
    frame: pd.DataFrame,
    *,
    column_formats: dict[str, str] | None = None,
    row_formats: Sequence[str | None] | None = None,
    row_columns: Sequence[str] = (),
    full_table: str | None = None,
) -> None:
    """One sheet: bold header, frozen, filtered; each cell formatted by its column or, for the
    columns in ``row_columns``, by its row (long tables, where the metric decides)."""
    ws = book.wb.add_worksheet(name)
    room = EXCEL_MAX_ROWS - 1
    if len(frame) > room:
        where = f" The full table is in {full_table}." if full_table else ""
        book.notes.append(
            f"The {name} sheet has the first {room:,} of {len(frame):,} rows (Excel's limit)."
            + where
        )
        frame = frame.iloc[:room]
        if row_formats is not None:
            row_formats = row_formats[:room]
    column_formats = column_formats or {}
    header = book.fmt(None, bold=True, bg_color="#DCE6F1", bottom=1, text_wrap=True)
    columns = [str(c) for c in frame.columns]
    ws.write_row(0, 0, columns, header)
    ws.set_row(0, 30)
    by_row = [j for j, c in enumerate(columns) if c in set(row_columns)]
    if by_row and by_row != list(range(by_row[0], by_row[-1] + 1)):
        raise ValueError(f"{name}: the columns formatted by row must be next to each other")
    sample = frame.head(2000)
    for j, col in enumerate(columns):
        ws.set_column(j, j, _width(col, sample[col]))
        if j in by_row:
            continue
        fmt = column_formats.get(col)
        ws.write_column(1, j, _values(frame[col]), book.fmt(fmt) if fmt else None)
    if by_row and row_formats is not None:
        block = zip(*(_values(frame[columns[j]]) for j in by_row), strict=True)
        for i, (values, rf) in enumerate(zip(block, row_formats, strict=True), start=1):
            ws.write_row(i, by_row[0], values, book.fmt(rf) if rf else None)
    ws.freeze_panes(1, 0)
    ws.autofilter(0, 0, max(len(frame), 1), len(columns) - 1)


def _with_area_names(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """``area_name`` right after ``area`` (ALL reads "All areas")."""
    out = frame.copy()
    lookup = {**names, ALL_AREAS: "All areas"}
    area = out["area"].astype(str)
    out.insert(list(out.columns).index("area") + 1, "area_name", area.map(lookup).fillna(area))
    return out


def _strings(frame: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    out = frame.copy()
    for c in columns:
        if c in out:
            out[c] = out[c].astype(str)
    return out


def _shortfall(summary: pd.DataFrame) -> pd.DataFrame:
    """FTE and cost shortfall side by side: scenario, year, service, area, then the ranges."""
    keys = ["scenario", "year", "service", "area"]
    parts = []
    for metric, label in (("fte_shortfall", "fte_short"), ("cost_shortfall", "cost_short")):
        part = summary.loc[summary["metric"] == metric, [*keys, "mean", "p10", "p90"]]
        parts.append(
            part.rename(columns={s: f"{label}_{s}" for s in ("mean", "p10", "p90")}).set_index(keys)
        )
    return parts[0].join(parts[1], how="outer").reset_index()


def _cover(ws: Any, book: _Book, inp: ReportInputs, n_results: int, n_all: int) -> None:
    man = inp.manifest
    ws.hide_gridlines(2)
    ws.set_column(0, 0, 26)
    ws.set_column(1, 1, 110)
    title = book.fmt(None, bold=True, font_size=18)
    bold = book.fmt(None, bold=True)
    wrap = book.fmt(None, text_wrap=True, valign="top")
    label = book.fmt(None, bold=True, valign="top")
    warn = book.fmt(None, bold=True, font_color="#9C0006", bg_color="#FFC7CE", text_wrap=True)
    given = man.get("scenarios")
    scenarios = [str(s) for s in given] if isinstance(given, list) and given else inp.scenarios
    ws.write(0, 0, f"needsled: {inp.model_name}", title)
    ws.write(
        1, 0, "Demand and capacity projection for victims' services. Ranges are 80% intervals."
    )
    rows: list[tuple[str, object]] = [
        ("Model", inp.model_name),
        ("Scenarios", ", ".join(scenarios)),
        ("Months", f"{man.get('first_month', '')} to {man.get('last_month', '')}"),
        ("Replicates", man.get("replicates", "")),
        ("Seed", man.get("seed", "")),
        ("needsled version", man.get("needsled_version", __version__)),
        ("Created", man.get("created", "")),
        ("Suppression", "on" if inp.suppressed else "OFF: internal use only, do not publish"),
        ("Crime forecast", man.get("forecast_method", "")),
        ("Command", man.get("command", "")),
        ("Workbook written", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
    ]
    r = 3
    for key, value in rows:
        ws.write(r, 0, key, label)
        ws.write(r, 1, _cell(value), warn if key == "Suppression" and not inp.suppressed else wrap)
        r += 1
    r += 1
    for sc in scenarios:
        ws.write(r, 0, f"Headline: {sc}", bold)
        r += 1
        for line in headline(inp, sc):
            ws.write(r, 1, line, wrap)
            ws.set_row(r, 32)
            r += 1
    r += 1
    ws.write(r, 0, "Sheets", bold)
    r += 1
    sheets = list(SHEETS.items())
    if inp.actual is not None:
        sheets.insert(list(SHEETS).index("Observed") + 1, ACTUAL_SHEET)
    for sheet, what in sheets:
        ws.write(r, 0, sheet)
        ws.write(r, 1, what, wrap)
        r += 1
    r += 1
    ws.write(r, 0, "Notes", bold)
    r += 1
    notes = [
        f"The Results all areas sheet has the {n_all:,} rows for all areas together; the full "
        f"results table ({n_results:,} rows, every area) is in results.csv and results.parquet "
        "in the same folder as this workbook.",
        "Model projections are estimates, rounded, not suppressed. Observed counts are "
        f"suppressed when small: {LEGEND}."
        if inp.suppressed
        else "Small-number suppression is OFF: the Observed sheet shows counts under 5. For "
        "internal use only; do not publish or share this workbook.",
        *(
            [
                f"The {ACTUAL_SHEET[0]} sheet sets providers' returns against scenario "
                f"{inp.actual_scenario or inp.scenarios[0]}: "
                + " ".join(inp.actual.summary[:1])
                + (
                    f" Its returned figures are suppressed: {LEGEND} (a {HIDDEN} is usually 5 "
                    "or more, but may be a small count); a hidden figure's flag is shown only "
                    "when every value its mark allows would get the same flag."
                    if inp.actual.suppressed
                    else " Its returned figures are NOT suppressed: internal use only."
                )
            ]
            if inp.actual is not None
            else []
        ),
        *book.notes,
    ]
    for note in notes:
        ws.write(r, 1, note, wrap)
        ws.set_row(r, 32)
        r += 1
    if inp.service_names:
        r += 1
        ws.write(r, 0, "Services", bold)
        r += 1
        for code, name in inp.service_names.items():
            ws.write(r, 0, code)
            ws.write(r, 1, name)
            r += 1
    ws.activate()


def write_excel(inp: ReportInputs, path: str | Path, *, total_rows: int | None = None) -> Path:
    """Write the workbook (through a temporary file, so no half-written workbook is left).

    ``total_rows`` is the length of the full results table when ``inp.results`` holds only
    the rows for all areas together (all the workbook shows); the cover says where the rest is.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_urls": False})
    book = _Book(wb)
    try:
        cover = wb.add_worksheet("Cover")  # first, but written last (it lists truncations)
        summary = _with_area_names(
            _strings(inp.summary, ["scenario", "year", "service", "area", "metric"]),
            inp.area_names,
        )
        _table(
            book,
            "Summary",
            summary,
            row_formats=[METRIC_FORMATS.get(m) for m in summary["metric"]],
            row_columns=STATS,
            full_table="summary.csv",
        )
        short = _with_area_names(_shortfall(summary.drop(columns="area_name")), inp.area_names)
        _table(
            book,
            "Shortfall",
            short,
            column_formats={
                **{f"fte_short_{s}": ONE_DP for s in ("mean", "p10", "p90")},
                **{f"cost_short_{s}": MONEY for s in ("mean", "p10", "p90")},
            },
            full_table="summary.csv",
        )
        everywhere = inp.everywhere
        every = everywhere[["scenario", "service", "month", "metric", *STATS]].copy()
        every["month"] = pd.PeriodIndex(every["month"].astype(str), freq="M").to_timestamp()
        _table(
            book,
            "Results all areas",
            every.reset_index(drop=True),
            column_formats={"month": MONTH},
            row_formats=[METRIC_FORMATS.get(m) for m in every["metric"]],
            row_columns=STATS,
            full_table="results.csv",
        )
        _table(
            book,
            "Waterfall",
            _with_area_names(
                _strings(inp.waterfall, ["scenario", "area", "service", "lever", "label"]),
                inp.area_names,
            ),
            column_formats={"referrals": COUNT},
            full_table="waterfall.csv",
        )
        _table(
            book,
            "Queueing checks",
            _with_area_names(
                _strings(inp.queueing, ["scenario", "year", "area", "service", "statement"]),
                inp.area_names,
            ),
            column_formats=QUEUE_FORMATS,
            full_table="queueing.csv",
        )
        observed = inp.observed.astype(str).rename_axis("area").reset_index()
        _table(book, "Observed", observed)
        book.wb.get_worksheet_by_name("Observed").ignore_errors(
            {"number_stored_as_text": "A1:XFD1048576"}
        )
        if inp.actual is not None:
            actual = inp.actual.table.astype({"actual": str, "flag": str})
            _table(
                book,
                ACTUAL_SHEET[0],
                actual,
                column_formats=dict.fromkeys(
                    ("model_mean", "model_p10", "model_p50", "model_p90"), ONE_DP
                ),
            )
            book.wb.get_worksheet_by_name(ACTUAL_SHEET[0]).ignore_errors(
                {"number_stored_as_text": "A1:XFD1048576"}
            )
        _table(book, "Assumptions", inp.assumptions.astype(str))
        n_results = len(inp.results) if total_rows is None else total_rows
        _cover(cover, book, inp, n_results, len(everywhere))
    finally:
        wb.close()
    os.replace(tmp, path)
    return path
