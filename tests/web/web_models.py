"""Small versions of the built-in example for the web tests: a few areas and services and a
two-year horizon, so that uploads, explorers, plans and reports take seconds, not minutes."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from pathlib import Path

from needsled.example import write_example

OPTIONAL = ("directory.csv", "groups.csv", "lots.csv", "options.csv")
SCENARIOS = """horizon_months: 24
scenarios:
- name: baseline
  description: Today's services and trends carry on
- name: reports-up-20pc
  description: Police reports up 20%, ramped over two years
  levers:
  - lever: police_reports
    change: 0.2
    interval: [0.1, 0.3]
    profile: ramp
    ramp_months: 24
"""


def _filter(path: Path, keep: dict[str, set[str]]) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    cols = {c: header.index(c) for c in keep if c in header}
    body = [r for r in body if all(not r[i] or r[i] in keep[c] for c, i in cols.items())]
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *body])


def small_model(
    folder: Path,
    areas: int = 3,
    services: Sequence[str] = ("ISVA", "COUNSELLING", "IDVA"),
    waiting: dict[tuple[int, str], int] | None = None,
    directory: Sequence[tuple[str, str, str]] = (),
) -> Path:
    """The example cut to its first ``areas`` areas and the given services. ``waiting`` sets
    starting waiting lists (area index, service) -> count, to test small-number suppression.
    ``directory``: rows (service, provider code, area indexes separated by spaces, or "" for
    every area the service serves) of a directory table, for provider returns."""
    write_example(folder)
    for name in OPTIONAL:
        (folder / name).unlink(missing_ok=True)
    with (folder / "areas.csv").open(encoding="utf-8", newline="") as fh:
        codes = [r["area_code"] for r in csv.DictReader(fh)][:areas]
    keep = {"area_code": set(codes), "service": set(services)}
    for path in folder.glob("*.csv"):
        _filter(path, keep)
    if waiting:
        path = folder / "staffing.csv"
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for r in rows:
            key = (codes.index(r["area_code"]), r["service"])
            if key in waiting:
                r["waiting_start"] = str(waiting[key])
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    if directory:
        with (folder / "directory.csv").open("w", encoding="utf-8", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["service", "provider", "provider_name", "areas"])
            for service, code, where in directory:
                listed = " ".join(codes[int(i)] for i in where.split())
                out.writerow([service, code, f"{code.title()} Support (synthetic)", listed])
    (folder / "scenarios.yaml").write_text(SCENARIOS, encoding="utf-8")
    return folder


def zipped(folder: Path, top: str | None = "model") -> bytes:
    """The folder as a .zip, inside a top folder as a person zipping it would make."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, f"{top}/{p.name}" if top else p.name)
    return buf.getvalue()
