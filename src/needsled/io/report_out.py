"""Write a run's report files: ``report.html``, ``report.pdf``, ``charts/*.png``, ``results.xlsx``.

One function, :func:`write_report`, used by ``needsled run``/``demo`` (HTML and PDF) and
``needsled report`` (any of them). The charts are built once and drawn once at slide size:
the PDF shows those SVGs and the PNGs are the same drawings on a white 16:9 frame.

Drawing (vl-convert) and writing Excel (xlsxwriter) both hold the interpreter lock, so when
the workbook or PNGs are wanted and the machine has a second core, a helper process
(:mod:`needsled.io.report_worker`) writes the workbook and then encodes PNGs, while this
process draws the charts, lays out the PDF and writes the HTML, then encodes the PNGs the
helper has not reached (:class:`~needsled.io.png_out.PngBatch`). The files are the same
either way.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from needsled.io.atomic import write_text_atomic
from needsled.io.excel_out import write_excel
from needsled.io.pdf_out import PdfUnavailableError, write_pdf
from needsled.io.png_out import PAGE_TOLERANCE, SLIDE_TOLERANCE, PngBatch, slide_svgs
from needsled.io.report_worker import Helper, HelperStoppedError
from needsled.report import ReportInputs, chart_specs, render_html, vega_bundle

__all__ = ["ReportFiles", "start_helper", "write_report"]

T = TypeVar("T")


@dataclass
class ReportFiles:
    """What :func:`write_report` wrote, why a PDF was not written, and how long each took
    (seconds of this process's time by step; ``excel`` is the wait for the helper when one
    wrote the workbook)."""

    html: Path | None = None
    pdf: Path | None = None
    pngs: list[Path] = field(default_factory=list)
    excel: Path | None = None
    pdf_problem: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def _for_excel(inp: ReportInputs) -> ReportInputs:
    """The inputs with only the all-areas results: all the workbook shows, and a small
    parcel to send to the helper."""
    return dataclasses.replace(inp, results=inp.everywhere)


class _Clock:
    def __init__(self, into: dict[str, float]) -> None:
        self.into, self.last = into, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.into[name] = self.into.get(name, 0.0) + now - self.last
        self.last = now


def start_helper() -> Helper | None:
    """A helper process, if there is a second core for it to run on."""
    return Helper() if (os.cpu_count() or 1) > 1 else None


def _from_helper(job: Future[T] | None, here: Callable[[], T]) -> T:
    """The helper's answer, or the job done here if there was no helper or it stopped."""
    if job is not None:
        try:
            return job.result()
        except HelperStoppedError:
            pass
    return here()


def write_report(
    inp: ReportInputs,
    folder: str | Path,
    *,
    html: bool = True,
    pdf: bool = False,
    png: bool = False,
    excel: bool = False,
    parallel: bool = True,
    helper: Helper | None = None,
) -> ReportFiles:
    """Write the chosen report files into ``folder``.

    A PDF that cannot be written because WeasyPrint cannot load is not an error: the other
    files are written and :attr:`ReportFiles.pdf_problem` says what to install. Anything
    else (a file that cannot be written, say) is raised. ``parallel=False`` keeps all the
    work in this process. A caller that knows early that it will want the workbook or PNGs
    can start the ``helper`` itself (:func:`start_helper`), so that it has imported what it
    needs by the time the work comes; the caller then stops it.
    """
    folder = Path(folder)
    done = ReportFiles()
    clock = _Clock(done.seconds)
    own = helper is None
    if helper is None and parallel and (excel or png):
        helper = start_helper()
    try:
        jobs: dict[str, Future[Any]] = {}
        if helper is not None:
            if html:
                jobs["bundle"] = helper.submit("bundle")
            if excel:
                jobs["excel"] = helper.submit(
                    "excel", _for_excel(inp), folder / "results.xlsx", total_rows=len(inp.results)
                )
        specs = {key: chart.to_dict() for key, chart in chart_specs(inp).items()}
        clock.lap("charts")
        tolerance = SLIDE_TOLERANCE if png else PAGE_TOLERANCE
        svgs = slide_svgs(specs, tolerance=tolerance) if pdf or png else {}
        clock.lap("svg")
        # the helper takes the PNGs after the workbook; this process takes what is left
        # once the PDF and the HTML are done
        pngs = PngBatch(svgs, folder / "charts", helper=helper) if png else None
        if pdf:
            try:
                page = render_html(inp, specs, svgs={k: s.svg for k, s in svgs.items()})
                done.pdf = write_pdf(page, folder / "report.pdf")
            except PdfUnavailableError as exc:
                done.pdf_problem = str(exc)
            clock.lap("pdf")
        if html:
            bundle = _from_helper(jobs.get("bundle"), vega_bundle)
            done.html = write_text_atomic(
                folder / "report.html", render_html(inp, specs, bundle=bundle)
            )
            clock.lap("html")
        if pngs is not None:
            done.pngs = pngs.finish()
            clock.lap("png")
        if excel:
            done.excel = _from_helper(
                jobs.get("excel"),
                lambda: write_excel(
                    _for_excel(inp), folder / "results.xlsx", total_rows=len(inp.results)
                ),
            )
            clock.lap("excel")
    except BaseException:
        if helper is not None and own:
            helper.kill()
        raise
    if helper is not None and own:
        helper.close()
    return done
