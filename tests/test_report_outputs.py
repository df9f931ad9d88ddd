"""``needsled report RUN_DIR``: the report, slide PNGs and Excel rebuilt from a run folder.

One run of the built-in example (two scenarios, few replicates) is made per module and
``report --png --excel`` is run on it once; the tests then read what it wrote.
"""

from __future__ import annotations

import html
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import typer
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet
from typer.testing import CliRunner

import needsled
from needsled.cli_report import report
from needsled.errors import InputError
from needsled.io.excel_out import SHEETS
from needsled.io.run_dir import read_run
from needsled.report import headline

runner = CliRunner()
SCENARIOS = ["baseline", "reports-up-20pc"]
CHARTS = {
    "waiting.png",
    "shortfall.png",
    *(f"{kind}-{sc}.png" for kind in ("demand", "waterfall") for sc in SCENARIOS),
}


def _placeholder() -> None:
    """A second command, so that Typer keeps ``report`` as a named command."""


def _app() -> typer.Typer:
    """The real command line once ``report`` is registered there; until then, a stand-in."""
    from needsled.cli import app

    if any(c.name == "report" or c.callback is report for c in app.registered_commands):
        return app
    local = typer.Typer(add_completion=False)
    local.command("report")(report)
    local.command("placeholder")(_placeholder)
    return local


@dataclass(frozen=True)
class Run:
    folder: Path
    original_html: str  # report.html as the run wrote it, before ``report`` re-rendered it
    output: str  # what ``report --png --excel`` printed


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("report")
    model = needsled.example(root / "model")
    folder = root / "run"
    needsled.run(model, SCENARIOS, replicates=20).save(folder)
    original = (folder / "report.html").read_text(encoding="utf-8")
    result = runner.invoke(_app(), ["report", str(folder), "--png", "--excel"])
    assert result.exit_code == 0, result.output
    return Run(folder, original, result.output)


@pytest.fixture(scope="module")
def workbook(run: Run) -> Workbook:
    return openpyxl.load_workbook(run.folder / "results.xlsx")


def _headlines(page: str) -> list[str]:
    return [
        html.unescape(li)
        for block in re.findall(r'<ul class="headline">(.*?)</ul>', page, re.S)
        for li in re.findall(r"<li>(.*?)</li>", block, re.S)
    ]


def test_read_run_round_trips(run: Run) -> None:
    inp = read_run(run.folder)
    assert inp.model_name == "model"
    assert list(inp.manifest["scenarios"]) == SCENARIOS  # type: ignore[call-overload]
    assert inp.suppressed
    lines = [line for sc in SCENARIOS for line in headline(inp, sc)]
    assert len(lines) >= 2 * 6  # a sentence per service and scenario
    assert _headlines(run.original_html) == lines
    rebuilt = (run.folder / "report.html").read_text(encoding="utf-8")
    assert _headlines(rebuilt) == lines
    assert rebuilt == run.original_html  # the folder holds everything the report shows
    assert "Report:" in run.output
    assert "Workbook:" in run.output


def test_report_html_needs_no_network(run: Run) -> None:
    page = (run.folder / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*\shref\s*=", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page, re.I)
    assert "vegaEmbed" in page


def _png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG, after checking every chunk's CRC and the image data."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append(kind)
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    assert chunks[0] == b"IHDR"
    assert chunks[-1] == b"IEND"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    assert depth == 8
    assert len(zlib.decompress(idat)) == height * (1 + width * channels)
    return width, height


def test_png_per_chart_at_slide_size(run: Run) -> None:
    pngs = {p.name: p for p in (run.folder / "charts").glob("*.png")}
    assert set(pngs) == CHARTS
    for name, path in pngs.items():
        data = path.read_bytes()
        assert _png_size(data) == (1600, 900), name
        assert len(data) > 20_000, f"{name} looks empty"


def test_excel_sheets_and_cover(workbook: Workbook) -> None:
    assert workbook.sheetnames == list(SHEETS)
    cover = "\n".join(
        str(v) for row in workbook["Cover"].iter_rows(values_only=True) for v in row if v
    )
    assert "20240401" in cover  # the seed
    assert "baseline, reports-up-20pc" in cover
    assert "results.csv" in cover  # where the full results table is
    assert "Suppression\non" in cover
    assert "waiting list reaches" in cover  # the headline sentences
    for name in SHEETS:
        if name == "Cover":
            continue
        ws = workbook[name]
        assert ws.freeze_panes == "A2", name
        assert ws.auto_filter.ref == f"A1:{ws.cell(1, ws.max_column).column_letter}{ws.max_row}"
        assert ws.cell(1, 1).font.b, name


def _rows(ws: Worksheet) -> pd.DataFrame:
    values = list(ws.iter_rows(values_only=True))
    return pd.DataFrame(values[1:], columns=values[0])


def test_excel_summary_matches_csv_with_formats(run: Run, workbook: Workbook) -> None:
    csv = pd.read_csv(run.folder / "summary.csv", dtype={"year": str, "area": str})
    ws = workbook["Summary"]
    sheet = _rows(ws)
    assert len(sheet) == len(csv)
    stats = ["mean", "p10", "p50", "p90", "deterministic"]
    for c in ["scenario", "year", "service", "area", "metric", *stats]:
        pd.testing.assert_series_equal(sheet[c], csv[c], check_dtype=False, obj=c)
    mean_col = list(sheet.columns).index("mean") + 1
    expected = {
        "referrals": "#,##0",
        "waiting": "#,##0",
        "within_target_share": "0.0%",
        "fte_shortfall": "0.0",
        "cost_shortfall": "£#,##0",
    }
    for metric, fmt in expected.items():
        i = int(csv.index[csv["metric"] == metric][0])
        assert ws.cell(i + 2, mean_col).number_format == fmt, metric
        assert ws.cell(i + 2, mean_col + 3).number_format == fmt, metric  # p90
    assert sheet.loc[0, "area_name"] == "Barking and Dagenham"


def test_excel_shortfall_and_results(run: Run, workbook: Workbook) -> None:
    summary = pd.read_csv(run.folder / "summary.csv", dtype={"year": str, "area": str})
    ws = workbook["Shortfall"]
    short = _rows(ws)
    keys = ["scenario", "year", "service", "area"]
    assert list(short.columns[:4]) == keys
    indexed = summary.set_index([*keys, "metric"]).sort_index()
    for i in (0, 7, len(short) // 2, len(short) - 1):
        row = short.iloc[i]
        pick = indexed.loc[tuple(row[keys])]
        assert row["fte_short_mean"] == pick.loc["fte_shortfall", "mean"]
        assert row["fte_short_p90"] == pick.loc["fte_shortfall", "p90"]
        assert row["cost_short_mean"] == pick.loc["cost_shortfall", "mean"]
        assert row["cost_short_p10"] == pick.loc["cost_shortfall", "p10"]
    columns = list(short.columns)
    assert ws.cell(2, columns.index("fte_short_mean") + 1).number_format == "0.0"
    assert ws.cell(2, columns.index("cost_short_p90") + 1).number_format == "£#,##0"

    results = pd.read_csv(run.folder / "results.csv", engine="pyarrow")
    everywhere = results.loc[results["area"] == "ALL"].reset_index(drop=True)
    ws = workbook["Results all areas"]
    sheet = _rows(ws)
    assert len(sheet) == len(everywhere) < len(results)
    for i in (0, 1, 100, len(sheet) - 1):
        got, want = sheet.iloc[i], everywhere.iloc[i]
        assert got["month"].strftime("%Y-%m") == want["month"]
        for c in ("scenario", "service", "metric", "mean", "p10", "p90", "deterministic"):
            assert got[c] == want[c], (i, c)
    assert ws.cell(2, 3).number_format == "mmm yyyy"
    share = int(everywhere.index[everywhere["metric"] == "utilisation"][0])
    assert ws.cell(share + 2, 5).number_format == "0.0%"


def test_excel_tables_match_csvs(run: Run, workbook: Workbook) -> None:
    water = pd.read_csv(run.folder / "waterfall.csv", dtype={"area": str})
    sheet = _rows(workbook["Waterfall"])
    for c in water.columns:
        pd.testing.assert_series_equal(sheet[c], water[c], check_dtype=False, obj=c)
    queue = pd.read_csv(run.folder / "queueing.csv", dtype={"area": str})
    sheet = _rows(workbook["Queueing checks"])
    for c in ("scenario", "year", "area", "service", "load", "statement"):
        pd.testing.assert_series_equal(sheet[c], queue[c], check_dtype=False, obj=c)
    assert workbook["Queueing checks"]["H2"].number_format == "0.00"  # load
    assumptions = pd.read_csv(run.folder / "assumptions.csv", dtype=str, keep_default_na=False)
    sheet = _rows(workbook["Assumptions"])
    assert sheet.to_numpy().tolist() == assumptions.to_numpy().tolist()


def test_excel_observed_is_suppressed_text(run: Run, workbook: Workbook) -> None:
    csv = pd.read_csv(run.folder / "observed.csv", dtype=str, keep_default_na=False)
    cells = list(workbook["Observed"].iter_rows(min_row=2, values_only=True))
    assert [list(r) for r in cells] == csv.to_numpy().tolist()
    counts = [v for row in cells for v in row[1:]]
    assert "<5" in counts
    assert all(isinstance(v, str) for v in counts)
    assert not {"1", "2", "3", "4"} & set(counts)


def test_report_missing_folder_exits_1_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-run"
    result = runner.invoke(_app(), ["report", str(missing)])
    assert result.exit_code == 1
    assert str(missing) in result.output
    assert "does not exist" in result.output


def test_report_on_model_folder_names_the_manifest(run: Run) -> None:
    model = run.folder.parent / "model"
    result = runner.invoke(_app(), ["report", str(model)])
    assert result.exit_code == 1
    assert str(model / "manifest.json") in result.output
    assert "not a needsled run folder" in result.output
    assert not (model / "report.html").exists()


def test_report_lists_every_missing_or_bad_file(run: Run, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("manifest.json", "results.parquet", "waterfall.csv", "observed.csv"):
        shutil.copy(run.folder / name, broken / name)
    (broken / "assumptions.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    result = runner.invoke(_app(), ["report", str(broken), "--excel"])
    assert result.exit_code == 1
    for name in ("summary.csv", "queueing.csv", "assumptions.csv"):
        assert str(broken / name) in result.output, name
    assert "waterfall.csv" not in result.output
    assert not (broken / "report.html").exists()
    assert not (broken / "results.xlsx").exists()
    with pytest.raises(InputError, match=r"summary\.csv: is missing"):
        read_run(broken)


def test_demo_parent_folder_gets_a_hint(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="did you mean"):
        read_run(tmp_path)
