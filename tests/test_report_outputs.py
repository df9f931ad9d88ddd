"""``needsled report RUN_DIR``: the report, slide PNGs and Excel rebuilt from a run folder.

One run of the built-in example (two scenarios, few replicates) is made per module and
``report --png --excel`` is run on it once; the tests then read what it wrote.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet
from typer.testing import CliRunner

import needsled
from needsled.cli import app
from needsled.errors import InputError
from needsled.io import report_out
from needsled.io.excel_out import SHEETS
from needsled.io.report_worker import Helper
from needsled.io.run_dir import read_run
from needsled.report import headline

runner = CliRunner()
SCENARIOS = ["baseline", "reports-up-20pc"]
CHARTS = {
    "waiting.png",
    "waits.png",
    "scenario-shortfall.png",
    "shortfall.png",
    "map.png",
    "waterfall.png",
    *(f"demand-{sc}.png" for sc in SCENARIOS),
}


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
    needsled.run(model, SCENARIOS, replicates=20).save(folder, pdf=False)  # PDF: test_report_pdf
    original = (folder / "report.html").read_text(encoding="utf-8")
    result = runner.invoke(app, ["report", str(folder), "--png", "--excel"])
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
    assert inp.model_name == "London example (synthetic)"  # the title in scenarios.yaml
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


def test_waits_are_drawn_against_each_services_target(run: Run) -> None:
    inp = read_run(run.folder)
    # the example's target waits (services.csv), as the assumptions table carries them
    services = pd.read_csv(run.folder.parent / "model" / "services.csv")
    assert inp.target_waits == dict(
        zip(services["service"], services["target_wait_weeks"].astype(float), strict=True)
    )
    spec = _specs((run.folder / "report.html").read_text(encoding="utf-8"))["waits"]
    rows = pd.DataFrame(_rows_of(spec))
    assert set(rows["target"].groupby(rows["service"]).unique().map(tuple)) == {
        (inp.target_waits[c],) for c in rows["service"].unique()
    }
    # IDVAs take every referral (nobody waits): no panel; every service with a list has one
    res = inp.everywhere
    waited = res[res["metric"] == "mean_wait_weeks"].groupby("service")["p90"].max()
    assert set(rows["service"]) == set(waited[waited > 0].index)
    assert "IDVA" not in set(rows["service"])
    # the average wait shown is the run's own figure
    isva = res[(res["metric"] == "mean_wait_weeks") & (res["service"] == "ISVA")]
    shown = rows[rows["service"] == "ISVA"]
    assert len(shown) == len(isva)
    assert shown["mean"].tolist() == isva["mean"].tolist()


def test_report_html_needs_no_network(run: Run) -> None:
    page = (run.folder / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]*\ssrc\s*=", page, re.I)
    assert not re.search(r"<link[^>]*\shref\s*=", page, re.I)
    assert not re.search(r"<img[^>]*\ssrc\s*=\s*['\"]?(https?:)?//", page, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", page, re.I)
    assert "vegaEmbed" in page
    # every chart the page draws has its element, and every element a chart
    specs = _specs(page)
    assert set(re.findall(r'id="chart-([^"]+)"', page)) == set(specs)
    assert {f"{k}.png" for k in specs} == CHARTS


def _specs(page: str) -> dict[str, dict[str, Any]]:
    found = re.search(r"const SPECS = (\{.*?\});\n", page, re.S)
    assert found, "no chart specs in the page"
    specs: dict[str, dict[str, Any]] = json.loads(found.group(1).replace("<\\/", "</"))
    return specs


def _rows_of(spec: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for values in spec.get("datasets", {}).values():
        rows += values
    return rows


def test_scenario_charts_hold_every_scenario(run: Run) -> None:
    specs = _specs((run.folder / "report.html").read_text(encoding="utf-8"))
    summary = pd.read_csv(run.folder / "summary.csv", dtype={"year": str, "area": str})
    year = summary["year"].max()
    waiting = _rows_of(specs["waiting"])
    assert {r["scenario"] for r in waiting} == set(SCENARIOS)
    assert {r["month"] for r in waiting} == set(
        pd.read_parquet(run.folder / "results.parquet")["month"].astype(str)
    )
    short = pd.DataFrame(_rows_of(specs["scenario-shortfall"]))
    assert set(short["scenario"]) == set(SCENARIOS)
    assert set(short["measure"]) == {"Staff short (FTE)", "Cost a year (£ thousand)"}
    # each bar is the summary's figure for all areas in the last year (money in £ thousand)
    want = summary.loc[(summary["area"] == "ALL") & (summary["year"] == year)].set_index(
        ["scenario", "service", "metric"]
    )
    for row in short.itertuples():
        scale = 1e3 if row.metric == "cost_shortfall" else 1.0
        expected = want.loc[(row.scenario, row.service, row.metric)]
        assert row.mean * scale == pytest.approx(expected["mean"], rel=1e-9, abs=1e-9)
        assert row.p10 * scale == pytest.approx(expected["p10"], rel=1e-9, abs=1e-9)
        assert row.p90 * scale == pytest.approx(expected["p90"], rel=1e-9, abs=1e-9)
    assert len(short) == 2 * len(SCENARIOS) * want.index.get_level_values("service").nunique()
    water = _rows_of(specs["waterfall"])
    assert {r["scenario"] for r in water} == set(SCENARIOS)


def test_map_is_the_london_tile_map_of_fte_short(run: Run) -> None:
    specs = _specs((run.folder / "report.html").read_text(encoding="utf-8"))
    tiles = pd.DataFrame(_rows_of(specs["map"]))
    assert len(tiles) == 33  # 32 boroughs in the example and the City of London
    assert tiles["area"].is_unique
    summary = pd.read_csv(run.folder / "summary.csv", dtype={"year": str, "area": str})
    year = summary["year"].max()
    sel = (
        (summary["metric"] == "fte_shortfall")
        & (summary["scenario"] == SCENARIOS[0])
        & (summary["year"] == year)
        & (summary["area"] != "ALL")
    )
    want = summary.loc[sel].groupby("area")["mean"].sum()
    got = tiles.set_index("area")["value"]
    assert got["E09000001"] is None or pd.isna(got["E09000001"])  # not in the example
    for code, value in want.items():
        assert got[code] == pytest.approx(value, rel=1e-9), code
    page = (run.folder / "report.html").read_text(encoding="utf-8")
    assert "Grey tiles are not areas of this model: City of London." in page


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
    result = runner.invoke(app, ["report", str(missing)])
    assert result.exit_code == 1
    assert str(missing) in result.output
    assert "does not exist" in result.output


def test_report_on_model_folder_names_the_manifest(run: Run) -> None:
    model = run.folder.parent / "model"
    result = runner.invoke(app, ["report", str(model)])
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
    result = runner.invoke(app, ["report", str(broken), "--excel"])
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


def test_report_with_geojson_draws_and_keeps_boundaries(
    run: Run, tmp_path: Path, shared_data: Path
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run.folder, copy, ignore=shutil.ignore_patterns("charts", "*.xlsx"))
    source = shared_data / "geo" / "london_boroughs.geojson"
    result = runner.invoke(app, ["report", str(copy), "--geojson", str(source)])
    assert result.exit_code == 0, result.output
    kept = copy / "boundaries.geojson"
    assert 0 < kept.stat().st_size < source.stat().st_size / 10  # simplified
    page = (copy / "report.html").read_text(encoding="utf-8")
    features = _rows_of(_specs(page)["map"])
    assert {f["properties"]["area"] for f in features} == set(read_run(copy).area_names)
    assert "32 of 32 areas matched by name in property &#39;BOROUGH&#39;" in page
    assert "match no area of the model (not drawn): feature 7 (City of London)" in page
    # a rebuild without --geojson draws the same map from the boundaries the folder kept
    again = runner.invoke(app, ["report", str(copy)])
    assert again.exit_code == 0, again.output
    assert (copy / "report.html").read_text(encoding="utf-8") == page


def test_report_with_bad_geojson_names_the_file_and_writes_nothing(
    run: Run, tmp_path: Path
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run.folder, copy, ignore=shutil.ignore_patterns("charts", "*.xlsx"))
    before = (copy / "report.html").stat().st_mtime_ns
    bad = tmp_path / "areas.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": [', encoding="utf-8")
    result = runner.invoke(app, ["report", str(copy), "--geojson", str(bad), "--pdf"])
    assert result.exit_code == 1
    assert str(bad) in result.output
    assert "is not valid JSON" in result.output
    assert "Fix: export the boundaries again as GeoJSON" in result.output
    assert "Traceback" not in result.output
    assert (copy / "report.html").stat().st_mtime_ns == before
    assert not (copy / "report.pdf").exists()
    assert not (copy / "boundaries.geojson").exists()


class _StoppedHelper(Helper):
    """A helper process that dies at once, as one killed by the system would."""

    def __init__(self) -> None:
        super().__init__()
        self._process.kill()


def test_a_helper_that_stops_changes_nothing(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run.folder, copy, ignore=shutil.ignore_patterns("charts", "*.xlsx"))
    monkeypatch.setattr(report_out, "Helper", _StoppedHelper)
    monkeypatch.setattr(report_out.os, "cpu_count", lambda: 2)
    done = report_out.write_report(read_run(copy), copy, png=True, excel=True)
    assert done.excel is not None
    assert _rows(openpyxl.load_workbook(done.excel)["Summary"]).equals(
        _rows(openpyxl.load_workbook(run.folder / "results.xlsx")["Summary"])
    )
    # the same images as the command line made with a working helper, byte for byte
    made = {p.name: p.read_bytes() for p in done.pngs}
    assert set(made) == CHARTS
    for name, data in made.items():
        assert data == (run.folder / "charts" / name).read_bytes(), name
