"""Write a run's outputs to a folder: tables, manifest and the report (HTML and PDF).

Everything a run writes goes into the output folder; nothing next to the inputs is touched.
Files are written to a temporary name first and renamed, so a folder never holds a half-written
file.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from needsled import __version__, equity
from needsled.io.atomic import write_atomic, write_text_atomic
from needsled.io.geojson import BOUNDARIES_FILE, write_boundaries
from needsled.io.pdf_out import PdfUnavailableError
from needsled.io.report_out import write_report
from needsled.privacy import suppress_table
from needsled.projection import RunResult
from needsled.report import ReportInputs
from needsled.results import queueing_table, results_table, summary_table, waterfall_table

if TYPE_CHECKING:
    from needsled.returns.compare import Comparison

__all__ = [
    "ACTUAL_FILES",
    "EQUITY_FILES",
    "OUTPUT_FILES",
    "actual_lines",
    "manifest",
    "observed_table",
    "write_actual",
    "write_run",
]

OUTPUT_FILES = (
    "results.parquet",
    "results.csv",
    "summary.csv",
    "waterfall.csv",
    "queueing.csv",
    "observed.csv",
    "assumptions.csv",
    "manifest.json",
    "report.html",
)
# Equity (model.md sections 4-5): reach per 1,000 estimated victims by area, the postcode
# lottery (best-to-worst ratio, Gini) and, when the model has a groups table, the group
# breakdown and representativeness check (observed counts suppressed).
EQUITY_FILES = ("equity_reach.csv", "equity_lottery.csv", "equity_groups.csv")
# Providers' returns against the model (``needsled run/report --returns``): the table and the
# summary in plain words, as ``needsled compare`` writes them.
ACTUAL_FILES = ("actual_vs_model.csv", "actual_vs_model.txt")


def actual_lines(comparison: Comparison, scenario: str = "") -> list[str]:
    """The comparison's summary in plain words, its notes and what the marks mean."""
    from needsled.returns.compare import marks_note

    lines = [f"Scenario: {scenario}"] if scenario else []
    lines += [*comparison.summary, *(f"Note: {n}" for n in comparison.notes)]
    lines.append(marks_note(comparison.suppressed))
    return lines


def write_actual(out: str | Path, comparison: Comparison, scenario: str = "") -> list[Path]:
    """Write ``actual_vs_model.csv`` and ``.txt`` into ``out`` (each through a temporary file)."""
    out = Path(out)
    csv_path, txt_path = (out / name for name in ACTUAL_FILES)
    write_atomic(csv_path, lambda p: comparison.table.to_csv(p, index=False))
    text = "\n".join(actual_lines(comparison, scenario)) + "\n"
    write_text_atomic(txt_path, text)
    return [csv_path, txt_path]


def _csv(frame: pd.DataFrame, path: Path, index_label: str | None = None) -> None:
    """CSV through Arrow (several times faster than pandas for the long results table)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if index_label is not None:
        frame = frame.rename_axis(index_label).reset_index()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.cast(
        pa.schema(
            [
                pa.field(f.name, pa.string()) if pa.types.is_dictionary(f.type) else f
                for f in table.schema
            ]
        )
    )
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def manifest(res: RunResult, command: str) -> dict[str, object]:
    """Enough to reproduce the run exactly: inputs and their hashes, seed, version, command."""
    model = res.model
    return {
        "model": model.name,
        "needsled_version": __version__,
        "command": command,
        "seed": res.seed,
        "replicates": res.replicates,
        "scenarios": [s.scenario.name for s in res.scenarios],
        "first_month": res.months[0],
        "last_month": res.months[-1],
        "history_end": model.history_end,
        "forecast_method": res.forecast_method,
        "forecast_notes": list(res.forecast_notes),
        "areas": dict(zip(model.area_codes, model.area_names, strict=True)),
        "services": dict(zip(model.services.codes, model.services.names, strict=True)),
        "inputs": dict(model.provenance),
        "settings": model.settings.model_dump(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def observed_table(res: RunResult, suppress: bool = True) -> pd.DataFrame:
    """Starting waiting lists by area and service, as given by providers: observed counts
    about service users, so small numbers are suppressed (model.md section 8)."""
    model = res.model
    counts = pd.DataFrame(
        np.rint(model.staffing.waiting_start).astype(np.int64),
        index=list(model.area_names),
        columns=list(model.services.codes),
    )
    return suppress_table(counts, suppress=suppress)


def _remove_stale(out: Path, boundaries: bool, actual: bool = False) -> None:
    """Remove what an earlier run in this folder left that this run does not write again:
    its report extras (PDF, slide PNGs, workbook) would show the old figures, its
    boundaries would draw a map this run was not asked for, and its comparison with
    providers' returns was against other figures."""
    stale = [out / "report.pdf", out / "results.xlsx"]
    if not actual:
        stale += [out / name for name in ACTUAL_FILES]
    if not boundaries:
        stale.append(out / BOUNDARIES_FILE)
    if (out / "charts").is_dir():
        stale += (out / "charts").glob("*.png")
    for path in stale:
        path.unlink(missing_ok=True)


def write_run(
    res: RunResult,
    out: str | Path,
    command: str = "",
    *,
    suppress: bool = True,
    pdf: bool = True,
    boundaries: Mapping[str, Any] | None = None,
    returns: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write every output file; return their paths by name.

    ``pdf=False`` skips ``report.pdf``. ``boundaries`` (simplified GeoJSON, from
    :func:`needsled.io.geojson.load_boundaries`) are kept as ``boundaries.geojson`` and drawn
    as the report's map. ``returns`` (the tidy returns table of a returns store) are set
    against the run's first scenario: ``actual_vs_model.csv`` and ``.txt``, and a section
    of the report. If WeasyPrint cannot load, everything else is written first and then
    :class:`~needsled.io.pdf_out.PdfUnavailableError` says what to install.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in OUTPUT_FILES}
    results = results_table(res)
    summary = summary_table(res)
    water = waterfall_table(res)
    queue = queueing_table(res)
    observed = observed_table(res, suppress)
    assumptions = pd.DataFrame(
        list(res.model.assumptions), columns=["table", "item", "value", "source"]
    )
    man = manifest(res, command) | {"suppression": "on" if suppress else "OFF (internal use)"}
    write_atomic(paths["results.parquet"], lambda p: results.to_parquet(p, index=False))
    write_atomic(paths["results.csv"], lambda p: _csv(results, p))
    write_atomic(paths["summary.csv"], lambda p: _csv(summary, p))
    write_atomic(paths["waterfall.csv"], lambda p: _csv(water, p))
    write_atomic(paths["queueing.csv"], lambda p: _csv(queue.round(4), p))
    write_atomic(paths["observed.csv"], lambda p: _csv(observed, p, index_label="area"))
    write_atomic(paths["assumptions.csv"], lambda p: _csv(assumptions, p))
    reach, lottery = equity.run_tables(res)
    groups = equity.group_table(res.model, suppress=suppress)
    for name, frame in zip(EQUITY_FILES, (reach, lottery, groups), strict=True):
        paths[name] = out / name
        write_atomic(paths[name], partial(_csv, frame))
    write_text_atomic(paths["manifest.json"], json.dumps(man, indent=2))
    _remove_stale(out, boundaries is not None, returns is not None)
    if boundaries is not None:
        paths[BOUNDARIES_FILE] = write_boundaries(dict(boundaries), out / BOUNDARIES_FILE)
    actual, first = None, res.scenarios[0].scenario.name
    if returns is not None:
        from needsled.returns.compare import compare, modelled

        actual = compare(modelled(res, first), returns, suppress=suppress)
        for path in write_actual(out, actual, first):
            paths[path.name] = path
    done = write_report(
        ReportInputs(
            model_name=res.model.name,
            results=results,
            summary=summary,
            waterfall=water,
            queueing=queue,
            observed=observed,
            assumptions=assumptions,
            manifest=man,
            area_names=dict(zip(res.model.area_codes, res.model.area_names, strict=True)),
            service_names=dict(
                zip(res.model.services.codes, res.model.services.names, strict=True)
            ),
            suppressed=suppress,
            boundaries=boundaries,
            actual=actual,
            actual_scenario=first if actual is not None else "",
        ),
        out,
        pdf=pdf,
    )
    if done.pdf is not None:
        paths["report.pdf"] = done.pdf
    if done.pdf_problem is not None:
        raise PdfUnavailableError(f"{done.pdf_problem} Everything else is written in {out}.")
    return paths
