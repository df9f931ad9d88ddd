"""Report runs and optimiser plans in the background, one of each at a time (a run uses both
cores): a report into its own folder ``DATA_DIR/reports/<id>/``, a plan into its row; the
state of each is kept on its row, so any server process can show it.

A run is the model's scenarios through the Monte Carlo engine (``report_replicates``), written
by :func:`needsled.io.outputs.write_run` (tables, report.html, report.pdf), then the slide
PNGs and the workbook by :func:`needsled.io.report_out.write_report`. Small numbers are
always suppressed in what the web application writes.
"""

from __future__ import annotations

import io
import logging
import shutil
import threading
import traceback
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from needsled.model import Model
from needsled.web.db import PlanRun, Report, utcnow
from needsled.web.planning import PlanSettings, run_plan
from needsled.web.store import Store

__all__ = ["DOWNLOADS", "Jobs", "Lane", "charts_zip"]

log = logging.getLogger("needsled.web")
T = TypeVar("T")

# what a report offers for download, in this order, when the run wrote it
DOWNLOADS = (
    "report.html",
    "report.pdf",
    "results.xlsx",
    "charts.zip",
    "results.csv",
    "summary.csv",
    "waterfall.csv",
    "queueing.csv",
    "observed.csv",
    "assumptions.csv",
    "manifest.json",
)


class Lane:
    """A background lane running one job at a time. Its thread is made when first needed and
    again after a shutdown (an application can be started and stopped more than once in one
    process, as the tests do)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., T], *args: object) -> Future[T]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
            return self._pool.submit(fn, *args)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def charts_zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for png in sorted((folder / "charts").glob("*.png")):
            zf.write(png, png.name)
    return buf.getvalue()


def write_report_files(model: Model, folder: Path, replicates: int, seed: int) -> list[str]:
    """Run the model and write its report files; the names written, in download order."""
    from needsled.io.outputs import write_run
    from needsled.io.report_out import write_report
    from needsled.io.run_dir import read_run
    from needsled.projection import run

    res = run(model, None, replicates, seed)
    command = f"needsled serve (web report, {replicates} replicates, seed {seed})"
    write_run(res, folder, command, suppress=True, pdf=False)  # tables and report.html
    # the PDF and the slide PNGs share one drawing of each chart
    done = write_report(read_run(folder), folder, html=False, pdf=True, png=True, excel=True)
    if done.pdf_problem:
        log.warning("report without PDF: %s", done.pdf_problem)
    pngs = sorted((folder / "charts").glob("*.png"))
    if pngs:
        (folder / "charts.zip").write_bytes(charts_zip(folder))
    return [name for name in DOWNLOADS if (folder / name).is_file()] + [
        f"charts/{p.name}" for p in pngs
    ]


class Jobs:
    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self._pool = Lane("needsled-report")
        self._plans = Lane("needsled-plan")
        self.running: dict[int, Future[None]] = {}
        self.planning: dict[int, Future[None]] = {}

    def folder(self, report_id: int) -> Path:
        return self.root / str(report_id)

    def submit(self, report_id: int, load: Callable[[], Model], replicates: int, seed: int) -> None:
        self.running[report_id] = self._pool.submit(self._run, report_id, load, replicates, seed)

    def _set(
        self, report_id: int, table: type[Report | PlanRun] = Report, **values: object
    ) -> None:
        with self.store.session() as db:
            row = db.get(table, report_id)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)

    def _run(self, report_id: int, load: Callable[[], Model], replicates: int, seed: int) -> None:
        folder = self.folder(report_id)
        try:
            self._set(report_id, status="running")
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            files = write_report_files(load(), folder, replicates, seed)
            self._set(report_id, status="done", files=files, finished_at=utcnow())
        except Exception as exc:
            log.error("report %s failed:\n%s", report_id, traceback.format_exc())
            self._set(
                report_id,
                status="failed",
                message=f"The report could not be made: {type(exc).__name__}: {exc}"[:2000],
                finished_at=utcnow(),
            )
        finally:
            self.running.pop(report_id, None)

    def submit_plan(
        self,
        plan_id: int,
        model_key: tuple[int, str],
        load: Callable[[], Model],
        settings: PlanSettings,
        seed: int,
    ) -> None:
        self.planning[plan_id] = self._plans.submit(
            self._plan, plan_id, model_key, load, settings, seed
        )

    def _plan(
        self,
        plan_id: int,
        model_key: tuple[int, str],
        load: Callable[[], Model],
        settings: PlanSettings,
        seed: int,
    ) -> None:
        try:
            self._set(plan_id, PlanRun, status="running")
            result = run_plan(model_key, load(), settings, seed)
            status = "infeasible" if "infeasible" in result else "done"
            self._set(plan_id, PlanRun, status=status, result=result, finished_at=utcnow())
        except Exception as exc:
            log.error("plan %s failed:\n%s", plan_id, traceback.format_exc())
            self._set(
                plan_id,
                PlanRun,
                status="failed",
                message=f"The plan could not be made: {type(exc).__name__}: {exc}"[:2000],
                finished_at=utcnow(),
            )
        finally:
            self.planning.pop(plan_id, None)

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every job started so far (tests, and a clean shutdown)."""
        for fut in [*self.running.values(), *self.planning.values()]:
            fut.result(timeout)

    def shutdown(self) -> None:
        self._pool.shutdown()
        self._plans.shutdown()
