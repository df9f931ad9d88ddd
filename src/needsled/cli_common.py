"""Shared pieces of the data commands: console output and user-facing errors."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console

__all__ = [
    "UserError",
    "console",
    "fail",
    "need_file",
    "out",
    "parse_month",
    "read_error",
    "split_list",
    "ym",
]

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


class UserError(Exception):
    """A problem with the user's input: printed as one clear message, exit code 1."""

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


def fail(err: UserError) -> typer.Exit:
    console.print(f"Error: {err.message}", style="bold red", markup=False, highlight=False)
    if err.fix:
        console.print(f"How to fix: {err.fix}", markup=False, highlight=False)
    return typer.Exit(1)


def need_file(path: Path, what: str) -> None:
    if not path.exists():
        raise UserError(f"{path} does not exist", f"give the path of the {what}")
    if not path.is_file():
        raise UserError(f"{path} is not a file", f"give the path of the {what}, not a folder")


def out_folder(out_dir: Path) -> None:
    """A ``UserError`` when ``--out`` names a file (a folder, or nothing yet, is fine)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file", "give a folder for --out")


def read_error(exc: ValueError) -> UserError:
    """A reader's ValueError (SourceFormatError names the file, problems and the fix)."""
    return UserError(str(exc))


def split_list(values: Iterable[str]) -> list[str]:
    return [part.strip() for v in values for part in v.split(",") if part.strip()]


def parse_month(text: str, option: str) -> pd.Period:
    try:
        if len(text) != 7 or text[4] != "-":
            raise ValueError(text)
        return pd.Period(text, freq="M")
    except ValueError:
        raise UserError(
            f"{option} {text!r} is not a month", "write it as YYYY-MM, e.g. 2015-04"
        ) from None


def ym(p: pd.Period) -> str:
    return p.strftime("%Y-%m")
