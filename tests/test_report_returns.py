"""What providers reported against the model, in the report: the section, its flags and chart on
hand-made figures, the PDF and workbook carrying it, small counts hidden everywhere, and the
commands (``needsled report RUN_DIR --returns STORE --model MODEL``, ``write_run(returns=...)``).
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

import needsled
from needsled.charts import actual_vs_model_rows
from needsled.cli import app
from needsled.io.excel_out import ACTUAL_SHEET, SHEETS, write_excel
from needsled.io.load import load_model
from needsled.io.outputs import ACTUAL_FILES, write_run
from needsled.io.report_out import write_report
from needsled.io.run_dir import read_run
from needsled.privacy import HIDDEN, LEGEND, SUPPRESSED
from needsled.projection import run
from needsled.report import ReportInputs, chart_specs, render_html
from needsled.returns.compare import Comparison, compare
from needsled.returns.store import add_to_store
from needsled.returns.synthetic import returns_from_run
from test_calibrate import QUARTERS, returns_model
from test_compare import CAMDEN, REPS, accepted, hand_model, returns

SECTION = "What providers reported against the model"
CHART_TITLE = "What providers reported against the model, by quarter"


@dataclasses.dataclass(frozen=True)
class Folder:
    model: Path
    run: Path


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Folder:
    root = tmp_path_factory.mktemp("report-returns")
    model = returns_model(root / "model")
    needsled.run(model, replicates=6, seed=4).save(root / "run")
    return Folder(model, root / "run")


def hand_comparison() -> Comparison:
    """ISVA in Camden, replicate r has r referrals and r + 30 starts a quarter (band 1.9 to
    9.1 and 31.9 to 39.1). Returned: Q1 20 referrals accepted (above) and 12 starts (below);
    Q2 3 referrals (hidden: a count of 1 would be below, 2 to 4 within, so no flag) and 35
    starts (within)."""
    per_month = np.repeat(REPS[:, None] / 3, 6, axis=1)
    mod = hand_model(referrals=per_month, starts=per_month + 10)
    got = returns(
        *accepted(CAMDEN, "2025-Q1", 20),
        *accepted(CAMDEN, "2025-Q2", 3),
        (CAMDEN, "2025-Q1", "starts", "", 12.0),
        (CAMDEN, "2025-Q2", "starts", "", 35.0),
    )
    return compare(mod, got)


def with_actual(folder: Folder, comparison: Comparison) -> ReportInputs:
    return dataclasses.replace(read_run(folder.run), actual=comparison, actual_scenario="baseline")


def test_the_section_says_what_was_outside_the_band(folder: Folder) -> None:
    c = hand_comparison()
    t = c.table.set_index(["quarter", "measure"])
    assert (t.loc[("2025-Q1", "referrals"), "flag"], t.loc[("2025-Q1", "starts"), "flag"]) == (
        "above",
        "below",
    )
    assert (t.loc[("2025-Q2", "referrals"), "actual"], t.loc[("2025-Q2", "referrals"), "flag"]) == (
        SUPPRESSED,
        "",
    )
    inp = with_actual(folder, c)
    page = render_html(inp, bundle="/* vega */")
    assert f'<h2 class="page">{SECTION}</h2>' in page
    assert "2025-Q1, 2025-Q2" in page
    assert "scenario baseline" in page
    # the plain-words summary: 2 of the 3 figures whose flag is shown were outside
    assert "Of 3 returned figures compared with the model, 2 (67%) were outside" in page
    assert "ISVA referrals in Camden were above the model&#39;s 80% band in 1 of 2 quarters" in page
    assert "ISVA starts in Camden were below the model&#39;s 80% band in 1 of 2 quarters" in page
    table = page[page.index("Figures outside the model") : page.index("actual_vs_model.csv")]
    rows = re.findall(r"<tr><td>(.*?)</td></tr>", table, flags=re.S)
    cells = [re.split(r"</td>\s*<td[^>]*>", r) for r in rows]
    assert [(c[2], c[3], c[4], c[5], c[7]) for c in cells] == [
        # furthest outside first, in band widths: (31.9 - 12) / 7.2, then (20 - 9.1) / 7.2
        ("2025-Q1", "Started support", "12", "32–39", "below"),
        ("2025-Q1", "Referrals", "20", "1.9–9.1", "above"),  # two significant figures
    ]
    assert all(c[0] == "Independent sexual violence advisers" and c[1] == "Camden" for c in cells)
    # the notes say what the marks mean
    assert f"Returned figures are observed counts: {LEGEND}" in html.unescape(page)


def test_the_chart_draws_shown_figures_only(folder: Folder) -> None:
    inp = with_actual(folder, hand_comparison())
    spec = chart_specs(inp)["actual"].to_dict()
    assert spec["title"]["text"] == CHART_TITLE
    assert "1 figure(s) hidden to protect small numbers not drawn" in spec["title"]["subtitle"]
    (data,) = spec["datasets"].values()
    drawn = {(d["quarter"], d["measure_label"]): d["actual_value"] for d in data}
    assert drawn == {
        ("2025-Q1", "Referrals"): 20.0,
        ("2025-Q2", "Referrals"): None,  # hidden: no number reaches the chart
        ("2025-Q1", "Started support"): 12.0,
        ("2025-Q2", "Started support"): 35.0,
    }
    assert {d["actual"] for d in data} == {"20", SUPPRESSED, "12", "35"}
    # without returns there is no such chart, and the page has no such section
    plain = read_run(folder.run)
    assert "actual" not in chart_specs(plain)
    assert SECTION not in render_html(plain, bundle="/* vega */")


def test_chart_rows_all_areas_or_the_area_most_often_outside() -> None:
    def r(service: str, area: str, q: str, flag: str) -> dict[str, object]:
        return {"service": service, "area": area, "area_name": area, "quarter": q,
                "measure": "referrals", "flag": flag}  # fmt: skip

    table = pd.DataFrame(
        [
            r("ISVA", "A1", "2025-Q1", "above"),
            r("ISVA", "A2", "2025-Q1", "within"),
            r("ISVA", "ALL", "2025-Q1", "within"),
            r("COUNS", "A1", "2025-Q1", "within"),
            r("COUNS", "A2", "2025-Q1", "below"),
            r("COUNS", "A2", "2025-Q2", "above"),
            r("COUNS", "A1", "2025-Q2", "above"),
        ]
    )
    rows = actual_vs_model_rows(table)
    assert sorted(set(zip(rows["service"], rows["area"], strict=True))) == [
        ("COUNS", "A2"),  # two of two outside; A1 one of two
        ("ISVA", "ALL"),
    ]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_the_pdf_and_workbook_carry_it(folder: Folder, tmp_path: Path) -> None:
    inp = with_actual(folder, hand_comparison())
    done = write_report(inp, tmp_path, html=False, pdf=True, excel=True, parallel=False)
    if done.pdf_problem is not None:
        pytest.skip(done.pdf_problem)
    assert done.pdf is not None
    text = " ".join(
        subprocess.run(
            ["pdftotext", str(done.pdf), "-"], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    assert SECTION in text
    assert CHART_TITLE in text  # the chart is drawn as vector graphics with real text
    assert "Figures outside the model's 80% band" in text
    book = openpyxl.load_workbook(tmp_path / "results.xlsx", read_only=True)
    names = list(SHEETS)
    assert book.sheetnames == [*names[: names.index("Observed") + 1], ACTUAL_SHEET[0],
                               *names[names.index("Observed") + 1 :]]  # fmt: skip
    ws = book[ACTUAL_SHEET[0]]
    rows = list(ws.iter_rows(values_only=True))
    head = list(rows[0])
    actual = [r[head.index("actual")] for r in rows[1:]]
    assert sorted(actual) == sorted(["20", "12", SUPPRESSED, "35"])
    cover = " ".join(str(c) for r in book["Cover"].iter_rows(values_only=True) for c in r if c)
    assert ACTUAL_SHEET[0] in cover
    assert "Of 3 returned figures" in cover
    assert f"Its returned figures are suppressed: {LEGEND}" in cover
    assert f"Observed counts are suppressed when small: {LEGEND}." in cover


def test_suppression_off_says_so(folder: Folder, tmp_path: Path) -> None:
    per_month = np.repeat(REPS[:, None] / 3, 6, axis=1)
    raw = compare(
        hand_model(referrals=per_month), returns(*accepted(CAMDEN, "2025-Q1", 3)), suppress=False
    )
    inp = dataclasses.replace(read_run(folder.run), actual=raw, suppressed=False)
    page = render_html(inp, bundle="/* vega */")
    assert "Returned figures are shown with small-number suppression OFF" in page
    write_excel(inp, tmp_path / "results.xlsx")
    book = openpyxl.load_workbook(tmp_path / "results.xlsx", read_only=True)
    cover = " ".join(str(c) for r in book["Cover"].iter_rows(values_only=True) for c in r if c)
    assert "NOT suppressed" in cover


def engine_store(folder: Folder, root: Path) -> pd.DataFrame:
    """Returns made by the engine from a replicate of an independent run (seeded)."""
    actual = run(load_model(folder.model), replicates=2, seed=9)
    frame = returns_from_run(actual, QUARTERS, np.random.default_rng(0), replicate=1)
    add_to_store(root / "store", frame)
    return frame


@pytest.mark.slow
def test_report_command_with_returns(folder: Folder, tmp_path: Path) -> None:
    engine_store(folder, tmp_path)
    target = tmp_path / "run"
    shutil.copytree(folder.run, target)
    before = (target / "report.html").read_bytes()
    runner = CliRunner()
    args = ["report", str(target), "--returns", str(tmp_path / "store")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "--returns needs --model" in result.output
    result = runner.invoke(app, [*args, "--model", str(folder.model), "--excel"])
    assert result.exit_code == 0, result.output
    page = (target / "report.html").read_text(encoding="utf-8")
    assert SECTION in page
    specs = json.loads(re.search(r"const SPECS = (\{.*?\});\n", page, flags=re.S).group(1))  # type: ignore[union-attr]
    assert "actual" in specs
    table = pd.read_csv(target / ACTUAL_FILES[0], dtype=str, keep_default_na=False)
    assert set(table["quarter"]) == set(QUARTERS)
    marks = table["actual"].isin([SUPPRESSED, HIDDEN])
    shown = pd.to_numeric(table["actual"].where(~marks), errors="coerce")
    assert not ((shown >= 1) & (shown <= 4)).any()  # small counts hidden in the file too
    assert (table["actual"] == SUPPRESSED).any()  # engine-made leavers include small counts
    section = page[page.index(f'<h2 class="page">{SECTION}') :].split("<h2")[1]
    returned = re.findall(r"<td class=\"num\">([^<]*)</td><td class=\"num\">[^<]*–", section)
    assert returned  # the flagged figures' table
    assert not {"1", "2", "3", "4"} & set(returned)
    # a rebuild without --returns is the report the run wrote
    result = runner.invoke(app, ["report", str(target)])
    assert result.exit_code == 0, result.output
    assert (target / "report.html").read_bytes() == before


def test_write_run_with_returns_and_a_later_run_without(folder: Folder, tmp_path: Path) -> None:
    frame = engine_store(folder, tmp_path)
    res = run(load_model(folder.model), replicates=4, seed=5)
    out = tmp_path / "out"
    paths = write_run(res, out, pdf=False, returns=frame)
    assert set(ACTUAL_FILES) <= set(paths)
    text = (out / ACTUAL_FILES[1]).read_text(encoding="utf-8")
    assert text.startswith("Scenario: baseline\nOf ")
    assert f"Small numbers: {LEGEND}" in text  # what "<5" and "[c]" mean
    assert SECTION in (out / "report.html").read_text(encoding="utf-8")
    write_run(res, out, pdf=False)  # the comparison was against the earlier run: removed
    assert not any((out / name).exists() for name in ACTUAL_FILES)
    assert SECTION not in (out / "report.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_run_command_with_returns(folder: Folder, tmp_path: Path) -> None:
    engine_store(folder, tmp_path)
    out = tmp_path / "out"
    args = ["run", str(folder.model), "--out", str(out), "--replicates", "4", "--no-pdf"]
    result = CliRunner().invoke(app, [*args, "--returns", str(tmp_path / "store")])
    assert result.exit_code == 0, result.output
    assert SECTION in (out / "report.html").read_text(encoding="utf-8")
    assert all((out / name).is_file() for name in ACTUAL_FILES)
    assert "--returns" in json.loads((out / "manifest.json").read_text())["command"]
    # a store that is not there: said plainly, nothing run
    missing = tmp_path / "no-store"
    result = CliRunner().invoke(app, [*args, "--returns", str(missing)])
    assert result.exit_code == 1
    assert str(missing) in result.output
    assert "Traceback" not in result.output
