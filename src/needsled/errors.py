"""The project's own exceptions and the problem records that validation collects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["InputError", "Problem", "column_letter"]


def column_letter(index: int) -> str:
    """Spreadsheet column letter for a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, located precisely enough to find and fix it.

    ``row`` is the spreadsheet row number (the header is row 1), so it matches what Excel
    shows; ``cell`` is the Excel-style reference where the column is known.
    """

    file: str
    message: str
    fix: str
    sheet: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None
    cell: str | None = None

    def location(self) -> str:
        parts = [self.file]
        if self.sheet:
            parts.append(f"sheet {self.sheet}")
        if self.cell:
            parts.append(f"cell {self.cell}")
        elif self.row is not None:
            parts.append(f"row {self.row}")
        if self.column:
            parts.append(f"column {self.column}")
        return ", ".join(parts)

    def __str__(self) -> str:
        value = f" value {self.value!r}:" if self.value is not None else ""
        return f"{self.location()}:{value} {self.message}. Fix: {self.fix}"


class InputError(ValueError):
    """Input that cannot be used, with every problem found (not just the first)."""

    def __init__(self, problems: Iterable[Problem], what: str = "the model") -> None:
        self.problems = tuple(problems)
        self.what = what
        super().__init__(self.report())

    def report(self) -> str:
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in {self.what}; nothing was loaded:"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])
