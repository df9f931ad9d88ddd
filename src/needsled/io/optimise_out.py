"""Write an optimiser run: the plan, what binds, the marginal curve and the robustness check,
as CSV files, one formatted workbook and a short summary (the edge: files only)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from needsled import __version__

__all__ = ["write_plan"]


def write_plan(
    out: Path,
    *,
    headline: list[str],
    tables: dict[str, pd.DataFrame],
    settings: dict[str, object],
    provenance: dict[str, str],
    command: str,
) -> dict[str, Path]:
    """Write every table as CSV, all of them in ``plan.xlsx``, ``summary.md`` and a manifest.

    The folder is created if needed; files already in it with the same names are replaced,
    nothing else is touched.
    """
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, frame in tables.items():
        path = out / f"{name}.csv"
        frame.to_csv(path, index=False)
        written[name] = path
    book = out / "plan.xlsx"
    cover = [
        (
            "What this is",
            "The staffing plan that supports the most victims within the target "
            "wait, within the budget (needsled optimise)",
        ),
        *[("Headline" if i == 0 else "", line) for i, line in enumerate(headline)],
        *[(k, _text(v)) for k, v in settings.items()],
        ("needsled version", __version__),
        ("Command", command),
    ]
    write_tables_workbook(book, cover, tables)
    written["workbook"] = book
    summary = out / "summary.md"
    lines = ["# Staffing plan", "", *[f"- {line}" for line in headline], ""]
    if "binding" in tables and not tables["binding"].empty:
        lines += ["## What limits the plan", ""]
        lines += [f"- {s}" for s in tables["binding"]["statement"]]
        lines.append("")
    summary.write_text("\n".join(lines), encoding="utf-8")
    written["summary"] = summary
    manifest = out / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "kind": "optimise",
                "needsled_version": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": command,
                "settings": {k: _json(v) for k, v in settings.items()},
                "inputs": provenance,
                "files": sorted(p.name for p in written.values()),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    written["manifest"] = manifest
    return written


# Excel number formats by the start of a column's name
FORMATS = (
    ("fte", "0.0"),
    ("cost", "£#,##0"),
    ("budget", "£#,##0"),
    ("reach", "0.0"),
    ("chance", "0%"),
    ("within", "#,##0"),
    ("starts", "#,##0"),
    ("supported", "#,##0"),
    ("estimated", "#,##0"),
)


def write_tables_workbook(
    path: Path, cover: list[tuple[str, str]], tables: dict[str, pd.DataFrame]
) -> Path:
    """A cover sheet, then one sheet per table: bold frozen header, filters, number formats."""
    wb = xlsxwriter.Workbook(str(path), {"nan_inf_to_errors": True})
    bold = wb.add_format({"bold": True})
    head = wb.add_format({"bold": True, "bg_color": "#DCE6F1", "bottom": 1, "text_wrap": True})
    fmts = {f: wb.add_format({"num_format": f}) for _, f in FORMATS}
    ws = wb.add_worksheet("Cover")
    ws.set_column(0, 0, 24)
    ws.set_column(1, 1, 110, wb.add_format({"text_wrap": True, "valign": "top"}))
    for i, (k, v) in enumerate(cover):
        ws.write(i, 0, k, bold)
        ws.write(i, 1, v)
    for name, frame in tables.items():
        sh = wb.add_worksheet(name.replace("_", " ").capitalize()[:31])
        sh.write_row(0, 0, [str(c) for c in frame.columns], head)
        for j, col in enumerate(frame.columns):
            fmt = next((fmts[f] for key, f in FORMATS if str(col).startswith(key)), None)
            values = [
                None if isinstance(v, float) and not math.isfinite(v) else v
                for v in frame[col].astype(object).tolist()
            ]
            values = [v.item() if isinstance(v, np.generic) else v for v in values]
            sh.write_column(1, j, values, fmt)
            width = max([len(str(col)), *(len(str(v)) for v in values[:500])], default=8)
            sh.set_column(j, j, min(max(width + 2, 10), 70))
        sh.freeze_panes(1, 0)
        sh.autofilter(0, 0, max(len(frame), 1), max(len(frame.columns) - 1, 0))
    wb.close()
    return path


def _text(v: object) -> str:
    return f"{v:,.0f}" if isinstance(v, float) and v >= 1000 else str(v)


def _json(v: object) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
