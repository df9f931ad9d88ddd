"""Check returns as typed and turn them into the tidy table (pure: no file is read here).

A return sheet arrives as a :class:`Sheet`: its identifying cells and its entry cells, each
with the value as the spreadsheet holds it. :func:`check_sheets` finds every problem in every
sheet at once (values, breakdowns, identity, duplicates) and returns the tidy
:data:`~needsled.returns.format.COLUMNS` table only when there is none.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from needsled.errors import Problem
from needsled.returns.format import (
    COLUMNS,
    MEASURES,
    categories_of,
    is_quarter,
    quarter_end,
    quarter_label,
)
from needsled.returns.layout import IDENT_KEYS
from needsled.returns.providers import Provider

__all__ = ["Entry", "Sheet", "check_sheets", "record_level_reason"]

COUNT_FIX = (
    "enter a whole number of people or cases (0 or more), or leave the cell blank if you do "
    "not record it"
)
FTE_FIX = "enter full-time equivalents as a number of 0 or more (decimals allowed, e.g. 2.5)"


@dataclass(frozen=True)
class Entry:
    """One entry cell: which count it is, where it is and what it holds (``None`` = blank)."""

    measure: str
    category: str
    cell: str
    raw: object


@dataclass(frozen=True)
class Sheet:
    file: str
    sheet: str
    ident: Mapping[str, tuple[str, str]]  # provider/service/area/quarter -> (text, cell)
    entries: tuple[Entry, ...]
    # Cells holding something outside the return's own cells (typed after unprotecting the
    # sheet): a return holds only the counts in its entry cells.
    stray: tuple[str, ...] = ()


def _what(measure: str, category: str) -> str:
    m = MEASURES[measure]
    return f"{m.label} ({measure}{', ' + category if category else ''})"


# A number typed as text: digits, an optional decimal point, and commas only as thousands
# separators ("1,250"). "2,5" (a decimal comma) is refused, not read as 25.
_NUMBER_TEXT = re.compile(r"^[+-]?([0-9]+|[0-9]{1,3}(,[0-9]{3})+)(\.[0-9]+)?$")


def _number(raw: object) -> float | str:
    """The cell's number, or why it is not one."""
    if isinstance(raw, bool):
        return "is TRUE/FALSE, not a number"
    if isinstance(raw, dt.date | dt.datetime | dt.time | dt.timedelta):
        return "is a date or time, not a number (Excel may have turned what was typed into a date)"
    if isinstance(raw, int | float):
        return float(raw)
    text = str(raw).strip()
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]{1,2}", text):
        return "is not a number (a comma is not a decimal point here: write 2.5, not 2,5)"
    if not _NUMBER_TEXT.match(text):
        return "is not a number"
    return float(text.replace(",", ""))


def _value_problem(sheet: Sheet, e: Entry) -> tuple[float | None, Problem | None]:
    kind = MEASURES[e.measure].kind
    number = _number(e.raw)
    fix = FTE_FIX if kind == "fte" else COUNT_FIX
    message = None
    if isinstance(number, str):
        message = number
    elif number != number or number in (float("inf"), float("-inf")):
        message = "is not a number"
    elif number < 0:
        message = "is negative" if kind == "fte" else "is a negative count"
    elif kind != "fte" and not number.is_integer():
        message = "is a count with a decimal part; counts are whole numbers"
    if message is None:
        return float(number), None
    return None, Problem(
        file=sheet.file,
        sheet=sheet.sheet,
        cell=e.cell,
        value=_fmt(e.raw) if isinstance(e.raw, float) else str(e.raw),
        message=f"{_what(e.measure, e.category)} {message}",
        fix=fix,
    )


@dataclass
class _Values:
    """The valid numbers of one sheet, by measure and category."""

    numbers: dict[tuple[str, str], float]
    cells: dict[tuple[str, str], str]
    typed: set[tuple[str, str]]
    bad: set[str]  # measures with a cell that is not a valid number
    offences: tuple[str, ...]

    def complete(self, measure: str) -> bool:
        return measure not in self.bad and all(
            (measure, c) in self.numbers for c in categories_of(measure, self.offences)
        )

    def total(self, measure: str) -> float | None:
        if not self.complete(measure):
            return None
        return sum(self.numbers[measure, c] for c in categories_of(measure, self.offences))

    def span(self, measure: str) -> str:
        cells = [self.cells[measure, c] for c in categories_of(measure, self.offences)]
        return cells[0] if len(cells) == 1 else f"{cells[0]}:{cells[-1]}"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _breakdown_problems(sheet: Sheet, v: _Values) -> list[Problem]:
    out: list[Problem] = []

    def add(cell: str, message: str, fix: str, value: str | None = None) -> None:
        out.append(Problem(sheet.file, message, fix, sheet.sheet, cell=cell, value=value))

    for name, m in MEASURES.items():
        cats = categories_of(name, v.offences)
        typed = [c for c in cats if (name, c) in v.typed]
        if typed and len(typed) < len(cats):
            blank = [v.cells[name, c] for c in cats if (name, c) not in v.typed]
            add(
                v.span(name),
                f"{m.label} ({name}) is filled in for {len(typed)} of its {len(cats)} categories; "
                f"blank: {', '.join(blank)}",
                "fill in every category of a breakdown (0 where there were none), or leave the "
                "whole breakdown blank",
            )
            continue
        if not v.complete(name):
            continue
        total = v.total(name)
        assert total is not None
        if m.sums_to:
            target = v.total(m.sums_to)
            label = MEASURES[m.sums_to].label
            if target is None and m.sums_to not in v.bad:
                add(
                    v.span(m.sums_to),
                    f"{m.label} ({name}) is given but {label} ({m.sums_to}), which it adds up "
                    "to, is blank",
                    f"fill in {label} as well",
                )
            elif target is not None and total != target:
                add(
                    v.span(name),
                    f"{m.label} ({name}) adds up to {_fmt(total)} but {label} ({m.sums_to}, "
                    f"{v.span(m.sums_to)}) is {_fmt(target)}",
                    "correct the breakdown or the total so that they agree",
                    _fmt(total),
                )
        if m.share_of:
            of = MEASURES[m.share_of]
            if not any((m.share_of, c) in v.typed for c in cats):
                add(
                    v.span(m.share_of),
                    f"{m.label} ({name}) is given but {of.label} ({m.share_of}) is blank",
                    f"fill in {of.label} as well: {m.label.lower()} counts some of them",
                )
            elif v.complete(m.share_of):
                for c in cats:
                    if v.numbers[name, c] > v.numbers[m.share_of, c]:
                        add(
                            v.cells[name, c],
                            f"{_what(name, c)} is more than {_what(m.share_of, c)} "
                            f"({v.cells[m.share_of, c]}: {_fmt(v.numbers[m.share_of, c])})",
                            f"it counts some of those in {v.cells[m.share_of, c]}, so it can be "
                            "at most that: correct one of them",
                            _fmt(v.numbers[name, c]),
                        )
        for bound in m.at_most:
            limit = v.total(bound)
            if limit is None:
                if not any((bound, c) in v.typed for c in categories_of(bound, v.offences)):
                    of = MEASURES[bound]
                    add(
                        v.span(bound),
                        f"{m.label} ({name}) is given but {of.label} ({bound}) is blank",
                        f"fill in {of.label} as well: {m.label.lower()} counts some of them, "
                        "so it is checked against it",
                    )
                continue
            for c in cats:
                if v.numbers[name, c] > limit:
                    add(
                        v.cells[name, c],
                        f"{_what(name, c)} is more than {MEASURES[bound].label} ({bound}, "
                        f"{v.span(bound)}: {_fmt(limit)})",
                        "it counts some of those, so it can be at most that: correct one of them",
                        _fmt(v.numbers[name, c]),
                    )
    return out


def _sheet_values(sheet: Sheet, offences: tuple[str, ...]) -> tuple[_Values, list[Problem]]:
    problems: list[Problem] = []
    v = _Values({}, {}, set(), set(), offences)
    for e in sheet.entries:
        key = (e.measure, e.category)
        v.cells[key] = e.cell
        if e.raw is None or (isinstance(e.raw, str) and not e.raw.strip()):
            continue
        v.typed.add(key)
        number, problem = _value_problem(sheet, e)
        if problem:
            problems.append(problem)
            v.bad.add(e.measure)
        else:
            assert number is not None
            v.numbers[key] = number
    return v, problems


def _layout_problems(sheet: Sheet, offences: tuple[str, ...]) -> list[Problem]:
    """Entry rows that are missing, doubled or unknown (a sheet edited after unprotecting)."""
    expected = {(m, c) for m in MEASURES for c in categories_of(m, offences)}
    seen: set[tuple[str, str]] = set()
    bad: list[str] = []
    for e in sheet.entries:
        if (e.measure, e.category) not in expected or (e.measure, e.category) in seen:
            bad.append(f"{e.cell} ({e.measure}, {e.category or 'no breakdown'})")
        seen.add((e.measure, e.category))
    missing = sorted(expected - seen)
    if not bad and not missing:
        return []
    parts = []
    if bad:
        parts.append(f"unexpected or repeated rows: {', '.join(bad)}")
    if missing:
        parts.append(
            f"missing rows: {', '.join(f'{m} {c}'.strip() for m, c in missing[:8])}"
            + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        )
    return [
        Problem(
            sheet.file,
            "the sheet's rows are not those of a needsled return for this model ("
            + "; ".join(parts)
            + ")",
            "fill in a fresh return from 'needsled returns template' for this model; do not "
            "insert, delete or move rows",
            sheet.sheet,
        )
    ]


def _ident_problems(
    sheet: Sheet,
    providers: Mapping[str, Provider],
    services: Sequence[str],
    areas: Sequence[str],
    today: dt.date,
) -> list[Problem]:
    out: list[Problem] = []

    def add(key: str, message: str, fix: str) -> None:
        text, where = sheet.ident.get(key, ("", ""))
        out.append(Problem(sheet.file, message, fix, sheet.sheet, cell=where or None, value=text))

    for key in IDENT_KEYS:
        if not sheet.ident.get(key, ("", ""))[0]:
            add(
                key,
                f"the {key} is blank",
                f"use a return from 'needsled returns template', which fills in the {key}",
            )
    prov, service, area, quarter = (sheet.ident.get(k, ("", ""))[0] for k in IDENT_KEYS)
    if prov and prov not in providers:
        add(
            "provider",
            f"no provider {prov!r} in the model's directory table (its providers: "
            f"{', '.join(providers) or 'none'})",
            "check the provider code, or add the provider to the directory table",
        )
    if service and service not in services:
        add(
            "service",
            f"no service {service!r} in the model (its services: {', '.join(services)})",
            "check the service code, or import into the model the return was made for",
        )
    if area and area not in areas:
        add(
            "area",
            f"no area {area!r} in the model's areas table",
            "check the area code, or import into the model the return was made for",
        )
    if (
        prov in providers
        and service in services
        and area in areas
        and not providers[prov].delivers(service, area)
    ):
        add(
            "area",
            f"the directory table does not list {prov} as delivering {service} in {area}",
            f"check the service and area; if {prov} does deliver it, add the area to "
            f"{prov}'s {service} row of the directory table (areas column)",
        )
    if quarter and not is_quarter(quarter):
        add(
            "quarter",
            "is not a calendar quarter",
            "the quarter is written YYYY-Qn with n from "
            "1 to 4, e.g. 2025-Q2: use a return from 'needsled returns template'",
        )
    elif quarter and quarter_end(quarter) >= today:
        add(
            "quarter",
            f"{quarter} ({quarter_label(quarter)}) has not ended yet: returns are "
            f"for finished quarters (it ends on {quarter_end(quarter):%d %B %Y})",
            "import the return after the quarter has ended, or check the quarter",
        )
    return out


def _tidy(sheet: Sheet, v: _Values) -> list[tuple[str, str, str, str, str, str, float]]:
    prov, service, area, quarter = (sheet.ident[k][0] for k in IDENT_KEYS)
    return [(prov, service, area, quarter, m, c, x) for (m, c), x in v.numbers.items()]


def check_sheets(
    sheets: Sequence[Sheet],
    providers: Mapping[str, Provider],
    services: Sequence[str],
    areas: Sequence[str],
    offences: tuple[str, ...],
    today: dt.date,
) -> tuple[pd.DataFrame, list[Problem]]:
    """Every problem in every sheet, and the tidy table of what they hold.

    A quarter is accepted once it has ended (its last day is before ``today``). Duplicates are
    two sheets for the same provider, service, area and quarter, in one file or across files.
    """
    problems: list[Problem] = []
    rows: list[tuple[str, str, str, str, str, str, float]] = []
    first: dict[tuple[str, ...], Sheet] = {}
    for sheet in sheets:
        found = _layout_problems(sheet, offences)
        found += _ident_problems(sheet, providers, services, areas, today)
        values, value_problems = _sheet_values(sheet, offences)
        found += value_problems + _breakdown_problems(sheet, values)
        if sheet.stray:
            shown = ", ".join(sheet.stray[:8]) + (
                f" and {len(sheet.stray) - 8} more" if len(sheet.stray) > 8 else ""
            )
            found.append(
                Problem(
                    sheet.file,
                    f"something is typed outside the return's cells ({shown}); a return holds "
                    "only the counts in its yellow cells",
                    "delete what is in those cells (never anything about one person) and type "
                    "each count into its yellow cell",
                    sheet.sheet,
                )
            )
        if not values.typed and not value_problems:
            found.append(
                Problem(
                    sheet.file,
                    "the return is empty: no count is filled in",
                    "fill in the yellow cells (0 where there were none); a sheet for a service "
                    "and area with no activity in the quarter still needs its zeros",
                    sheet.sheet,
                )
            )
        key = tuple(sheet.ident.get(k, ("", ""))[0] for k in IDENT_KEYS)
        if all(key) and key in first:
            earlier = first[key]
            found.append(
                Problem(
                    sheet.file,
                    f"a second return for provider {key[0]}, service {key[1]}, area {key[2]}, "
                    f"quarter {key[3]} (the first is in {earlier.file}, sheet {earlier.sheet})",
                    "import one return for each provider, service, area and quarter: leave one "
                    "of the two out",
                    sheet.sheet,
                )
            )
        first.setdefault(key, sheet)
        problems += found
        if not found:
            rows += _tidy(sheet, values)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.astype(dict.fromkeys(COLUMNS[:-1], object) | {"value": "float64"}), problems


# Column headings that mean a sheet holds data about individual people.
_PERSONAL = re.compile(
    r"^(name|names|first ?names?|forenames?|surname|last ?name|family name|full name|client "
    r"name|service user name|victim name|initials|date of birth|dob|d o b|birth ?date|age at "
    r"referral|post ?code|address|address line [0-9]|street|nhs ?(number|no)?|nhs"
    r"|national insurance( number)?|ni (number|no)|(tele)?phone( number)?|mobile( number)?|e ?mail"
    r"( address)?|crime ref(erence)?( number| no)?|urn|client (id|number|ref(erence)?)|person "
    r"id|case (number|ref(erence)?)|referral date|date of referral|gender|sex|ethnicity)$"
)


def _norm(value: object) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9]+", " ", str(value).lower())).strip()


def record_level_reason(rows: Sequence[Sequence[object]]) -> str | None:
    """Why a sheet looks like record-level data (about individual people), or ``None``.

    Headings such as name, date of birth, postcode or NHS number in its first rows, or a
    column of dates down many rows (one row per person or case).
    """
    for row in rows[:10]:
        hits = [str(c).strip() for c in row if _PERSONAL.match(_norm(c))]
        if hits and (
            len(hits) >= 2 or any(_norm(h) not in ("gender", "sex", "ethnicity") for h in hits)
        ):
            return "it has columns about individual people (" + ", ".join(hits) + ")"
    filled = [r for r in rows if sum(1 for c in r if c not in (None, "")) >= 2]
    if len(filled) >= 20:
        width = max(len(r) for r in filled)
        for j in range(width):
            dates = sum(1 for r in filled if j < len(r) and isinstance(r[j], dt.date))
            if dates >= 0.8 * (len(filled) - 1):
                return (
                    f"it has {len(filled)} rows with a date in each, like one row per person or "
                    "case"
                )
    return None
