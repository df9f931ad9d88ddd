"""Where everything sits on a return sheet: shared by the template writer and the reader.

One sheet per service and area. Rows 4 to 7 hold the provider, service, area and quarter
(locked); below them, section by section, one row per count: the measure's label in column A,
its category in B, the entry cell in C (the only cells a person types into) and a check in D
that warns when a breakdown does not add up. Hidden columns E and F hold each row's measure
code and category, which is what the reader goes by, so the labels can be reworded without
breaking old returns. Cell E1 holds :data:`MARKER`: a sheet without it is not a return.
"""

from __future__ import annotations

from dataclasses import dataclass

from needsled.errors import column_letter
from needsled.returns.format import GROUPS, MEASURES, categories_of

__all__ = [
    "CATEGORY_COL",
    "CHECK_COL",
    "FORMAT_VERSION",
    "IDENT_KEYS",
    "IDENT_ROWS",
    "KEY_COL",
    "MARKER",
    "SECTIONS",
    "VALUE_COL",
    "Line",
    "cell",
    "sheet_lines",
    "total_cells",
]

MARKER = "needsled provider return"
FORMAT_VERSION = "1"
VALUE_COL, CHECK_COL, KEY_COL, CATEGORY_COL = 2, 3, 4, 5  # C, D, E, F (0-based)
IDENT_KEYS = ("provider", "service", "area", "quarter")
IDENT_ROWS = {key: 3 + i for i, key in enumerate(IDENT_KEYS)}  # 0-based: rows 4 to 7
FIRST_ROW = 9  # 0-based row of the first section heading

SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Referrals",
        ("referrals", "referrals_offence", "rereferred", "contacted", "declined"),
    ),
    (
        "Waiting and starting support",
        ("waiting_end", "waiting_band", "left_waiting_list", "starts", "starts_wait"),
    ),
    ("Support and closures", ("open_end", "closures", "reengaged")),
    ("Staff", ("fte_in_post", "fte_vacant")),
    (
        "Cope and recover outcomes at closure",
        ("outcome_assessed", "outcome_better", "outcome_need", "outcome_improved"),
    ),
    ("Satisfaction", ("satisfaction",)),
    ("People who started support", tuple(f"users_{g}" for g in GROUPS)),
    (
        "Optional: cope and recover outcomes by group (leave blank if you do not record them)",
        tuple(m for g in GROUPS for m in (f"outcome_assessed_{g}", f"outcome_better_{g}")),
    ),
)


@dataclass(frozen=True)
class Line:
    """One row of a return sheet (``row`` is 0-based).

    ``kind``: ``section`` (a heading), ``header`` (column headings), ``entry`` (a count to
    type in), ``total`` (a breakdown's locked sum) or ``gap`` (an empty row).
    """

    row: int
    kind: str
    measure: str = ""
    category: str = ""
    label: str = ""


def cell(row: int, col: int) -> str:
    """Excel reference of a 0-based (row, column): (0, 2) -> 'C1'."""
    return f"{column_letter(col)}{row + 1}"


def sheet_lines(offences: tuple[str, ...]) -> list[Line]:
    """Every row of a return sheet below the identifying cells, in order."""
    lines: list[Line] = []
    row = FIRST_ROW
    for title, measures in SECTIONS:
        lines.append(Line(row, "section", label=title))
        lines.append(Line(row + 1, "header"))
        row += 2
        for name in measures:
            m = MEASURES[name]
            cats = categories_of(name, offences)
            for i, cat in enumerate(cats):
                lines.append(Line(row, "entry", name, cat, m.label if i == 0 else ""))
                row += 1
            if cats != ("",):
                lines.append(Line(row, "total", name))
                row += 1
        lines.append(Line(row, "gap"))
        row += 1
    return lines


def total_cells(lines: list[Line]) -> dict[str, str]:
    """The cell holding each measure's total: its total row, or its one entry row."""
    found: dict[str, str] = {}
    for line in lines:
        if line.kind == "total" or (line.kind == "entry" and line.category == ""):
            found[line.measure] = cell(line.row, VALUE_COL)
    return found
