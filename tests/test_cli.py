"""The command line end to end on the built-in example (few replicates to stay quick)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from _privacy_audit import disclosed
from needsled.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(app, ["demo", "--out", str(out), "--replicates", "40"])
    assert result.exit_code == 0, result.output
    assert "Report:" in result.output
    assert "PDF:" in result.output  # demo writes the PDF by default
    return out


def test_demo_writes_every_output(demo: Path) -> None:
    res = demo / "results"
    for name in (
        "results.parquet",
        "results.csv",
        "summary.csv",
        "waterfall.csv",
        "queueing.csv",
        "manifest.json",
        "report.html",
        "report.pdf",
        "observed.csv",
    ):
        assert (res / name).stat().st_size > 0, name
    table = pd.read_parquet(res / "results.parquet")
    assert set(table["scenario"].astype(str)) >= {"baseline", "reports-up-20pc", "opt-out-referral"}
    assert table["area"].nunique() == 33  # 32 boroughs and all areas together
    assert table["service"].nunique() == 6
    csv = pd.read_csv(res / "results.csv", nrows=5)
    assert list(csv.columns[:9]) == [
        "scenario",
        "area",
        "service",
        "month",
        "metric",
        "mean",
        "p10",
        "p50",
        "p90",
    ]


def test_demo_and_run_offer_the_report_options() -> None:
    for command in ("demo", "run"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        assert "--no-pdf" in result.output
        assert "--geojson" in result.output


def test_observed_counts_are_suppressed_so_none_can_be_worked_out(demo: Path) -> None:
    """observed.csv, as written, read by an attacker: the example's starting waiting lists
    include counts of 1 to 4, and none of them, nor any count hidden to protect them, can be
    worked out from the rest of the published table."""
    published = pd.read_csv(demo / "results" / "observed.csv", index_col=0, dtype=str)
    given = pd.read_csv(demo / "model" / "staffing.csv")
    small = given["waiting_start"].between(1, 4)
    assert small.any(), "the example should exercise suppression"
    body = published.drop(index="Total", columns="Total")
    assert (body == "<5").sum().sum() == small.sum()  # "<5" exactly where 1 to 4 was given
    assert disclosed(published) == []


def test_scenarios_move_demand_the_right_way(demo: Path) -> None:
    s = pd.read_csv(demo / "results" / "summary.csv")
    s = s[(s["area"] == "ALL") & (s["metric"] == "referrals") & (s["service"] == "ISVA")]
    total = s.groupby("scenario")["deterministic"].sum()
    assert total["reports-up-20pc"] > total["baseline"] * 1.05
    assert total["opt-out-referral"] > total["baseline"] * 1.1
    assert total["court-delays"] == pytest.approx(total["baseline"], rel=1e-6)


def test_manifest_is_enough_to_reproduce(demo: Path) -> None:
    man = json.loads((demo / "results" / "manifest.json").read_text())
    assert man["seed"] == 20240401
    assert man["replicates"] == 40
    # every file of the model (its tables and scenarios.yaml) is hashed
    assert {Path(p).name for p in man["inputs"]} == {p.name for p in (demo / "model").iterdir()}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in man["inputs"].values())
    assert man["command"].startswith("needsled demo")


def test_report_is_self_contained(demo: Path) -> None:
    html = (demo / "results" / "report.html").read_text()
    assert not re.search(r"<script[^>]+src=", html)
    assert not re.search(r"<link[^>]+href=\"?https?:", html)
    assert "vegaEmbed" in html
    assert re.search(r"By March 2030 the .+ waiting list reaches [\d,]+ \([\d,]+–[\d,]+\)", html)


def test_observed_counts_are_suppressed(demo: Path) -> None:
    obs = pd.read_csv(demo / "results" / "observed.csv", dtype=str)
    values = obs.drop(columns="area").to_numpy().ravel()
    assert not any(v in {"1", "2", "3", "4"} for v in values)


def test_run_rejects_an_unknown_scenario(demo: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "run",
            str(demo / "model"),
            "--out",
            str(tmp_path),
            "--scenario",
            "nope",
            "--replicates",
            "5",
        ],
    )
    assert result.exit_code == 2
    assert "No scenario named nope" in result.output


def test_validate_ok_and_template(demo: Path, tmp_path: Path) -> None:
    ok = runner.invoke(app, ["validate", str(demo / "model")])
    assert ok.exit_code == 0
    assert "32 areas" in ok.output
    book = tmp_path / "model.xlsx"
    assert runner.invoke(app, ["template", str(book)]).exit_code == 0
    again = runner.invoke(app, ["template", str(book)])
    assert again.exit_code == 1  # never overwrites a user's file
