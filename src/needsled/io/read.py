"""Read a model's tables as raw text, from a folder of CSV files or one Excel workbook.

Nothing is interpreted here beyond turning every cell into text (so that validation sees what
the user typed, and can quote it back). Files are only ever opened for reading.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

from needsled.errors import InputError, Problem
from needsled.schema import ALL_TABLES, TABLES

__all__ = ["RawTable", "file_sha256", "read_tables", "scenario_file"]

WORKBOOK_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
SCENARIO_NAMES = ("scenarios.yaml", "scenarios.yml")


@dataclass(frozen=True)
class RawTable:
    """One table as text. ``first_row`` is the spreadsheet row number of ``rows[0]``."""

    name: str
    file: str
    sheet: str | None
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    first_row: int = 2


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cell_text(value: object) -> str:
    """What a spreadsheet cell shows, as text: 12.0 -> '12', a date -> 'YYYY-MM-DD'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _trim(header: list[str], rows: list[list[str]]) -> tuple[tuple[str, ...], list[list[str]]]:
    """Drop trailing empty header cells and fully empty rows (Excel leaves both behind)."""
    while header and not header[-1]:
        header.pop()
    width = len(header)
    kept = []
    for row in rows:
        cells = [*row[:width], *([""] * (width - len(row)))]
        kept.append(cells)
    while kept and not any(kept[-1]):
        kept.pop()
    return tuple(h.strip() for h in header), kept


def _read_csv(path: Path, name: str) -> RawTable:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            [
                Problem(
                    file=str(path),
                    message=f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    fix="save the file as 'CSV UTF-8' (in Excel: File > Save As > CSV UTF-8)",
                )
            ]
        ) from exc
    # newline="" as the csv module asks: line breaks inside quoted cells are kept as typed
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        return RawTable(name, str(path), None, (), ())
    header, body = _trim(rows[0], [[c.strip() for c in r] for r in rows[1:]])
    return RawTable(name, str(path), None, header, tuple(tuple(r) for r in body))


def _read_workbook(path: Path) -> dict[str, RawTable]:
    from python_calamine import CalamineWorkbook

    try:
        book = CalamineWorkbook.from_path(str(path))
    except Exception as exc:  # calamine raises its own error types for unreadable files
        raise InputError(
            [
                Problem(
                    file=str(path),
                    message=f"cannot be read as a workbook ({exc})",
                    fix="open it in Excel and save it again as .xlsx, or use a folder of CSV files",
                )
            ]
        ) from exc
    found: dict[str, RawTable] = {}
    for sheet in book.sheet_names:
        key = sheet.strip().lower()
        if key not in ALL_TABLES:
            continue
        data = book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
        if not data:
            found[key] = RawTable(key, str(path), sheet, (), ())
            continue
        header, body = _trim(
            [_cell_text(c) for c in data[0]], [[_cell_text(c) for c in r] for r in data[1:]]
        )
        found[key] = RawTable(key, str(path), sheet, header, tuple(tuple(r) for r in body))
    return found


def read_tables(path: Path) -> tuple[dict[str, RawTable], list[Problem]]:
    """Every table that is present, and a problem for each one that is missing or unreadable."""
    problems: list[Problem] = []
    unreadable: set[str] = set()
    if path.is_file() and path.suffix.lower() in WORKBOOK_SUFFIXES:
        found = _read_workbook(path)
        where = "as a sheet"
    elif path.is_dir():
        books = sorted(
            p
            for p in path.iterdir()
            if p.suffix.lower() in WORKBOOK_SUFFIXES and not p.name.startswith("~$")
        )
        csvs = {p.stem.lower(): p for p in path.glob("*.csv")}
        if not (csvs.keys() & set(TABLES)) and len(books) == 1:
            return read_tables(books[0])
        found = {}
        for name in ALL_TABLES:
            if name in csvs:
                try:
                    found[name] = _read_csv(csvs[name], name)
                except InputError as exc:  # reported with every other problem, not alone
                    problems += exc.problems
                    unreadable.add(name)
        where = "as a CSV file"
    else:
        raise InputError(
            [
                Problem(
                    file=str(path),
                    message="is neither a model folder nor an Excel workbook",
                    fix="give the folder holding areas.csv, crime.csv, ... and scenarios.yaml, "
                    "or a workbook made from `needsled template model.xlsx`",
                )
            ]
        )
    problems += [
        Problem(
            file=str(path),
            message=f"has no '{name}' table",
            fix=f"add the {name} table {where} (see `needsled template` for its columns)",
        )
        for name in TABLES
        if name not in found and name not in unreadable
    ]
    return found, problems


def scenario_file(path: Path) -> Path | None:
    """The scenarios YAML beside a workbook or inside a model folder, if there is one."""
    folder = path if path.is_dir() else path.parent
    for name in SCENARIO_NAMES:
        if (folder / name).is_file():
            return folder / name
    if path.is_file():
        for suffix in (".yaml", ".yml"):
            candidate = path.with_suffix(suffix)
            if candidate.is_file():
                return candidate
    return None
