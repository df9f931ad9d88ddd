"""Write a calibrated copy of a model, and read provider returns for calibration.

:func:`write_calibrated` copies the model to a new folder (the user's model is never touched)
with the estimates a :class:`~needsled.returns.calibrate.Calibration` wrote in: the value and
its 80% interval (``_lo``/``_hi``) in ``services.csv`` and ``pathway.csv``, the ``source``
column saying where they came from, and ``calibration.csv`` listing every estimate. A model in
a workbook is written out as a folder of CSV files. The folder is built under a temporary name
and renamed when complete, so it is never half-written.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from needsled.errors import InputError, Problem
from needsled.io.read import RawTable, read_tables, scenario_file
from needsled.returns.calibrate import ALL, Calibration, Estimate
from needsled.returns.format import COLUMNS, MEASURES, OFFENCE, is_quarter
from needsled.schema import tables

__all__ = ["CALIBRATION_FILE", "read_returns", "write_calibrated"]

CALIBRATION_FILE = "calibration.csv"
STORE_FILE = "returns.parquet"
SERVICE_PARAMS = ("drop_out_per_month", "duration_weeks", "caseload_per_fte")
PATHWAY_PARAMS = ("referral_share", "contact_share", "decline_share")


# ---------------------------------------------------------------- returns


def read_returns(path: str | Path) -> pd.DataFrame:
    """The tidy returns table from ``returns.parquet`` (or a store folder holding one).

    Raises :class:`InputError` naming every problem (columns, measures, categories, quarters,
    values), with the row number of the table (1 = the first row of data).
    """
    path = Path(path)
    if path.is_dir():
        path = path / STORE_FILE
    fix = (
        "give a returns store (the folder `needsled returns import` writes) or its returns.parquet"
    )
    if not path.is_file():
        raise InputError([Problem(str(path), "does not exist", fix)], what="the returns")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many kinds
        problem = Problem(str(path), f"cannot be read as Parquet ({type(exc).__name__})", fix)
        raise InputError([problem], what="the returns") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        problem = Problem(
            str(path),
            f"has no column {', '.join(missing)}",
            f"a returns table has the columns {', '.join(COLUMNS)}",
        )
        raise InputError([problem], what="the returns")
    frame = frame.loc[:, list(COLUMNS)].copy()
    for col in COLUMNS[:-1]:
        frame[col] = frame[col].astype(object).where(frame[col].notna(), "").map(str)
        frame[col] = frame[col].astype(object)
    problems = _return_problems(frame, str(path))
    if problems:
        raise InputError(problems, what="the returns")
    frame["value"] = frame["value"].astype(np.float64)
    return frame


def _return_problems(frame: pd.DataFrame, file: str) -> list[Problem]:
    problems: list[Problem] = []
    values = pd.to_numeric(frame["value"], errors="coerce").to_numpy(np.float64)
    for i, rec in enumerate(frame.itertuples(index=False)):
        row = i + 1
        measure = MEASURES.get(str(rec.measure))
        if measure is None:
            problems.append(
                Problem(
                    file,
                    "is not a measure of the returns format",
                    f"use one of: {', '.join(MEASURES)}",
                    row=row,
                    column="measure",
                    value=str(rec.measure),
                )
            )
        elif measure.categories != (OFFENCE,) and rec.category not in (measure.categories or ("",)):
            allowed = ", ".join(repr(c) for c in measure.categories or ("",))
            problems.append(
                Problem(
                    file,
                    f"is not a category of {measure.name}",
                    f"use one of {allowed}",
                    row=row,
                    column="category",
                    value=str(rec.category),
                )
            )
        if not is_quarter(str(rec.quarter)):
            problems.append(
                Problem(
                    file,
                    "is not a quarter",
                    "write it YYYY-Qn, e.g. 2025-Q1",
                    row=row,
                    column="quarter",
                    value=str(rec.quarter),
                )
            )
        v = values[i]
        fte = measure is not None and measure.kind == "fte"
        if not (math.isfinite(v) and v >= 0):
            problems.append(
                Problem(
                    file,
                    "is not a count of 0 or more",
                    "enter a whole number, at least 0",
                    row=row,
                    column="value",
                    value=str(rec.value),
                )
            )
        elif not fte and v != round(v):  # counts of people; only FTE may have decimals
            problems.append(
                Problem(
                    file,
                    "is not a whole number (only FTE may have decimals)",
                    "enter a whole number of people or cases",
                    row=row,
                    column="value",
                    value=str(rec.value),
                )
            )
    return problems


# ---------------------------------------------------------------- the calibrated model


@dataclass
class _Table:
    """A table as text, to edit cell by cell and write back as CSV."""

    header: list[str]
    rows: list[list[str]]

    @classmethod
    def of(cls, raw: RawTable) -> _Table:
        return cls(list(raw.header), [list(r) for r in raw.rows])

    def col(self, name: str) -> int:
        if name not in self.header:
            self.header.append(name)
            for r in self.rows:
                r.append("")
        return self.header.index(name)

    def get(self, row: list[str], name: str) -> str:
        return row[self.header.index(name)] if name in self.header else ""

    def set(self, row: list[str], name: str, text: str) -> None:
        row[self.col(name)] = text

    def write(self, path: Path) -> None:
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(self.header)
            w.writerows(self.rows)


def _text(x: float) -> str:
    return f"{x:.6g}"


def _put(table: _Table, row: list[str], col: str, value: float, lo: float, hi: float) -> None:
    """Write a value and its 80% interval, rounded so that lo <= value <= hi still holds."""
    v, low, high = _text(value), _text(lo), _text(hi)
    low = v if float(low) > float(v) else low
    high = v if float(high) < float(v) else high
    table.set(row, col, v)
    table.set(row, f"{col}_lo", low)
    table.set(row, f"{col}_hi", high)


def _how(e: Estimate, period: str) -> str:
    return f"{e.parameter} calibrated from returns for {period} (n = {e.n:g} {e.n_of})"


def _source(table: _Table, row: list[str], added: list[str]) -> None:
    before = table.get(row, "source")
    text = "; ".join(added) + (f"; before: {before}" if before else "")
    table.set(row, "source", text)


def _services(table: _Table, cal: Calibration, skipped: dict[Estimate, str]) -> None:
    code = table.header.index("service")
    for row in table.rows:
        mine = [
            e
            for e in cal.written()
            if e.parameter in SERVICE_PARAMS and e.service == row[code] and e not in skipped
        ]
        added = []
        for e in mine:
            if e.parameter == "caseload_per_fte":
                sessions = table.get(row, "capacity_basis").lower() == "sessions"
                if sessions and table.get(row, "mode").lower() != "stretch":
                    skipped[e] = "a sessions-based service: its places per FTE come from sessions"
                    continue
                # the schema holds no interval for caseload: it goes into the source instead
                table.set(row, e.parameter, _text(e.value))
                added.append(f"{_how(e, cal.period)}, 80% interval {e.lo:.3g} to {e.hi:.3g}")
                continue
            top = tables()["services"].column(e.parameter).max or np.inf
            _put(table, row, e.parameter, min(e.value, top), min(e.lo, top), min(e.hi, top))
            added.append(_how(e, cal.period))
        if added:
            _source(table, row, added)


def _pathway(table: _Table, cal: Calibration) -> None:
    """Scale each row's rate by new / old (see needsled.returns.calibrate): the rows' values,
    with a blank rate in an all-areas row taking the schema default first."""
    spec = tables()["pathway"]
    area = table.header.index("area_code") if "area_code" in table.header else None
    for row in table.rows:
        general = area is None or row[area] == ""
        added = []
        for e in cal.written():
            if e.parameter not in PATHWAY_PARAMS or e.service != ALL:
                continue
            given = table.get(row, e.parameter)
            if not given and not general:
                continue  # an area's blank rate keeps the all-areas row's
            current = float(given) if given else float(spec.column(e.parameter).default)
            if e.old > 0:
                scale = current / e.old
                vals = [min(x * scale, 1.0) for x in (e.value, e.lo, e.hi)]
            else:
                vals = [e.value, e.lo, e.hi]
            _put(table, row, e.parameter, *vals)
            added.append(_how(e, cal.period))
        if added:
            _source(table, row, added)


def _fail(out: Path, message: str, fix: str) -> InputError:
    return InputError([Problem(str(out), message, fix)], what="the calibrated model's folder")


def write_calibrated(model_path: str | Path, cal: Calibration, out: str | Path) -> Path:
    """Copy the model to the new folder ``out`` with the calibration written in; return it.

    ``out`` must not exist yet (or be an empty folder), and must not be the model itself.
    """
    src, out = Path(model_path), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise _fail(out, "already exists and is not empty", "give a new folder for the model")
    if src.is_dir() and (out.resolve() == src.resolve() or src.resolve() in out.resolve().parents):
        raise _fail(out, "is inside the model's own folder", "give a folder outside the model")
    raws, problems = read_tables(src)
    if problems:
        raise InputError(problems, what=str(src))
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    csv_folder = src.is_dir() and any(Path(r.file).suffix.lower() == ".csv" for r in raws.values())
    if csv_folder:  # the folder's own files (not the folders in it, such as results)
        tmp.mkdir(parents=True)
        for f in src.iterdir():
            if f.is_file():
                shutil.copy2(f, tmp / f.name)
    else:  # a workbook: every table becomes a CSV file beside the scenarios
        tmp.mkdir(parents=True)
        for name, raw in raws.items():
            _Table.of(raw).write(tmp / f"{name}.csv")
        yaml_path = scenario_file(src)
        if yaml_path is not None:
            shutil.copyfile(yaml_path, tmp / "scenarios.yaml")
    services, pathway = _Table.of(raws["services"]), _Table.of(raws["pathway"])
    skipped: dict[Estimate, str] = {}
    _services(services, cal, skipped)
    _pathway(pathway, cal)
    services.write(tmp / "services.csv")
    pathway.write(tmp / "pathway.csv")
    _calibration_table(cal, skipped).to_csv(tmp / CALIBRATION_FILE, index=False)
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    return out


def _calibration_table(cal: Calibration, skipped: dict[Estimate, str]) -> pd.DataFrame:
    frame = cal.table()
    if frame.empty:
        frame = pd.DataFrame(columns=["parameter", "service", "area", "old", "new", "lo", "hi"])
    for e, why in skipped.items():
        at = (
            (frame["parameter"] == e.parameter)
            & (frame["service"] == e.service)
            & (frame["area"] == e.area)
        )
        frame.loc[at, "written"] = "no"
        frame.loc[at, "note"] = f"{why}; left as it was"
    frame.insert(0, "returns", cal.period)
    return frame.rename(
        columns={"old": "old_value", "new": "new_value", "lo": "lo80", "hi": "hi80"}
    )
