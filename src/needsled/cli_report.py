"""``needsled report RUN_DIR [--pdf] [--png] [--excel] [--geojson PATH]``: rebuild a run's
report from its folder.

Re-renders ``report.html`` from the tables a run wrote (no re-run, so it takes seconds), and
on request the same report as ``report.pdf``, each chart as a slide-sized PNG
(``RUN_DIR/charts/*.png``) and the tables as an Excel workbook (``RUN_DIR/results.xlsx``).
``--geojson`` draws the map from real boundaries (kept in the folder for later rebuilds). A
folder that is not a run folder, or a bad GeoJSON file, is reported file by file (exit code
1), never as a traceback; so is a PDF that cannot be made, after everything else is written.
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
    from needsled.io.report_out import ReportFiles
    from needsled.io.report_worker import Helper

__all__ = ["GeoJsonOption", "report"]

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
) -> None:
    """Rebuild report.html from a run folder (no re-run); optionally PDF, slide PNGs, Excel."""
    from needsled.io.report_out import start_helper

    start = time.perf_counter()
    # the workbook and PNGs are shared with a helper process: start it now, so that it has
    # imported what it needs while this one reads the run folder
    helper = start_helper() if excel or png else None
    try:
        done = _write(run_dir, pdf=pdf, png=png, excel=excel, geojson=geojson, helper=helper)
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
    try:
        return write_report(inp, run_dir, html=True, pdf=pdf, png=png, excel=excel, helper=helper)
    except OSError as exc:
        raise _cannot_write(Path(exc.filename or run_dir), exc) from None
