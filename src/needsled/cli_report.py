"""``needsled report RUN_DIR [--png] [--excel]``: rebuild a run's outputs from its folder.

Re-renders ``report.html`` from the tables a run wrote (no re-run, so it takes seconds), and
on request writes each chart as a slide-sized PNG (``RUN_DIR/charts/*.png``) and the tables
as an Excel workbook (``RUN_DIR/results.xlsx``). A folder that is not a run folder is
reported file by file (exit code 1), never as a traceback.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from needsled.errors import InputError

__all__ = ["report"]

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


def report(
    run_dir: Annotated[
        Path,
        typer.Argument(
            help="Run folder: the --out of needsled run (for needsled demo, OUT/results)",
            metavar="RUN_DIR",
        ),
    ],
    png: Annotated[
        bool,
        typer.Option("--png", help="Also write each chart as a 1600x900 PNG in RUN_DIR/charts"),
    ] = False,
    excel: Annotated[
        bool, typer.Option("--excel", help="Also write the tables to RUN_DIR/results.xlsx")
    ] = False,
) -> None:
    """Rebuild report.html from a run folder (no re-run); optionally slide PNGs and Excel."""
    from needsled.io.excel_out import write_excel
    from needsled.io.png_out import write_pngs
    from needsled.io.run_dir import read_run
    from needsled.report import render_html

    start = time.perf_counter()
    try:
        inp = read_run(run_dir)
    except InputError as exc:
        console.print(
            f"[bold red]{len(exc.problems)} problem(s) in {exc.what}[/]; nothing was written:",
            highlight=False,
        )
        for p in exc.problems:
            console.print(f"  - {p}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    html_path = run_dir / "report.html"
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    try:
        tmp.write_text(render_html(inp), encoding="utf-8")
        os.replace(tmp, html_path)
    except OSError as exc:
        raise _cannot_write(html_path, exc) from None
    out.print(f"Report: {html_path.resolve()}", highlight=False)
    if png:
        charts_dir = run_dir / "charts"
        try:
            paths = write_pngs(inp, charts_dir)
        except OSError as exc:
            raise _cannot_write(charts_dir, exc) from None
        out.print(f"Charts: {len(paths)} PNGs in {charts_dir.resolve()}", highlight=False)
    if excel:
        xlsx = run_dir / "results.xlsx"
        try:
            write_excel(inp, xlsx)
        except OSError as exc:
            raise _cannot_write(xlsx, exc) from None
        out.print(f"Workbook: {xlsx.resolve()}", highlight=False)
    console.print(f"Done in {time.perf_counter() - start:.1f} s.", highlight=False)
