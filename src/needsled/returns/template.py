"""Write the Excel return for one provider and quarter (xlsxwriter).

An instructions sheet, then one sheet per service and area the provider delivers (from the
model's directory table), laid out as :mod:`needsled.returns.layout` says. Every cell is locked
except the yellow entry cells; entry cells accept whole numbers of 0 or more (decimals of 0 or
more for FTE); the provider, service, area and quarter cells are locked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import xlsxwriter

from needsled.errors import InputError, Problem
from needsled.returns.format import GUIDANCE, MEASURES, OFFENCE, is_quarter, quarter_label
from needsled.returns.layout import (
    CATEGORY_COL,
    CHECK_COL,
    FORMAT_VERSION,
    IDENT_ROWS,
    KEY_COL,
    MARKER,
    SECTIONS,
    VALUE_COL,
    Line,
    cell,
    sheet_lines,
    total_cells,
)
from needsled.returns.providers import Provider, provider

if TYPE_CHECKING:
    from xlsxwriter.format import Format
    from xlsxwriter.worksheet import Worksheet

    from needsled.model import Model

__all__ = ["sheet_names", "write_return_template"]

KIND_WORDS = {
    "flow": "during the quarter",
    "stock": "on the last day of the quarter",
    "fte": "on the last day of the quarter (FTE)",
}
# Worksheet protection: people may select cells but not change locked ones, nor unhide the
# code columns or add sheets' rows and columns.
PROTECTION = {"select_locked_cells": True, "select_unlocked_cells": True}


def sheet_names(pairs: tuple[tuple[str, str], ...]) -> list[str]:
    """A sheet name for each (service, area): ``SERVICE AREA`` when it fits Excel's 31
    characters, else numbered."""
    names: list[str] = []
    for i, (service, area) in enumerate(pairs, start=1):
        name = re.sub(r"[\[\]:*?/\\']", "-", f"{service} {area}")
        if len(name) > 31 or name.lower() in {n.lower() for n in names} or name == "instructions":
            name = f"{i} {name}"[:31]
        names.append(name)
    return names


def _instructions(
    book: Any, ws: Worksheet, prov: Provider, quarter: str, sheets: list[str]
) -> None:
    title = book.add_format({"bold": True, "font_size": 14})
    bold = book.add_format({"bold": True})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    head = book.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    ws.set_column(0, 0, 44, wrap)
    ws.set_column(1, 1, 22, wrap)
    ws.set_column(2, 2, 34, wrap)
    ws.set_column(3, 3, 28, wrap)
    ws.set_column(4, 4, 80, wrap)
    lines = [
        f"Quarterly return: {prov.name} ({prov.code}), {quarter}",
        "",
        f"Quarter {quarter} is {quarter_label(quarter)}. Quarters are calendar quarters: Q1 is "
        "January to March, Q2 April to June, Q3 July to September, Q4 October to December.",
        "COUNTS ONLY. Enter numbers of people or cases, never names, initials, dates of birth, "
        "addresses, postcodes, NHS or crime reference numbers, or anything about one person. "
        "needsled refuses a file with record-level data.",
        f"There is one sheet for each service and area you deliver: {', '.join(sheets)}.",
        "Type only into the yellow cells; everything else is locked. Leave a cell blank if you do "
        "not record that count; enter 0 where there were none.",
        "Fill in a breakdown (such as referrals by offence) completely, or leave all of it blank. "
        "Where a breakdown adds up to a total, it must add up to it: the Check column says in "
        "red when it does not.",
        "Counts 'during the quarter' are what happened in its three months; counts 'at quarter "
        "end' are on its last day. Staff are in full-time equivalents (decimals, e.g. 2.5); every "
        "other cell is a whole number.",
        "The provider, service, area and quarter are filled in and locked. If any is wrong, ask "
        "your commissioner for a new return rather than changing it.",
        "Send the file back as it is. Your commissioner checks and imports it with "
        "'needsled returns import'; every problem is listed at once, by sheet and cell.",
        "",
    ]
    for i, text in enumerate(lines):
        ws.merge_range(i, 0, i, 4, text, title if i == 0 else wrap)
        if 1 < i < len(lines) - 1:
            ws.set_row(i, 32)
    row = len(lines)
    ws.write(row, 0, "What each count means", bold)
    row += 1
    for j, name in enumerate(("Count", "Code", "Breakdown", "When", "What to count")):
        ws.write(row, j, name, head)
    for _, measures in SECTIONS:
        for name in measures:
            m = MEASURES[name]
            row += 1
            cats = (
                "the model's offence groups"
                if m.categories == (OFFENCE,)
                else (", ".join(m.categories) or "(one number)")
            )
            ws.write_row(row, 0, [m.label, name, cats, KIND_WORDS[m.kind], GUIDANCE[name]], wrap)
    ws.protect("", PROTECTION)


def _formats(book: Any) -> dict[str, Format]:
    return {
        "title": book.add_format({"bold": True, "font_size": 14}),
        "note": book.add_format({"italic": True, "font_color": "#595959"}),
        "label": book.add_format({"bold": True}),
        "ident": book.add_format({"bold": True, "bg_color": "#E7E6E6", "border": 1}),
        "section": book.add_format({"bold": True, "font_size": 12, "bg_color": "#DDEBF7"}),
        "header": book.add_format({"bold": True, "bottom": 1}),
        "entry": book.add_format({"locked": False, "bg_color": "#FFF2CC", "border": 1}),
        "fte": book.add_format(
            {"locked": False, "bg_color": "#FFF2CC", "border": 1, "num_format": "0.0#"}
        ),
        "total": book.add_format({"bold": True, "bg_color": "#F2F2F2", "border": 1}),
        "check": book.add_format({"font_color": "#C00000", "italic": True}),
    }


def _checks(line: Line, rows: list[Line], totals: dict[str, str]) -> str | None:
    """The formula of a row's check cell: a warning in words, or blank when all is well."""
    m = MEASURES[line.measure]
    if line.kind == "total" and m.sums_to:
        block = [r.row for r in rows if r.kind == "entry" and r.measure == line.measure]
        span = f"{cell(block[0], VALUE_COL)}:{cell(block[-1], VALUE_COL)}"
        target = totals[m.sums_to]
        return (
            f'=IF(OR(COUNT({span})=0,NOT(ISNUMBER({target}))),"",IF(SUM({span})={target},"",'
            f'"Should add up to {MEASURES[m.sums_to].label} ("&{target}&" in {target})"))'
        )
    if line.kind == "entry" and m.share_of:
        mine = cell(line.row, VALUE_COL)
        other = next(
            r.row
            for r in rows
            if r.kind == "entry" and r.measure == m.share_of and r.category == line.category
        )
        theirs = cell(other, VALUE_COL)
        return (
            f"=IF(AND(ISNUMBER({mine}),ISNUMBER({theirs})),IF({mine}>{theirs},"
            f'"Should be at most "&{theirs}&" ({theirs})",""),"")'
        )
    return None


def _data_sheet(
    ws: Worksheet,
    fmt: dict[str, Format],
    ident: dict[str, tuple[str, str]],
    rows: list[Line],
    offence_names: dict[str, str],
) -> None:
    ws.set_column(0, 0, 58)
    ws.set_column(1, 1, 30)
    ws.set_column(2, 2, 14)
    ws.set_column(3, 3, 60)
    ws.set_column(KEY_COL, CATEGORY_COL, 18, None, {"hidden": True})
    ws.write(0, 0, "Quarterly return (counts only: never anything about one person)", fmt["title"])
    ws.write(0, KEY_COL, MARKER)
    ws.write(0, CATEGORY_COL, FORMAT_VERSION)
    ws.write(1, 0, "Type into the yellow cells. Blank = not recorded; 0 = none.", fmt["note"])
    for key, row in IDENT_ROWS.items():
        code, words = ident[key]
        ws.write(row, 0, key.capitalize(), fmt["label"])
        ws.write_string(row, VALUE_COL, code, fmt["ident"])
        ws.write(row, CHECK_COL, words)
        ws.write(row, KEY_COL, key)
    totals = total_cells(rows)
    for line in rows:
        if line.kind == "section":
            ws.merge_range(line.row, 0, line.row, CHECK_COL, line.label, fmt["section"])
        elif line.kind == "header":
            ws.write_row(line.row, 0, ["Count", "Breakdown", "Number", "Check"], fmt["header"])
        elif line.kind in ("entry", "total"):
            m = MEASURES[line.measure]
            ws.write(line.row, 0, line.label, fmt["label"] if line.label else None)
            if line.kind == "total":
                block = [r.row for r in rows if r.kind == "entry" and r.measure == line.measure]
                span = f"{cell(block[0], VALUE_COL)}:{cell(block[-1], VALUE_COL)}"
                ws.write(line.row, 1, "Total", fmt["label"])
                ws.write_formula(
                    line.row, VALUE_COL, f'=IF(COUNT({span})=0,"",SUM({span}))', fmt["total"], ""
                )
            else:
                shown = line.category
                if m.categories == (OFFENCE,):
                    shown = f"{offence_names.get(line.category, line.category)} ({line.category})"
                ws.write(line.row, 1, shown)
                ws.write_blank(
                    line.row, VALUE_COL, None, fmt["fte" if m.kind == "fte" else "entry"]
                )
                ws.data_validation(line.row, VALUE_COL, line.row, VALUE_COL, _rule(m.kind))
                ws.write(line.row, KEY_COL, line.measure)
                ws.write_string(line.row, CATEGORY_COL, line.category)
            formula = _checks(line, rows, totals)
            if formula:
                ws.write_formula(line.row, CHECK_COL, formula, fmt["check"], "")
    ws.freeze_panes(8, 0)
    ws.protect("", PROTECTION)


def _rule(kind: str) -> dict[str, object]:
    if kind == "fte":
        return {
            "validate": "decimal",
            "criteria": ">=",
            "value": 0,
            "error_title": "Full-time equivalents",
            "error_message": "Enter staff in full-time equivalents: a number of 0 or more "
            "(decimals allowed, e.g. 2.5).",
        }
    return {
        "validate": "integer",
        "criteria": ">=",
        "value": 0,
        "error_title": "A count",
        "error_message": "Enter a whole number of 0 or more (a count of people or cases), or "
        "leave the cell blank if you do not record it.",
    }


def write_return_template(model: Model, provider_code: str, quarter: str, path: str | Path) -> Path:
    """Write the return for ``provider_code`` and ``quarter`` (``YYYY-Qn``) to ``path``.

    Refuses to overwrite an existing file. Raises :class:`InputError` for a malformed quarter,
    a model with no directory table, or a provider not in it.
    """
    path = Path(path)
    if not is_quarter(quarter):
        raise InputError(
            [
                Problem(
                    file="--quarter",
                    value=quarter,
                    message="is not a calendar quarter",
                    fix="write it as YYYY-Qn with n from 1 to 4, e.g. 2025-Q2 for April to June "
                    "2025",
                )
            ],
            "the command",
        )
    prov = provider(model, provider_code)
    if path.exists():
        raise FileExistsError(
            f"{path} already exists; choose a new file name so that no file of yours is overwritten"
        )
    pairs = prov.pairs()
    names = sheet_names(pairs)
    service_names = dict(zip(model.services.codes, model.services.names, strict=True))
    area_names = dict(zip(model.area_codes, model.area_names, strict=True))
    offence_names = dict(zip(model.offence_codes, model.offence_names, strict=True))
    rows = sheet_lines(model.offence_codes)
    book = xlsxwriter.Workbook(str(path))
    try:
        _instructions(book, book.add_worksheet("instructions"), prov, quarter, names)
        fmt = _formats(book)
        for (service, area), name in zip(pairs, names, strict=True):
            ident = {
                "provider": (prov.code, prov.name),
                "service": (service, service_names[service]),
                "area": (area, area_names[area]),
                "quarter": (quarter, f"{quarter_label(quarter)} (calendar quarter)"),
            }
            _data_sheet(book.add_worksheet(name), fmt, ident, rows, offence_names)
    finally:
        book.close()
    return path
