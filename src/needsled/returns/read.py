"""Read filled-in returns (python-calamine): files are only ever opened for reading.

:func:`read_returns` reads every file given, finds every problem in all of them at once
(:mod:`needsled.returns.checks`), and raises :class:`~needsled.errors.InputError` listing them
all, or returns the tidy table and a record of each file for the imports log.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from needsled.errors import InputError, Problem
from needsled.io.read import file_sha256
from needsled.returns.checks import Entry, Sheet, check_sheets, record_level_reason
from needsled.returns.layout import CATEGORY_COL, IDENT_KEYS, KEY_COL, MARKER, VALUE_COL, cell
from needsled.returns.providers import providers

if TYPE_CHECKING:
    from needsled.model import Model

__all__ = ["Imported", "ImportedFile", "parse_sheet", "read_return", "read_returns"]

NOT_A_RETURN_FIX = (
    "fill in the Excel return made by 'needsled returns template MODEL --provider ID "
    "--quarter YYYY-Qn' and import that"
)
RECORD_LEVEL_FIX = (
    "needsled takes counts only, never records about individual people: do not import, send or "
    "keep copies of this file here; fill in the return from 'needsled returns template' with "
    "counts instead"
)


@dataclass(frozen=True)
class ImportedFile:
    """One file read: for the store's imports log."""

    file: str
    sha256: str
    providers: tuple[str, ...]
    quarters: tuple[str, ...]
    keys: tuple[tuple[str, str, str, str], ...]  # (provider, service, area, quarter) per sheet


@dataclass(frozen=True)
class Imported:
    frame: pd.DataFrame  # the tidy COLUMNS table
    files: tuple[ImportedFile, ...]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_sheet(file: str, name: str, rows: Sequence[Sequence[object]]) -> Sheet | None:
    """A return sheet's identifying cells and entry cells; ``None`` if it is not a return."""

    def at(r: int, c: int) -> object:
        return rows[r][c] if r < len(rows) and c < len(rows[r]) else None

    if _text(at(0, KEY_COL)) != MARKER:
        return None
    ident: dict[str, tuple[str, str]] = {}
    entries: list[Entry] = []
    last = 0
    for r, row in enumerate(rows):
        key = _text(at(r, KEY_COL))
        if r == 0 or not key:
            continue
        last = r
        raw = row[VALUE_COL] if len(row) > VALUE_COL else None
        if key in IDENT_KEYS:
            ident[key] = (_text(raw), cell(r, VALUE_COL))
        else:
            value = None if raw is None or raw == "" else raw
            entries.append(Entry(key, _text(at(r, CATEGORY_COL)), cell(r, VALUE_COL), value))
    # The template writes nothing right of its code columns, nor below the total row that
    # follows the last count: anything there was typed after unprotecting the sheet.
    stray = tuple(
        cell(r, c)
        for r, row in enumerate(rows)
        for c, x in enumerate(row)
        if (c > CATEGORY_COL or r > last + 1) and _text(x) != ""
    )
    return Sheet(file, name, ident, tuple(entries), stray)


def _csv_rows(path: Path) -> list[list[object]]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
        return [list(r) for _, r in zip(range(200), csv.reader(fh), strict=False)]


def _read_file(path: Path) -> tuple[list[Sheet], list[Problem]]:
    """The return sheets of one file, or why it is not a return."""
    file = str(path)
    if not path.is_file():
        return [], [Problem(file, "does not exist or is not a file", "give the path of a return")]
    if path.suffix.lower() in (".csv", ".txt", ".tsv"):
        reason = record_level_reason(_csv_rows(path))
        if reason:
            return [], [Problem(file, f"looks like record-level data: {reason}", RECORD_LEVEL_FIX)]
        return [], [Problem(file, "is a text file, not a needsled return", NOT_A_RETURN_FIX)]
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(file)
    except Exception as exc:  # calamine raises its own error types for unreadable files
        return [], [Problem(file, f"cannot be read as a workbook ({exc})", NOT_A_RETURN_FIX)]
    sheets: list[Sheet] = []
    problems: list[Problem] = []
    for name in book.sheet_names:
        rows = book.get_sheet_by_name(name).to_python(skip_empty_area=False)
        sheet = parse_sheet(file, name, rows)
        if sheet is not None:
            sheets.append(sheet)
            continue
        reason = record_level_reason(rows)
        if reason:
            problems.append(
                Problem(file, f"looks like record-level data: {reason}", RECORD_LEVEL_FIX, name)
            )
    if not sheets and not problems:
        problems.append(
            Problem(file, "is not a needsled return (no sheet of it is a return)", NOT_A_RETURN_FIX)
        )
    return sheets, problems


def read_returns(
    paths: Sequence[str | Path], model: Model, *, today: dt.date | None = None
) -> Imported:
    """Read and check every return in ``paths`` against ``model`` (its directory table says
    which provider delivers which service where).

    Raises :class:`InputError` with every problem in every file; nothing is returned unless
    all of them are clean. ``today`` (default: today) decides which quarters have ended.
    """
    known = providers(model, "the model the returns are imported into")
    sheets: list[Sheet] = []
    problems: list[Problem] = []
    for path in paths:
        found, trouble = _read_file(Path(path))
        sheets += found
        problems += trouble
    frame, more = check_sheets(
        sheets,
        known,
        model.services.codes,
        model.area_codes,
        model.offence_codes,
        today or dt.date.today(),
    )
    problems += more
    if problems:
        what = f"{len(paths)} return file{'s' if len(paths) != 1 else ''}"
        raise InputError(problems, what)
    files = []
    for path in paths:
        ids = [s for s in sheets if s.file == str(path)]
        files.append(
            ImportedFile(
                str(path),
                file_sha256(Path(path)),
                tuple(sorted({s.ident["provider"][0] for s in ids})),
                tuple(sorted({s.ident["quarter"][0] for s in ids})),
                tuple(tuple(s.ident[k][0] for k in IDENT_KEYS) for s in ids),  # type: ignore[misc]
            )
        )
    return Imported(frame, tuple(files))


def read_return(path: str | Path, model: Model, *, today: dt.date | None = None) -> pd.DataFrame:
    """One return file as the tidy table (raises :class:`InputError` listing every problem)."""
    return read_returns([path], model, today=today).frame
