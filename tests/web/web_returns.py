"""Filled-in provider returns for the web tests: the Excel return that
``needsled.returns.template`` makes, filled in with openpyxl as a person would (synthetic
counts that keep every rule of the format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl

from _returns_quarter import BASE, fill
from needsled.io.load import load_model
from needsled.returns.format import categories_of
from needsled.returns.template import write_return_template


def counts(offences: tuple[str, ...], scale: int = 1) -> dict[tuple[str, str], float]:
    """A consistent return: tests/_returns_quarter.py's BASE times ``scale``, with its 12
    referrals spread over whatever offences the model has."""
    spread = [12.0 - (len(offences) - 1), *([1.0] * (len(offences) - 1))]
    values = dict(BASE) | {"referrals_offence": spread}
    return {
        (m, c): v * scale
        for m, vs in values.items()
        for c, v in zip(categories_of(m, offences), vs, strict=True)
    }


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
