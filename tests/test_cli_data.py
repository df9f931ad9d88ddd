"""Tests for ``needsled import met-crime``, ``needsled backtest`` and ``needsled funding-shares``.

The commands are registered on a small Typer app here, as ``needsled.cli`` registers them.
Real-data tests use the ``shared_data`` fixture (``conftest.py``); the others write small
hand-made files into ``tmp_path``, so the import path is also exercised without real data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner, Result

import needsled
from needsled.cli_data import backtest, data_app, funding_shares
from needsled.example import ADULT_SHARE, BOROUGHS
from needsled.io.load import load_model
from needsled.sources.ons_pfa import TERRITORIAL_PFAS

app = typer.Typer()
app.add_typer(data_app)
app.command()(backtest)
app.command()(funding_shares)
runner = CliRunner()

MET_DIR = "london_mps_borough"
MET_FILES = (
    "MPS_Borough_Level_Crime_Historical_201004-202201.csv",
    "MPS_Borough_Level_Crime_recent24m_202202-202401.csv",
    "MPS_Borough_Level_Crime_Historical_newformat_201004-202302.csv",
    "MPS_Borough_Level_Crime_recent24m_newformat_202303-202502.csv",
)
POPULATION = (
    "population/london_borough_population_2011-2022_GLA.csv",
    "population/london_borough_population_2023-2024_GLA.csv",
)
PFA_CRIME = "ew_pfa/rec-crime-pfa.csv"
BACKTEST_COLUMNS = ["series", "offence", "method", "origin", "horizon", "mase", "coverage80"]


def invoke(*args: object) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result: Result, *expected: str) -> None:
    """Exit code 1, a message naming what is wrong, and no traceback."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for text in expected:
        assert text in result.output, (text, result.output)


def write_met(
    path: Path, first: str, n_months: int, *, seed: int = 1, boroughs: Sequence[str] | None = None
) -> Path:
    """A small new-format MPS borough file: rape and other sexual offences, plus Unknown."""
    rng = np.random.default_rng(seed)
    months = pd.period_range(first, periods=n_months, freq="M").strftime("%Y%m").tolist()
    names = [*(boroughs or [n for _, n, _ in BOROUGHS]), "Unknown"]
    lines = [",".join(["MajorText", "MinorText", "BoroughName", *months])]
    for minor, mean in (("RAPE", 20), ("OTHER SEXUAL OFFENCES", 35)):
        for name in names:
            counts = rng.poisson(mean, n_months)
            lines.append(",".join(["SEXUAL OFFENCES", minor, name, *map(str, counts)]))
    lines.append(",".join(["THEFT", "SHOPLIFTING", names[0], *["7"] * n_months]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def london(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The real London model imported from the four Met files and both GLA files."""
    folder = tmp_path_factory.mktemp("london") / "model"
    pop = [x for p in POPULATION for x in ("--population", shared_data / p)]
    result = invoke(
        "import",
        "met-crime",
        *(shared_data / MET_DIR / f for f in MET_FILES),
        "--out",
        folder,
        *pop,
    )
    assert result.exit_code == 0, result.output
    return folder, result.output


@pytest.mark.realdata
def test_import_real_met_files_writes_a_runnable_london_model(
    london: tuple[Path, str], shared_data: Path
) -> None:
    folder, output = london
    model = load_model(folder)
    assert len(model.area_codes) == 32
    assert all(c.startswith("E09") for c in model.area_codes)
    assert "E09000001" not in model.area_codes  # City of London: a separate force
    assert model.offence_codes == ("RAPE", "OSO")
    assert model.history_end == "2025-02"
    assert model.crime_history.shape == (32, 2, 179)  # 2010-04 .. 2025-02
    assert set(model.services.codes) == {"ISVA", "COUNSELLING", "ESS", "CYP_ISVA", "BY_AND_FOR"}
    assert "IDVA" not in (folder / "staffing.csv").read_text()
    assert "DA" not in set(pd.read_csv(folder / "need_mix.csv")["offence"])
    assert [s.name for s in model.scenarios] == [
        "baseline",
        "reports-up-20pc",
        "opt-out-referral",
        "court-delays",
    ]
    # Rape in 2024: 8,450 placed in boroughs plus the 350 'Unknown' shared among them = 8,800,
    # the published MPS total of 8,805 less the 5 at the airports (not shared out).
    rape_2024 = model.crime_history[:, 0, 165:177].sum()
    assert rape_2024 == 8800
    assert re.search(r"\n  2024 +12 +8,450 +355 +16,099 +522\n", output)
    assert "Unknown 12,958" in output
    assert "Unknown: shared among the boroughs in the model" in output
    assert "2010-04 to 2023-02: MPS_Borough_Level_Crime_Historical_newformat" in output
    assert "2023-03 to 2025-02: MPS_Borough_Level_Crime_recent24m_newformat" in output
    assert "GLA 2024 borough population x 0.79" in output
    assert (folder / "IMPORT.md").read_text().startswith("# How this model was built")
    # Adults = the GLA 2024 population x 0.79.
    gla = pd.read_csv(shared_data / POPULATION[1], encoding="utf-8-sig")
    barnet = int(gla.loc[gla["Code"] == "E09000003", "2024_Population"].iloc[0])
    areas = pd.read_csv(folder / "areas.csv").set_index("area_code")
    assert areas.loc["E09000003", "adult_population"] == round(barnet * 0.79)

    run = needsled.run(folder, replicates=20)
    summary = run.summary
    assert set(summary["service"]) == set(model.services.codes)
    assert np.isfinite(summary["p50"]).all()


@pytest.mark.realdata
def test_backtest_on_the_imported_model(london: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = london
    result = invoke("backtest", folder, "--horizon", 12, "--origins", 2, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "backtest.csv")
    assert list(table.columns) == BACKTEST_COLUMNS
    assert set(table["method"]) == {"seasonal_naive", "mean", "pooled_ets"}
    assert set(table["series"]) == {"ALL", *load_model(folder).area_codes}
    assert set(table["offence"]) == {"RAPE", "OSO"}
    assert sorted(set(table["origin"])) == ["2023-12", "2024-03"]  # first held-out month
    assert (table["horizon"] == 12).all()
    assert len(table) == 2 * 3 * 2 * 33  # origins x methods x offences x (32 boroughs + ALL)
    assert (table["mase"] > 0).all()
    assert (table["mase"] < 10).all()
    assert table["coverage80"].between(0, 1).all()
    summary = (tmp_path / "backtest-summary.md").read_text()
    assert "pooled_ets (default)" in summary
    assert "seasonal naive in" in summary
    assert "seasonal naive in" in result.output


@pytest.mark.realdata
def test_funding_shares_reproduces_the_documented_london_figures(
    shared_data: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "shares.csv"
    result = invoke(
        "funding-shares",
        "--pfa-crime",
        shared_data / PFA_CRIME,
        "--year-ending",
        "2018-03-31",
        "--out",
        out_file,
    )
    assert result.exit_code == 0, result.output
    assert "all crime 17.05%, sexual offences 13.30%" in result.output
    assert "MoJ victims' grant share 14.69%" in result.output
    shares = pd.read_csv(out_file)
    assert len(shares) == 43
    london = shares[shares["pfa_code"].isin(["E23000001", "E23000034"])]
    assert london["share_all_crime"].sum() == pytest.approx(0.1705, abs=0.0005)
    assert london["share_sexual_offences"].sum() == pytest.approx(0.1330, abs=0.0005)
    for col in ("share_all_crime", "share_sexual_offences", "share_need_weighted"):
        assert shares[col].sum() == pytest.approx(1.0)


@pytest.mark.realdata
def test_funding_shares_with_population_and_weights_files(
    shared_data: Path, tmp_path: Path
) -> None:
    pop = tmp_path / "pop.csv"
    rows = [f"{name},1000" for name in TERRITORIAL_PFAS]
    rows[0] = "E23000001,7000"  # the Met by code: 7000 / (42 * 1000 + 7000)
    pop.write_text("pfa,population\n" + "\n".join(rows) + "\n", encoding="utf-8")
    weights = tmp_path / "weights.csv"
    weights.write_text("offence,weight\nShoplifting,0\n", encoding="utf-8")
    out_file = tmp_path / "shares.csv"
    result = invoke(
        "funding-shares",
        "--pfa-crime",
        shared_data / PFA_CRIME,
        "--year-ending",
        "2013-03-31",
        "--population",
        pop,
        "--weights",
        weights,
        "--out",
        out_file,
    )
    assert result.exit_code == 0, result.output
    assert "all crime 21.40%" in result.output
    assert f"population {(7000 + 1000) / 49000:.2%}" in result.output
    shares = pd.read_csv(out_file).set_index("pfa_code")
    assert shares.loc["E23000001", "share_population"] == pytest.approx(7000 / 49000)

    bad = tmp_path / "bad-weights.csv"
    bad.write_text("offence,weight\nPiracy,3\n", encoding="utf-8")
    result = invoke(
        "funding-shares",
        "--pfa-crime",
        shared_data / PFA_CRIME,
        "--year-ending",
        "2013-03-31",
        "--weights",
        bad,
        "--out",
        out_file,
    )
    assert_clean_failure(result, str(bad), "Piracy")

    result = invoke(
        "funding-shares",
        "--pfa-crime",
        shared_data / PFA_CRIME,
        "--year-ending",
        "2018-03-30",
        "--out",
        out_file,
    )
    assert_clean_failure(result, "2018-03-30 is not in the data", "2018-03-31")


# --------------------------------------------------------------------------- hand-made files


def test_import_small_met_file_then_run(tmp_path: Path) -> None:
    met = write_met(tmp_path / "met.csv", "2021-01", 30)
    folder = tmp_path / "model"
    result = invoke("import", "met-crime", met, "--out", folder, "--offences", "rape")
    assert result.exit_code == 0, result.output
    model = load_model(folder)
    assert model.offence_codes == ("RAPE",)
    assert len(model.area_codes) == 32
    assert model.history_end == "2023-06"
    assert "built-in GLA 2022" in result.output
    areas = pd.read_csv(folder / "areas.csv")
    assert areas["adult_population"].iloc[0] == round(BOROUGHS[0][2] * ADULT_SHARE, -2)
    unknown = pd.read_csv(met)
    n_unknown = (
        unknown.loc[(unknown["BoroughName"] == "Unknown") & (unknown["MinorText"] == "RAPE")]
        .iloc[:, 3:]
        .to_numpy()
        .sum()
    )
    assert f"RAPE: {n_unknown:,} offences" in result.output
    # The opt-out scenario keeps only RAPE; services only rape victims need are kept.
    text = (folder / "scenarios.yaml").read_text()
    assert "OSO" not in text
    assert "- RAPE" in text
    assert "IDVA" not in set(pd.read_csv(folder / "services.csv")["service"])
    assert needsled.run(folder, scenarios=["baseline"], replicates=5).summary.shape[0] > 0

    again = invoke("import", "met-crime", met, "--out", folder)
    assert_clean_failure(again, f"{folder} is not an empty folder")


def test_import_refuses_a_file_that_is_not_a_met_file(tmp_path: Path) -> None:
    bad = tmp_path / "not-met.csv"
    bad.write_text("Borough,Month,Count\nCamden,2024-01,3\n", encoding="utf-8")
    result = invoke("import", "met-crime", bad, "--out", tmp_path / "model")
    assert_clean_failure(result, str(bad), "expected header 'MajorText'", "How to fix")
    assert not (tmp_path / "model").exists()

    bad.write_bytes(b"MajorText,MinorText,BoroughName,202401\n\xff\xfe,RAPE,Camden,1\n")
    result = invoke("import", "met-crime", bad, "--out", tmp_path / "model")
    assert_clean_failure(result, str(bad), "not UTF-8")

    bad.write_text(
        "MajorText,MinorText,BoroughName,202401,202402\nSEXUAL OFFENCES,RAPE,Camden,3,x\n",
        encoding="utf-8",
    )
    result = invoke("import", "met-crime", bad, "--out", tmp_path / "model")
    assert_clean_failure(result, str(bad), "row 2", "'x'")


def test_import_input_errors(tmp_path: Path) -> None:
    met = write_met(tmp_path / "met.csv", "2021-01", 30)
    out = tmp_path / "model"
    result = invoke("import", "met-crime", tmp_path / "missing.csv", "--out", out)
    assert_clean_failure(result, "missing.csv does not exist")
    result = invoke("import", "met-crime", met, "--out", out, "--offences", "RAPE,BURGLARY")
    assert_clean_failure(result, "'BURGLARY' not found", "OTHER SEXUAL OFFENCES")
    result = invoke("import", "met-crime", met, "--out", out, "--from", "2022")
    assert_clean_failure(result, "--from '2022' is not a month", "YYYY-MM")
    result = invoke("import", "met-crime", met, "--out", out, "--from", "2022-06")
    assert_clean_failure(result, "only 13 months of history", "at least 24")
    pop = tmp_path / "pop.csv"
    pop.write_text(
        "Code,Area name,2024_Population\nE09000002,Barking and Dagenham,1\n", encoding="utf-8"
    )
    result = invoke("import", "met-crime", met, "--out", out, "--population", pop)
    assert_clean_failure(result, str(pop), "no 2024 population for 31 borough(s)")
    assert not out.exists()


def test_import_reports_months_no_file_covers(tmp_path: Path) -> None:
    early = write_met(tmp_path / "early.csv", "2019-01", 24, seed=2)
    late = write_met(tmp_path / "late.csv", "2022-01", 30, seed=3)
    result = invoke("import", "met-crime", early, late, "--out", tmp_path / "model")
    assert_clean_failure(result, "no file covers 12 month(s)", "2021-01", "--from")
    result = invoke(
        "import", "met-crime", early, late, "--out", tmp_path / "model", "--from", "2022-01"
    )
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "model").history_end == "2024-06"


def test_backtest_input_errors(tmp_path: Path) -> None:
    result = invoke("backtest", tmp_path / "nope", "--out", tmp_path / "bt")
    assert_clean_failure(result, "nope does not exist")
    model = tmp_path / "model"
    assert (
        invoke(
            "import", "met-crime", write_met(tmp_path / "m.csv", "2021-01", 40), "--out", model
        ).exit_code
        == 0
    )
    result = invoke("backtest", model, "--out", tmp_path / "bt", "--methods", "prophet")
    assert_clean_failure(result, "unknown method(s) prophet", "seasonal_naive")
    result = invoke("backtest", model, "--out", tmp_path / "bt", "--origins", 9)
    assert_clean_failure(result, "allows at most 2 origins")
    result = invoke("backtest", model, "--out", tmp_path / "bt", "--horizon", 24)
    assert_clean_failure(result, "too short to backtest")
    (model / "areas.csv").write_text("area_code,area_name\n", encoding="utf-8")
    result = invoke("backtest", model, "--out", tmp_path / "bt")
    assert_clean_failure(result, "areas.csv")
    assert not (tmp_path / "bt").exists()


def test_backtest_small_model(tmp_path: Path) -> None:
    model = tmp_path / "model"
    met = write_met(tmp_path / "m.csv", "2021-01", 40, boroughs=["Camden", "Hackney", "Brent"])
    assert invoke("import", "met-crime", met, "--out", model).exit_code == 0
    result = invoke(
        "backtest",
        model,
        "--out",
        tmp_path / "bt",
        "--horizon",
        6,
        "--origins",
        2,
        "--methods",
        "seasonal_naive,mean",
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "bt" / "backtest.csv")
    assert list(table.columns) == BACKTEST_COLUMNS
    assert set(table["series"]) == {"ALL", "E09000005", "E09000007", "E09000012"}
    assert sorted(set(table["origin"])) == ["2023-08", "2023-11"]
    assert "not compared" in result.output


def test_funding_shares_input_errors(tmp_path: Path) -> None:
    out_file = tmp_path / "shares.csv"
    bad = tmp_path / "pfa.csv"
    bad.write_text("PFA,Offence,Count\nKent,Robbery,3\n", encoding="utf-8")
    result = invoke(
        "funding-shares", "--pfa-crime", bad, "--year-ending", "2018-03-31", "--out", out_file
    )
    assert_clean_failure(result, str(bad), "expected header '12 months ending'", "How to fix")
    result = invoke(
        "funding-shares", "--pfa-crime", bad, "--year-ending", "March 2018", "--out", out_file
    )
    assert_clean_failure(result, "'March 2018' is not a date", "YYYY-MM-DD")
    result = invoke(
        "funding-shares",
        "--pfa-crime",
        tmp_path / "none.csv",
        "--year-ending",
        "2018-03-31",
        "--out",
        out_file,
    )
    assert_clean_failure(result, "none.csv does not exist")
    pop = tmp_path / "pop.csv"
    pop.write_text("force,people\nKent,1\n", encoding="utf-8")
    result = invoke(
        "funding-shares",
        "--pfa-crime",
        bad,
        "--year-ending",
        "2018-03-31",
        "--population",
        pop,
        "--out",
        out_file,
    )
    assert_clean_failure(result, str(pop), "column 'pfa'", "column 'population'")
    pop.write_text("pfa,population\nKent,lots\n", encoding="utf-8")
    result = invoke(
        "funding-shares",
        "--pfa-crime",
        bad,
        "--year-ending",
        "2018-03-31",
        "--population",
        pop,
        "--out",
        out_file,
    )
    assert_clean_failure(result, str(pop), "row 2", "'lots'", "not a number")
    assert not out_file.exists()


@pytest.mark.realdata
def test_leave_out_unknown_keeps_the_published_borough_figures(
    shared_data: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    result = invoke(
        "import",
        "met-crime",
        *(shared_data / MET_DIR / f for f in MET_FILES),
        "--out",
        folder,
        "--leave-out-unknown",
    )
    assert result.exit_code == 0, result.output
    model = load_model(folder)
    assert model.crime_history[:, 0, 165:177].sum() == 8450  # rape placed in boroughs, 2024
    assert "(left out of the model)" in result.output
