"""Read a run folder back into the report's inputs, so that the report, its charts and the
Excel workbook can be rebuilt without running the model again (``needsled report RUN_DIR``).

A run folder is what :func:`needsled.io.outputs.write_run` writes. Anything missing or
unreadable is reported file by file, all at once, as an :class:`~needsled.errors.InputError`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from needsled.errors import InputError, Problem
from needsled.io.geojson import BOUNDARIES_FILE, read_geojson
from needsled.report import ReportInputs
from needsled.results import ALL_AREAS, RESULT_COLUMNS

__all__ = ["TABLE_COLUMNS", "read_run"]

#: The columns each table must have (more are allowed), and which of them are text.
TABLE_COLUMNS: dict[str, tuple[list[str], list[str]]] = {
    "results": (RESULT_COLUMNS, ["scenario", "area", "service", "month", "metric", "area_name"]),
    "summary.csv": (
        ["scenario", "year", "service", "area", "metric", "mean", "p10", "p50", "p90"],
        ["scenario", "year", "service", "area", "metric"],
    ),
    "waterfall.csv": (
        ["scenario", "area", "service", "step", "lever", "label", "referrals"],
        ["scenario", "area", "service", "lever", "label"],
    ),
    "queueing.csv": (
        ["scenario", "year", "area", "service", "load", "statement"],
        ["scenario", "year", "area", "service", "statement"],
    ),
    "assumptions.csv": (["table", "item", "value", "source"], ["table", "item", "value", "source"]),
}
MANIFEST_KEYS = ("seed", "replicates", "scenarios", "first_month", "last_month")
_FIX = "rebuild the folder with needsled run --out FOLDER (or point at the folder a run wrote)"
_TITLE = re.compile(r"<title>needsled: (.*?)</title>")


def _problem(path: Path, message: str, fix: str = _FIX) -> Problem:
    return Problem(file=str(path), message=message, fix=fix)


def _read_csv(path: Path, text: list[str], *, index_col: int | None = None) -> pd.DataFrame:
    """Text columns stay text (an area code "NA" is not a missing value); an empty cell in a
    number column is missing."""
    return pd.read_csv(
        path,
        dtype=dict.fromkeys(text, str),
        keep_default_na=False,
        na_values=[""],
        index_col=index_col,
    )


def _check_columns(frame: pd.DataFrame, name: str, path: Path) -> list[Problem]:
    missing = [c for c in TABLE_COLUMNS[name][0] if c not in frame.columns]
    if not missing:
        return []
    return [_problem(path, f"has no column {', '.join(missing)}; not a needsled {name} table")]


def _manifest(path: Path) -> tuple[dict[str, Any], list[Problem]]:
    try:
        man = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return {}, [_problem(path, f"cannot be read as JSON ({exc})")]
    if not isinstance(man, dict):
        return {}, [_problem(path, "is not a JSON object; not a needsled run manifest")]
    missing = [k for k in MANIFEST_KEYS if k not in man]
    if missing:
        return man, [_problem(path, f"has no {', '.join(missing)}; not a needsled run manifest")]
    return man, []


def _model_name(folder: Path, man: dict[str, Any]) -> str:
    """The model's name: from the manifest, else the title of the report the run wrote."""
    for key in ("model", "model_name"):
        if isinstance(man.get(key), str) and man[key]:
            return str(man[key])
    report = folder / "report.html"
    if report.is_file():
        with report.open(encoding="utf-8", errors="replace") as fh:
            found = _TITLE.search(fh.read(4096))
        if found:
            return html.unescape(found.group(1))
    return folder.name


def _names(man: dict[str, Any], key: str, fallback: Callable[[], dict[str, str]]) -> dict[str, str]:
    given = man.get(key)
    if isinstance(given, dict) and given:
        return {str(k): str(v) for k, v in given.items()}
    return fallback()


def _area_names(results: pd.DataFrame) -> dict[str, str]:
    pairs = results.loc[results["area"] != ALL_AREAS, ["area", "area_name"]].drop_duplicates()
    return dict(zip(pairs["area"].astype(str), pairs["area_name"].astype(str), strict=True))


def read_run(folder: str | Path) -> ReportInputs:
    """The report's inputs from a run folder's files (raises InputError naming every bad file)."""
    folder = Path(folder)
    what = f"the run folder {folder}"
    if not folder.is_dir():
        msg = "does not exist" if not folder.exists() else "is a file, not a folder"
        raise InputError([_problem(folder, msg, "give the folder a run wrote (run --out)")], what)
    if not (folder / "manifest.json").is_file():
        hint = (
            f"did you mean {folder / 'results'}? (needsled demo puts the run there)"
            if (folder / "results" / "manifest.json").is_file()
            else _FIX
        )
        raise InputError(
            [_problem(folder / "manifest.json", "is missing: not a needsled run folder", hint)],
            what,
        )
    problems: list[Problem] = []
    man, bad = _manifest(folder / "manifest.json")
    problems += bad
    tables: dict[str, pd.DataFrame] = {}

    parquet, csv = folder / "results.parquet", folder / "results.csv"
    source = parquet if parquet.is_file() else csv
    if not source.is_file():
        problems.append(_problem(parquet, "is missing (and so is results.csv)"))
    else:
        try:
            if source == parquet:
                tables["results"] = pd.read_parquet(source)
            else:
                tables["results"] = _read_csv(source, TABLE_COLUMNS["results"][1])
        except Exception as exc:  # pyarrow and the CSV parser raise many kinds
            problems.append(_problem(source, f"cannot be read ({type(exc).__name__}: {exc})"))
        else:
            problems += _check_columns(tables["results"], "results", source)

    for name in ("summary.csv", "waterfall.csv", "queueing.csv", "assumptions.csv"):
        path = folder / name
        if not path.is_file():
            problems.append(_problem(path, "is missing"))
            continue
        try:
            tables[name] = _read_csv(path, TABLE_COLUMNS[name][1])
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(_problem(path, f"cannot be read ({exc})"))
        else:
            problems += _check_columns(tables[name], name, path)

    observed_path = folder / "observed.csv"
    observed = pd.DataFrame()
    if not observed_path.is_file():
        problems.append(_problem(observed_path, "is missing"))
    else:
        try:
            observed = pd.read_csv(observed_path, dtype=str, keep_default_na=False, index_col=0)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(_problem(observed_path, f"cannot be read ({exc})"))
        else:
            observed.index.name = None
    boundaries = None
    if (folder / BOUNDARIES_FILE).is_file():  # kept by a run or report with --geojson
        try:
            boundaries = read_geojson(folder / BOUNDARIES_FILE)
        except InputError as exc:
            problems += [
                dataclasses.replace(
                    p, fix=f"{p.fix}; or delete it to draw the map without boundaries"
                )
                for p in exc.problems
            ]
    if problems:
        raise InputError(problems, what)

    results = tables["results"]
    return ReportInputs(
        model_name=_model_name(folder, man),
        results=results,
        summary=tables["summary.csv"],
        waterfall=tables["waterfall.csv"],
        queueing=tables["queueing.csv"],
        observed=observed,
        assumptions=tables["assumptions.csv"],
        manifest=man,
        area_names=_names(man, "areas", lambda: _area_names(results)),
        service_names=_names(
            man, "services", lambda: {str(c): str(c) for c in pd.unique(results["service"])}
        ),
        suppressed=str(man.get("suppression", "on")) == "on",
        boundaries=boundaries,
    )
