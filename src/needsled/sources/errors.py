"""Exceptions raised by the source readers, and the validation helpers that build them.

Every reader collects *all* the problems it finds in a file before raising, so a user
fixing a broken file sees the whole list at once instead of one problem per run. Each
problem names the file, where in it (row and/or column) and the offending value.
"""

from __future__ import annotations

import csv
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PeriodNotAvailableError",
    "Problem",
    "SourceFormatError",
    "check_counts",
    "check_duplicates",
    "check_text",
    "read_csv_strict",
]

#: At most this many problems are spelt out in an exception message; the rest are counted.
MAX_PROBLEMS_SHOWN = 25


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input file.

    ``row`` is the 1-based row number as a spreadsheet shows it (the header is row 1),
    ``column`` the column header (or ``#n`` position), ``value`` the text as read.
    """

    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def describe(self) -> str:
        where: list[str] = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        prefix = ", ".join(where)
        value = f" value {self.value!r}:" if self.value is not None else ""
        return f"{prefix}:{value} {self.message}" if prefix else f"{value} {self.message}".strip()


class SourceFormatError(ValueError):
    """A file is not in the expected published format.

    Attributes are kept so callers (and tests) can inspect the problems programmatically.
    """

    def __init__(self, path: Path | str, kind: str, problems: Sequence[Problem], fix: str) -> None:
        self.path = Path(path)
        self.kind = kind
        self.problems = tuple(sorted(problems, key=lambda p: p.row or 0))  # stable: by row
        self.fix = fix
        shown = [f"  - {p.describe()}" for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        extra = len(self.problems) - len(shown)
        if extra > 0:
            shown.append(f"  - ... and {extra} more problem(s)")
        n = len(self.problems)
        message = (
            f"{self.path}: not a valid {kind} file ({n} problem{'s' if n != 1 else ''}):\n"
            + "\n".join(shown)
            + f"\nHow to fix: {fix}"
        )
        super().__init__(message)


class PeriodNotAvailableError(ValueError):
    """A requested period (e.g. a year ending) is not in the data."""


def _ragged_lines(path: Path, limit: int = MAX_PROBLEMS_SHOWN) -> list[Problem]:
    """Find lines whose field count differs from the header's (slow path, errors only)."""
    problems: list[Problem] = []
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        for row in reader:
            if row and len(row) != len(header):
                problems.append(
                    Problem(
                        f"has {len(row)} fields but the header has {len(header)}",
                        row=reader.line_num,
                        value=",".join(row)[:60],
                    )
                )
                if len(problems) >= limit:
                    break
    return problems


def read_csv_strict(path: Path, kind: str, fix: str, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` that turns every way a CSV can be unreadable into
    :class:`SourceFormatError` naming the file and, where possible, the row.

    ``index_col=False`` stops pandas silently using the first column as the index when
    every data row has one field more than the header; rows with too many fields are
    reported by row number instead of being truncated with a warning.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame: pd.DataFrame = pd.read_csv(path, encoding="utf-8-sig", index_col=False, **kwargs)
            return frame
    except FileNotFoundError:
        raise
    except pd.errors.EmptyDataError:
        raise SourceFormatError(path, kind, [Problem("the file is empty")], fix) from None
    except UnicodeDecodeError as exc:
        problem = Problem(f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        raise SourceFormatError(path, kind, [problem], fix) from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        problems = _ragged_lines(Path(path)) or [Problem(f"unreadable CSV: {exc}")]
        raise SourceFormatError(path, kind, problems, fix) from None


def check_text(
    frame: pd.DataFrame, columns: Sequence[str], problems: list[Problem]
) -> pd.DataFrame:
    """Stripped text of ``columns``; a blank cell is a problem (blank keys would otherwise
    vanish in a later ``groupby``). Row numbers count the header as row 1."""
    out = {}
    for col in columns:
        text = frame[col].astype("str").str.strip().where(frame[col].notna(), "")
        problems.extend(
            Problem("blank value", int(i) + 2, col, "") for i in np.flatnonzero(text == "")
        )
        out[col] = text
    return pd.DataFrame(out)


def check_counts(
    frame: pd.DataFrame,
    columns: Sequence[str],
    problems: list[Problem],
    *,
    raw: Callable[[], pd.DataFrame],
    allow_negative: bool = False,
) -> np.ndarray:
    """Whole-number matrix of ``columns`` (rows x columns, int64).

    Fast path: pandas already parsed every column as integers. Otherwise ``raw()`` must
    return the same file read as text, so each problem can quote the value as written.
    """
    if all(pd.api.types.is_integer_dtype(frame[c]) for c in columns):
        counts = frame[list(columns)].to_numpy(dtype=np.int64)
        if not allow_negative:
            problems.extend(
                Problem("negative count", int(r) + 2, columns[c], str(counts[r, c]))
                for r, c in np.argwhere(counts < 0)
            )
        return counts
    text_frame = raw()
    counts = np.zeros((len(text_frame), len(columns)), dtype=np.int64)
    pattern = r"-?\d+" if allow_negative else r"\d+"
    what = "a whole number" if allow_negative else "a whole number >= 0"
    for j, col in enumerate(columns):
        text = text_frame[col].astype("str").str.strip()
        ok = text.str.fullmatch(pattern).fillna(False).to_numpy(dtype=bool)
        problems.extend(
            Problem(f"expected {what}", int(i) + 2, col, str(text_frame[col].iat[int(i)]))
            for i in np.flatnonzero(~ok)
        )
        counts[ok, j] = text[ok].astype("int64").to_numpy()
    return counts


def check_duplicates(keys: pd.DataFrame, column: str, problems: list[Problem]) -> None:
    """A repeated key (all ``keys`` columns equal) is a problem reported at ``column``."""
    dup = keys.duplicated(keep=False).to_numpy()
    if not dup.any():
        return
    first_row: dict[tuple[str, ...], int] = {}
    for i in np.flatnonzero(dup):
        key = tuple(keys.iloc[i])
        if key in first_row:
            message = f"duplicate row; first seen on row {first_row[key]}"
            problems.append(Problem(message, int(i) + 2, column, " / ".join(key)))
        else:
            first_row[key] = int(i) + 2
