"""Benchmark the full report of the London example: HTML, PDF, slide PNGs and Excel.

    python benchmarks/bench_report.py                    # builds the run folder, then times
    python benchmarks/bench_report.py --run-dir DIR      # reuse a run folder (made if absent)
    python benchmarks/bench_report.py --repeats 5

The workload is what a commissioner runs after a run of the built-in example at the default
500 replicates and its four scenarios: ``needsled report RUN_DIR --pdf --png --excel``. It is
timed end to end as a user would see it, a fresh ``python -m needsled report ...`` process
each time (interpreter start and imports included), ``--repeats`` times; the machine is
shared, so the best and the median are both printed, with the load average and the CPU
seconds the report used (which other people's load changes much less). One more call in
this process gives the breakdown by step (reading the run folder, building the charts,
drawing them at slide size, the PDF, the HTML, the PNGs, and the wait for the helper process
that writes the workbook), and the sizes of what was written.

Target: at most 15 s end to end on the project's 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 15.0
REPLICATES = 500  # needsled run's default


def make_run(folder: Path, replicates: int) -> None:
    """A run folder of the built-in example (tables and manifest; no PDF yet)."""
    import needsled
    from needsled.io.outputs import write_run

    start = time.perf_counter()
    model = needsled.example(folder.parent / "model")
    run = needsled.run(model, replicates=replicates)
    write_run(run.result, folder, "benchmarks/bench_report.py", pdf=False)
    print(
        f"run folder: {folder} ({replicates} replicates x {len(run.scenarios)} scenarios, "
        f"made in {time.perf_counter() - start:.0f} s)"
    )


def time_cli(folder: Path) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the report and its helper process together."""
    command = [sys.executable, "-m", "needsled", "report", str(folder)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([*command, "--pdf", "--png", "--excel"], check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def breakdown(folder: Path) -> None:
    from needsled.io.report_out import write_report
    from needsled.io.run_dir import read_run

    start, cpu = time.perf_counter(), time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    inp = read_run(folder)
    read = time.perf_counter() - start
    done = write_report(inp, folder, pdf=True, png=True, excel=True)
    total = time.perf_counter() - start
    main_cpu = time.process_time() - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    helper_cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    steps = {"read run folder": read, **done.seconds}
    print(
        f"in one process (imports already done): {total:.1f} s; CPU {main_cpu:.1f} s here "
        f"and {helper_cpu:.1f} s in the helper (its imports, the workbook, its share of PNGs)"
    )
    for name, seconds in steps.items():
        print(f"  {name:<16} {seconds:6.2f} s")
    print(f"  results table: {len(inp.results):,} rows ({len(inp.everywhere):,} for all areas)")
    if done.html is None or done.excel is None or done.pdf is None:
        raise SystemExit(f"the report was not written in full: {done}")
    pages = ""
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(done.pdf)], capture_output=True, text=True)
        found = re.search(r"^Pages:\s+(\d+)", info.stdout, re.M)
        pages = f", {found.group(1)} pages" if found else ""
    print(
        f"  wrote report.html {done.html.stat().st_size / 1e6:.2f} MB, "
        f"report.pdf {done.pdf.stat().st_size / 1e6:.2f} MB{pages}, "
        f"{len(done.pngs)} PNGs {sum(p.stat().st_size for p in done.pngs) / 1e6:.1f} MB, "
        f"results.xlsx {done.excel.stat().st_size / 1e6:.1f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="run folder to use (made if absent)")
    parser.add_argument("--repeats", type=int, default=5, help="end-to-end timings")
    parser.add_argument("--replicates", type=int, default=REPLICATES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="needsled-bench-") as tmp:
        folder = args.run_dir or Path(tmp) / "results"
        if not (folder / "manifest.json").is_file():
            make_run(folder, args.replicates)
        print(f"load average before: {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)")
        times, cpus = [], []
        for i in range(args.repeats):
            wall, cpu = time_cli(folder)
            times.append(wall)
            cpus.append(cpu)
            print(
                f"  needsled report --pdf --png --excel, run {i + 1}: {wall:.1f} s "
                f"({cpu:.1f} CPU s in two processes; load {os.getloadavg()[0]:.1f})"
            )
        best, median = min(times), statistics.median(times)
        verdict = "OK" if best <= TARGET_SECONDS else "TOO SLOW"
        print(
            f"end to end (fresh process): best {best:.1f} s, median {median:.1f} s of "
            f"{len(times)}; target <= {TARGET_SECONDS:.0f} s: {verdict}"
        )
        print(f"CPU time: best {min(cpus):.1f} s, median {statistics.median(cpus):.1f} s")
        breakdown(folder)
    return 0 if best <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
