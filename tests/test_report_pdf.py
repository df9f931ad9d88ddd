"""The report as a PDF, read back with poppler (``pdfinfo``, ``pdftoppm``, ``pdftotext``).

Two runs of the built-in example with few replicates are made per module: one as usual and
one with suppression off. The PDFs are then rendered to page images and to text, and checked
for the headline, the section titles, the charts (their text is real text in the PDF) and the
suppression warning. WeasyPrint failing to load is simulated at the import boundary.
"""

from __future__ import annotations

import importlib.abc
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import needsled
from needsled.cli import app
from needsled.io.run_dir import read_run
from needsled.report import headline

runner = CliRunner()
SCENARIOS = ["baseline", "reports-up-20pc"]
SECTIONS = [
    "Scenarios side by side",
    "Demand against capacity",
    "Shortfall by area",
    "What drove the change",
    "Steady-state checks (queueing theory)",
    "Where services start (observed counts)",
    "Assumptions",
    "Method",
    "Data provenance",
]
pytestmark = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) is not installed",
)


@dataclass(frozen=True)
class Runs:
    model: Path
    usual: Path  # run folder, suppression on
    unsuppressed: Path  # run folder, suppression off


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("pdf")
    model = needsled.example(root / "model")
    needsled.run(model, SCENARIOS, replicates=8).save(root / "usual")
    needsled.run(model, ["baseline"], replicates=4).save(root / "off", suppress=False)
    return Runs(root / "model", root / "usual", root / "off")


def _poppler(*args: str | Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout


def _text(pdf: Path, first: int | None = None, last: int | None = None) -> str:
    pages: list[str | Path] = []
    if first is not None:
        pages += ["-f", str(first)]
    if last is not None:
        pages += ["-l", str(last)]
    return " ".join(_poppler("pdftotext", *pages, pdf, "-").split())


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _pages(pdf: Path) -> int:
    found = re.search(r"^Pages:\s+(\d+)", _poppler("pdfinfo", pdf), re.M)
    assert found, "pdfinfo gave no page count"
    return int(found.group(1))


def test_pdf_pages_render(runs: Runs, tmp_path: Path) -> None:
    pdf = runs.usual / "report.pdf"
    n = _pages(pdf)
    assert n >= 8  # headlines, scenarios, demand per scenario, map, ... on landscape A4
    _poppler("pdftoppm", "-png", "-r", "30", pdf, tmp_path / "page")
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == n
    inked = []
    for path in images:
        with Image.open(path) as im:
            assert im.width > im.height  # landscape
            grey = np.asarray(im.convert("L"), dtype=float)
        inked.append(float((grey < 200).mean()))
    assert min(inked) > 0.001, "a blank page"
    # chart pages carry far more ink than text pages: at least the demand charts and map
    assert sum(share > 0.08 for share in inked) >= 4, inked


def test_pdf_opens_with_the_headline_and_has_every_section(runs: Runs) -> None:
    pdf = runs.usual / "report.pdf"
    inp = read_run(runs.usual)
    lines = [line for sc in SCENARIOS for line in headline(inp, sc)]
    text = _text(pdf)
    for line in lines:  # a line may break after a dash, so compare without spaces
        assert _squash(line) in _squash(text), line
    first_page = _text(pdf, 1, 1)
    assert "needsled: London example (synthetic)" in first_page  # the model's title
    assert "Headline: baseline" in first_page
    assert _squash(headline(inp, "baseline")[0]) in _squash(first_page)
    assert "suppression is OFF" not in text
    where = [text.find(s) for s in SECTIONS]
    assert all(i > 0 for i in where), dict(zip(SECTIONS, where, strict=True))
    assert where == sorted(where)
    assert text.find("Headline: baseline") < where[0]


def test_pdf_charts_are_drawn_as_vector_text(runs: Runs) -> None:
    text = _text(runs.usual / "report.pdf")
    for title in (
        "Shortfall by scenario, all areas",
        "Waiting list by scenario, all areas",
        "Demand against capacity, all areas (baseline)",
        "Demand against capacity, all areas (reports-up-20pc)",
        "Staff short by area",
        "What drives the change in demand, by scenario",
    ):
        assert title in text, title
    # the London tile map: a tile per borough, by its three letters
    for short in ("BRN", "CMD", "WSM", "CRD", "HAV"):
        assert short in text, short
    assert "People waiting" in text  # an axis title


def test_pdf_cover_says_when_suppression_is_off(runs: Runs) -> None:
    first_page = _text(runs.unsuppressed / "report.pdf", 1, 1)
    assert "Small-number suppression is OFF" in first_page
    assert "for internal use only, do not publish" in first_page
    html = (runs.unsuppressed / "report.html").read_text(encoding="utf-8")
    assert "Small-number suppression is OFF" in html


def test_report_pdf_rebuilds_from_the_folder(runs: Runs, tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(runs.usual, copy)
    (copy / "report.pdf").unlink()
    result = runner.invoke(app, ["report", str(copy), "--pdf"])
    assert result.exit_code == 0, result.output
    assert "PDF:" in result.output
    assert _text(copy / "report.pdf") == _text(runs.usual / "report.pdf")


class _NoPango(importlib.abc.MetaPathFinder):
    """Imports of weasyprint fail as they do on a machine without Pango."""

    def find_spec(
        self, fullname: str, _path: Sequence[str] | None, _target: ModuleType | None = None
    ) -> None:
        if fullname == "weasyprint":
            raise OSError(
                "cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared "
                "object file: No such file or directory"
            )


@pytest.fixture
def no_pango(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])


@pytest.mark.usefixtures("no_pango")
def test_report_without_pango_writes_the_rest_and_says_what_to_install(
    runs: Runs, tmp_path: Path
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(runs.usual, copy)
    (copy / "report.pdf").unlink()
    (copy / "report.html").unlink()
    result = runner.invoke(app, ["report", str(copy), "--pdf", "--excel"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in said
    assert "libpango-1.0-0: cannot open shared object file" in said
    assert "Traceback" not in said
    assert (copy / "report.html").stat().st_size > 0
    assert (copy / "results.xlsx").stat().st_size > 0
    assert not (copy / "report.pdf").exists()


@pytest.mark.usefixtures("no_pango")
def test_run_without_pango_still_writes_the_report(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "charts").mkdir(parents=True)
    for old in ("report.pdf", "results.xlsx", "charts/waiting.png"):  # an earlier run's
        (out / old).write_bytes(b"old figures")
    result = runner.invoke(
        app, ["run", str(runs.model), "--out", str(out), "--scenario", "baseline", "-r", "2"]
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "No PDF: WeasyPrint cannot load" in said
    assert "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in said
    assert "Traceback" not in said
    assert (out / "report.html").stat().st_size > 0
    # nothing with the earlier run's figures is left beside the new ones
    assert not (out / "report.pdf").exists()
    assert not (out / "results.xlsx").exists()
    assert not (out / "charts" / "waiting.png").exists()
