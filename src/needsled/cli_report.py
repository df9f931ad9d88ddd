"""``needsled report RUN_DIR [--pdf] [--png] [--excel] [--geojson PATH] [--returns STORE --model
MODEL]``: rebuild a run's report from its folder.

Re-renders ``report.html`` from the tables a run wrote (no re-run, so it takes seconds), and
on request the same report as ``report.pdf``, each chart as a slide-sized PNG
(``RUN_DIR/charts/*.png``) and the tables as an Excel workbook (``RUN_DIR/results.xlsx``).
``--geojson`` draws the map from real boundaries (kept in the folder for later rebuilds). A
folder that is not a run folder, or a bad GeoJSON file, is reported file by file (exit code
1), never as a traceback; so is a PDF that cannot be made, after everything else is written.

``--returns STORE --model MODEL`` adds the section "What providers reported against the
model": the run's scenario is run again from the model (checked to be the files the run
used) with the run's seed and replicates, because the folder keeps only percentiles by month
and the comparison needs each replicate's quarter; ``actual_vs_model.csv`` and ``.txt`` are
written beside the report. Without ``--returns`` the report is exactly as the run wrote it.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from needsled.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from needsled.io.report_out import ReportFiles
    from needsled.io.report_worker import Helper
    from needsled.report import ReportInputs

__all__ = ["GeoJsonOption", "ReturnsOption", "read_returns_or_exit", "report"]

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _cannot_write(path: Path, exc: OSError) -> typer.Exit:
    console.print(
        f"Cannot write {path}: {exc.strerror or exc}. If it is open (in Excel, say), close it "
        "and run the command again.",
        style="bold red",
        markup=False,
        highlight=False,
    )
    return typer.Exit(1)


def _problems(exc: InputError, what: str = "nothing was written") -> typer.Exit:
    console.print(f"[bold red]{len(exc.problems)} problem(s) in {exc.what}[/]; {what}:")
    for p in exc.problems:
        console.print(f"  - {p}", highlight=False, markup=False)
    return typer.Exit(1)


GeoJsonOption = Annotated[
    Path | None,
    typer.Option(
        "--geojson",
        help="Area boundaries (GeoJSON, longitude/latitude) for the map, matched to the areas "
        "by code or name; default: the built-in tile map for London boroughs",
        metavar="PATH",
    ),
]


ReturnsOption = Annotated[
    Path | None,
    typer.Option(
        "--returns",
        help="Providers' returns (a store from 'needsled returns import', or its "
        "returns.parquet): adds what they reported against the model to the report",
        metavar="STORE",
    ),
]


def read_returns_or_exit(store: Path) -> pd.DataFrame:
    """The returns in a store (or a returns.parquet file); problems are printed (exit 1)."""
    from needsled.io.calibrated import read_returns

    try:
        return read_returns(store)
    except InputError as exc:
        raise _problems(exc) from None


def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="Run folder: the --out of needsled run (for needsled demo, OUT/results)",
            metavar="RUN_DIR",
        ),
    ],
    pdf: Annotated[
        bool, typer.Option("--pdf", help="Also write the report as RUN_DIR/report.pdf")
    ] = False,
    png: Annotated[
        bool,
        typer.Option("--png", help="Also write each chart as a 1600x900 PNG in RUN_DIR/charts"),
    ] = False,
    excel: Annotated[
        bool, typer.Option("--excel", help="Also write the tables to RUN_DIR/results.xlsx")
    ] = False,
    geojson: GeoJsonOption = None,
    returns: ReturnsOption = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="With --returns: the model (folder or workbook) the run was made from",
            metavar="MODEL",
        ),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            "-s",
            help="With --returns: the scenario to set the returns against (default: the "
            "run's first)",
        ),
    ] = None,
) -> None:
    """Rebuild report.html from a run folder (no re-run); optionally PDF, slide PNGs, Excel,
    and what providers' returns showed against the model."""
    from needsled.io.report_out import start_helper

    start = time.perf_counter()
    if returns is None and (model is not None or scenario is not None):
        console.print(
            "--model and --scenario are for --returns: give the returns store too "
            "(--returns STORE), or leave them out",
            style="bold red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    if returns is not None and model is None:
        console.print(
            "--returns needs --model MODEL, the model the run was made from: the comparison "
            "runs its scenario again for each replicate's figures",
            style="bold red",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    frame = read_returns_or_exit(returns) if returns is not None else None
    # the workbook and PNGs are shared with a helper process: start it now, so that it has
    # imported what it needs while this one reads the run folder
    helper = start_helper() if excel or png else None
    try:
        done = _write(
            run_dir,
            pdf=pdf,
            png=png,
            excel=excel,
            geojson=geojson,
            helper=helper,
            returns=(frame, model, scenario) if frame is not None and model is not None else None,
        )
    except BaseException:
        if helper is not None:
            helper.kill()
        raise
    if helper is not None:
        helper.close()
    for label, path in (("Report", done.html), ("PDF", done.pdf), ("Workbook", done.excel)):
        if path is not None:
            out.print(f"{label}: {path.resolve()}", highlight=False)
    if done.pngs:
        charts_dir = done.pngs[0].parent
        out.print(f"Charts: {len(done.pngs)} PNGs in {charts_dir.resolve()}", highlight=False)
    console.print(f"Done in {time.perf_counter() - start:.1f} s.", highlight=False)
    if done.pdf_problem is not None:
        console.print(done.pdf_problem, style="bold red", markup=False, highlight=False)
        raise typer.Exit(1)


def _write(
    run_dir: Path,
    *,
    pdf: bool,
    png: bool,
    excel: bool,
    geojson: Path | None,
    helper: Helper | None,
    returns: tuple[pd.DataFrame, Path, str | None] | None = None,
) -> ReportFiles:
    from needsled.io.geojson import BOUNDARIES_FILE, load_boundaries, write_boundaries
    from needsled.io.report_out import write_report
    from needsled.io.run_dir import read_run

    try:
        inp = read_run(run_dir)
    except InputError as exc:
        raise _problems(exc) from None
    if geojson is not None:
        try:
            boundaries = load_boundaries(geojson)
        except InputError as exc:
            raise _problems(exc) from None
        target = run_dir / BOUNDARIES_FILE
        try:
            write_boundaries(boundaries, target)  # so that later rebuilds draw the same map
        except OSError as exc:
            raise _cannot_write(target, exc) from None
        inp = dataclasses.replace(inp, boundaries=boundaries)
    if returns is not None:
        inp = _with_returns(inp, run_dir, *returns)
    try:
        return write_report(inp, run_dir, html=True, pdf=pdf, png=png, excel=excel, helper=helper)
    except OSError as exc:
        raise _cannot_write(Path(exc.filename or run_dir), exc) from None


def _with_returns(
    inp: ReportInputs, run_dir: Path, frame: pd.DataFrame, model: Path, scenario: str | None
) -> ReportInputs:
    """The report's inputs with the returns set against the run's scenario (run again from
    the model for its replicates); ``actual_vs_model.csv`` and ``.txt`` written beside it."""
    from needsled.cli_calibrate import rerun_scenario
    from needsled.cli_common import UserError, fail
    from needsled.io.load import load_model
    from needsled.io.outputs import write_actual
    from needsled.returns.compare import compare, modelled

    try:
        loaded = load_model(model)
    except InputError as exc:
        raise _problems(exc) from None
    try:
        res, chosen = rerun_scenario(run_dir, loaded, scenario, "to set the returns against it")
    except UserError as err:
        raise fail(err) from None
    actual = compare(modelled(res, chosen), frame, suppress=inp.suppressed)
    try:
        write_actual(run_dir, actual, chosen)
    except OSError as exc:
        raise _cannot_write(Path(exc.filename or run_dir), exc) from None
    for line in actual.summary[:1]:
        out.print(line, highlight=False)
    return dataclasses.replace(inp, actual=actual, actual_scenario=chosen)
