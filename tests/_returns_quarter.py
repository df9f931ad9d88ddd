"""One service and area's quarter of a provider return, and filling a return's workbook in as a
person would: shared by the returns tests (tests/test_returns_io.py) and the web tests
(tests/web/web_returns.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from needsled.returns.format import MEASURES

# One service and area's quarter, consistent with every rule of the format (by hand: referrals
# 7+3+2 = 12 = 6+4+2 by offence; waiting 9 = 3+2+2+1+1; starts 8 = 2+3+1+1+1 = each group's
# breakdown; improved <= need category by category; better 5 <= assessed 7 = 5+1+1 by sex).
BASE: dict[str, list[float]] = {
    "referrals": [7, 3, 2],
    "referrals_offence": [6, 4, 2],
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
    "outcome_assessed_sex": [5, 1, 1],
    "outcome_better_sex": [4, 1, 0],
}


def rows_by_key(ws: Any) -> dict[tuple[str, str], int]:
    """Row number of each (measure, category) entry of a return's sheet, found by the sheet's
    hidden codes."""
    out = {}
    for row in range(1, ws.max_row + 1):
        measure = ws.cell(row, 5).value
        if measure in MEASURES:
            out[measure, ws.cell(row, 6).value or ""] = row
    return out


def fill(source: Path, target: Path, sheets: dict[str, dict[tuple[str, str], Any]]) -> Path:
    """Type values into column C of each named sheet's entry rows, as a person would, and
    save a copy."""
    book = openpyxl.load_workbook(source)
    for name, values in sheets.items():
        ws = book[name]
        where = rows_by_key(ws)
        for key, value in values.items():
            ws.cell(where[key], 3).value = value
    book.save(target)
    return target
