"""The blank input workbook, generated from the schema: an instructions sheet, one sheet per
table with its columns, notes on every header, dropdowns for allowed values and ranges for
numbers."""

from __future__ import annotations

import csv
import shutil
import tempfile
from pathlib import Path

import xlsxwriter

from needsled.schema import OPTIONAL_TABLES, Column, tables

__all__ = ["write_template"]

# Checks cover every row a sheet can have (a crime table easily runs past 5,000 rows: the
# built-in example has 6,912).
LAST_ROW = 1_048_575

INSTRUCTIONS = [
    "How to fill in this workbook",
    "",
    "1. Each sheet is one table. Keep the header row (row 1) as it is; one row per record below.",
    "2. Hover over a header to see what the column means, its unit and what is allowed.",
    "3. Columns ending _lo and _hi are optional 80% intervals: give both or neither.",
    "4. Leave an optional cell blank to use the default shown in the 'columns' sheet.",
    "5. Counts only: never enter names, dates of birth or anything about one person.",
    "6. Optional tables (marked so in the 'columns' sheet) may be left with just the header.",
    "7. Put scenarios in a file scenarios.yaml beside this workbook (see the needsled docs).",
    "8. Check the workbook with:  needsled validate model.xlsx",
    "   Every problem is listed at once, with its sheet and cell, and how to fix it.",
    "9. Then run it with:  needsled run model.xlsx --out results",
]


def _validation(col: Column) -> dict[str, object] | None:
    if col.allowed:
        return {"validate": "list", "source": list(col.allowed)}
    if col.type in ("share", "float", "int"):
        low = 0.0 if col.type == "share" else (col.min if col.min is not None else -1e300)
        high = 1.0 if col.type == "share" else (col.max if col.max is not None else 1e300)
        return {
            "validate": "integer" if col.type == "int" else "decimal",
            "criteria": "between",
            "minimum": low,
            "maximum": high,
            "error_title": f"{col.name}",
            "error_message": f"Enter {col.rule()}",
        }
    return None


def _example_rows(folder: Path, table: str, columns: tuple[str, ...]) -> list[list[object]]:
    """The example model's rows for one table, in the template's column order, numbers as
    numbers (so the workbook holds what a person would type)."""
    if not (folder / f"{table}.csv").is_file():  # an optional table the example leaves out
        return []
    with (folder / f"{table}.csv").open(encoding="utf-8", newline="") as fh:
        records = list(csv.DictReader(fh))
    out: list[list[object]] = []
    for rec in records:
        row: list[object] = []
        for name in columns:
            text = rec.get(name, "") or ""
            try:
                row.append(float(text) if text and name != "month" else text)
            except ValueError:
                row.append(text)
        out.append(row)
    return out


def write_template(path: str | Path, *, example: bool = False) -> Path:
    """Write the input workbook to ``path`` (refuses to overwrite an existing file).

    Blank by default; with ``example=True`` every sheet is filled in with the built-in
    London-like example, to show what a finished workbook looks like (and its scenarios.yaml
    is written beside it).
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(
            f"{path} already exists; choose a new file name so that no file of yours is overwritten"
        )
    filled = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if example:
        from needsled.example import write_example

        scenarios = path.with_name("scenarios.yaml")
        if scenarios.exists():
            raise FileExistsError(
                f"{scenarios} already exists; write the example workbook into a new folder so "
                "that no file of yours is overwritten"
            )
        tmp = tempfile.TemporaryDirectory(prefix="needsled-example-")
        filled = write_example(Path(tmp.name))
        shutil.copyfile(filled / "scenarios.yaml", scenarios)
    book = xlsxwriter.Workbook(str(path))
    bold = book.add_format({"bold": True, "font_size": 14})
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    opt = book.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    sheet = book.add_worksheet("instructions")
    sheet.set_column(0, 0, 110)
    for i, line in enumerate(INSTRUCTIONS):
        sheet.write(i, 0, line, bold if i == 0 else None)
    ref = book.add_worksheet("columns")
    ref_cols = [
        "table",
        "column",
        "required",
        "default",
        "allowed",
        "unit",
        "80% interval",
        "meaning",
    ]
    for j, name in enumerate(ref_cols):
        ref.write(0, j, name, head)
    ref.set_column(0, 2, 16)
    ref.set_column(3, 6, 18)
    ref.set_column(7, 7, 90, wrap)
    row = 1
    for table in tables().values():
        ws = book.add_worksheet(table.name)
        ws.freeze_panes(1, 0)
        for j, name in enumerate(table.all_names()):
            col = table.column(name.removesuffix("_lo").removesuffix("_hi"))
            is_main = name == col.name
            ws.write(0, j, name, head if col.required and is_main else opt)
            ws.set_column(j, j, max(12, len(name) + 2))
            note = (
                f"{col.description}. Allowed: {col.rule()}."
                + (f" Unit: {col.unit}." if col.unit else "")
                + (f" Default: {col.default}." if col.default and is_main else "")
                + (" Required." if col.required and is_main else "")
            )
            if not is_main:
                note = f"Optional 80% interval for {col.name} ({name[-2:]} end)."
            ws.write_comment(0, j, note, {"x_scale": 3, "y_scale": 2})
            rule = _validation(col)
            if rule:
                ws.data_validation(1, j, LAST_ROW, j, rule)
        if filled is not None:
            for i, values in enumerate(_example_rows(filled, table.name, table.all_names())):
                ws.write_row(i + 1, 0, values)
        for col in table.columns:
            ref.write_row(
                row,
                0,
                [
                    table.name + (" (optional)" if table.name in OPTIONAL_TABLES else ""),
                    col.name,
                    "yes" if col.required else "no",
                    col.default,
                    col.rule(),
                    col.unit,
                    "yes" if col.interval else "",
                    col.description,
                ],
            )
            row += 1
    book.close()
    if tmp is not None:
        tmp.cleanup()
    return path
