"""Filled-in provider returns for the web tests: the Excel return that
``needsled.returns.template`` makes, filled in with openpyxl as a person would (synthetic
counts that keep every rule of the format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from needsled.io.load import load_model
from needsled.returns.format import MEASURES, categories_of
from needsled.returns.template import write_return_template

# One service and area's quarter (as tests/test_returns_io.py's BASE, with the offence
# breakdown spread over whatever offences the model has): referrals 7+3+2 = 12; waiting
# 9 = 3+2+2+1+1; starts 8 = each breakdown's sum; improved <= need; better 5 <= assessed 7.
BASE: dict[str, list[float]] = {
    "referrals": [7, 3, 2],
    "rereferred": [1],
    "contacted": [10],
    "declined": [2],
    "waiting_end": [9],
    "waiting_band": [3, 2, 2, 1, 1],
    "left_waiting_list": [1],
    "starts": [8],
    "starts_wait": [2, 3, 1, 1, 1],
    "open_end": [30],
    "closures": [5, 2, 1],
    "reengaged": [1],
    "fte_in_post": [2.5],
    "fte_vacant": [0.5],
    "outcome_assessed": [7],
    "outcome_better": [5],
    "outcome_need": [5, 2, 1, 0, 1, 3, 2, 1],
    "outcome_improved": [4, 1, 1, 0, 0, 2, 2, 0],
    "satisfaction": [4, 1, 0],
    "users_sex": [6, 1, 1],
    "users_age": [1, 2, 2, 1, 1, 0, 0, 1],
    "users_ethnicity": [2, 2, 1, 2, 1, 0],
    "users_disability": [2, 5, 1],
    "users_sexuality": [5, 1, 1, 0, 1],
}


def counts(offences: tuple[str, ...], scale: int = 1) -> dict[tuple[str, str], float]:
    """A consistent return: BASE times ``scale``, referrals by offence adding up to 12."""
    spread = [12.0 - (len(offences) - 1), *([1.0] * (len(offences) - 1))]
    values = dict(BASE) | {"referrals_offence": spread}
    return {
        (m, c): v * scale
        for m, vs in values.items()
        for c, v in zip(categories_of(m, offences), vs, strict=True)
    }


def rows_by_key(ws: Any) -> dict[tuple[str, str], int]:
    """Row number of each (measure, category) entry, found by the sheet's hidden codes."""
    out = {}
    for row in range(1, ws.max_row + 1):
        measure = ws.cell(row, 5).value
        if measure in MEASURES:
            out[measure, ws.cell(row, 6).value or ""] = row
    return out


def fill(source: Path, target: Path, values: dict[str, dict[tuple[str, str], Any]]) -> Path:
    """Type values into column C of each named sheet's entry rows, and save a copy."""
    book = openpyxl.load_workbook(source)
    for name, cells in values.items():
        ws = book[name]
        where = rows_by_key(ws)
        for key, value in cells.items():
            ws.cell(where[key], 3).value = value
    book.save(target)
    return target


def data_sheets(path: Path) -> list[str]:
    return [
        n for n in openpyxl.load_workbook(path, read_only=True).sheetnames if n != "instructions"
    ]


def filled_return(
    model_dir: Path,
    code: str,
    quarter: str,
    folder: Path,
    *,
    scale: int = 1,
    change: dict[str, dict[tuple[str, str], Any]] | None = None,
) -> Path:
    """The provider's return for the quarter, every sheet filled in with :func:`counts`
    (``change``: values to type over, by sheet)."""
    model = load_model(model_dir)
    folder.mkdir(parents=True, exist_ok=True)
    blank = write_return_template(model, code, quarter, folder / f"{code}-{quarter}-blank.xlsx")
    values = {name: counts(model.offence_codes, scale) for name in data_sheets(blank)}
    for name, cells in (change or {}).items():
        values[name] = values[name] | cells
    return fill(blank, folder / f"{code}-{quarter}.xlsx", values)


def stored_counts(model_dir: Path, scale: int = 1) -> list[list[Any]]:
    """What the store holds for one filled-in sheet: ``[measure, category, value]`` rows."""
    model = load_model(model_dir)
    return [[m, c, float(v)] for (m, c), v in sorted(counts(model.offence_codes, scale).items())]
