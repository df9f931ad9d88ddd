"""The optimiser: hand-solved instances, brute force, constraints, infeasibility, the curve.

Hand-solved response curve (tiny model, one area): 12 referrals a month, cases last one month,
the target is to start in the month of referral, places P a month, first come first served.
With a shortfall d = 12 - P the longest waiters go first, so in month t only P - (t - 1) d
of the new referrals start at once: over a year P = 8, 9, 10, 11, 12 give 8+4 = 12,
9+6+3 = 18, 10+8+6+4+2 = 30, 11+10+...+1 = 66 and 12 x 12 = 144 victims within target.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from _models import tiny_areas_model, tiny_model
from needsled import optimise as op
from needsled.io.load import load_model
from needsled.model import Model

HAND = {8: 12.0, 9: 18.0, 10: 30.0, 11: 66.0, 12: 144.0, 13: 144.0}
COST = 40_000.0  # the tiny model's cost per FTE (the schema's default)


def _model(tmp: Path, ftes: list[float], **kw: object) -> Model:
    return load_model(tiny_areas_model(tmp / "m", ftes, **kw))  # type: ignore[arg-type]


def test_the_response_curve_is_the_hand_solved_one(tmp_path: Path) -> None:
    m = load_model(tiny_model(tmp_path / "m"))
    pb = op.prepare(m, op.Settings(budget=1e9, years=1))
    # 1 FTE today; -20% to +30% in 0.1 FTE steps = 8 to 13 places
    np.testing.assert_allclose(pb.places[0][0], [8, 9, 10, 11, 12, 13])
    np.testing.assert_allclose(pb.value[0][0], [HAND[p] for p in range(8, 14)], rtol=1e-6)
    np.testing.assert_allclose(pb.starts[0][0], [96, 108, 120, 132, 144, 144], rtol=1e-6)


def test_money_goes_where_a_list_can_be_cleared_and_the_floor_moves_it(tmp_path: Path) -> None:
    # Two identical areas at 1.0 FTE; money for 2.2 FTE. The curve is convex (S-shaped), so
    # 1.2 + 1.0 FTE (144 + 30 = 174) beats an even 1.1 + 1.1 (66 + 66 = 132): the programme
    # must not take the concave envelope's answer.
    m = _model(tmp_path, [1.0, 1.0])
    pb = op.prepare(m, op.Settings(budget=2.2 * COST, years=1))
    plan = op.solve(pb)
    assert sorted(plan.fte[:, 0].round(1).tolist()) == [1.0, 1.2]
    assert plan.objective == pytest.approx(174.0, rel=1e-6)
    assert plan.value == pytest.approx(174.0, rel=1e-6)  # the engine agrees
    # Reach: starts 144 and 120 a year per 100,000 x 0.012 = 1,200 victims: 120 and 100
    # per 1,000; 100 / 120 = 0.83 < 0.9, so a 90% equity floor forces 1.1 + 1.1.
    assert sorted(plan.reach.round(6).tolist()) == [100.0, 120.0]
    floored = op.solve(op.with_settings(pb, equity_floor=0.9))
    assert floored.fte[:, 0].round(1).tolist() == [1.1, 1.1]
    assert floored.value == pytest.approx(132.0, rel=1e-6)
    costs = {b.constraint: b.cost_victims for b in op.binding(floored)}
    assert costs["equity floor"] == pytest.approx(42.0, rel=1e-6)


def test_budget_too_small_for_the_bounds_names_the_least_budget(tmp_path: Path) -> None:
    m = _model(tmp_path, [1.0, 2.0])
    pb = op.prepare(m, op.Settings(budget=1.0, years=1))
    least = (0.8 + 1.6) * COST  # everything shrunk by the most allowed, 20%
    with pytest.raises(op.Infeasible) as err:
        op.solve(pb, 2.0 * COST)
    assert err.value.constraint == "bounds"
    assert err.value.feasible["least_budget"] == pytest.approx(least)
    assert "£96k" in str(err.value)
    assert "--max-shrink" in str(err.value)
    op.solve(pb, least)  # exactly enough is feasible


def test_a_floor_needing_more_money_gets_the_least_budget_and_the_highest_floor(
    tmp_path: Path,
) -> None:
    # Equal demand (12 a month); area 2 has 0.8 FTE (8 places: 96 starts a year, reach 80 per
    # 1,000) against area 1's 1.0 (120 starts, reach 100). With no shrinking allowed, a 95%
    # floor needs area 2 at 1.0 FTE (120 starts): a budget of 2.0 FTE. At 1.9 FTE area 2 gets
    # 0.9 FTE: 108 starts, so the highest floor within budget is 108 / 120 = 0.9.
    m = _model(tmp_path, [1.0, 0.8])
    pb = op.prepare(m, op.Settings(budget=1.0, years=1, equity_floor=0.95, max_shrink=0.0))
    budget = 1.9 * COST
    with pytest.raises(op.Infeasible) as err:
        op.solve(pb, budget)
    assert err.value.constraint == "equity floor"
    need = err.value.feasible["least_budget"]
    best = err.value.feasible["highest_floor_at_budget"]
    assert need == pytest.approx(2.0 * COST)
    assert best == pytest.approx(0.9, abs=0.006)
    op.solve(pb, need)  # the least budget quoted is feasible ...
    with pytest.raises(op.Infeasible):
        op.solve(pb, need - 0.1 * COST)  # ... and 0.1 FTE less is not
    op.solve(op.with_settings(pb, equity_floor=best), budget)  # the floor quoted is feasible
    with pytest.raises(op.Infeasible):
        op.solve(op.with_settings(pb, equity_floor=min(1.0, best + 0.01)), budget)


def _brute_force(pb: op.PlanProblem, budget: float) -> float:
    """Best objective over every plan on the 0.1-FTE grid and option units, by enumeration."""
    pairs = list(zip(*np.nonzero(pb.served), strict=True))
    choices = [range(pb.lo[a, s], pb.hi[a, s] + 1) for a, s in pairs]
    opt_cols = [(k, a) for k, o in enumerate(pb.options) for a in np.flatnonzero(o.areas)]
    opt_choices = [range(pb.options[k].max_units + 1) for k, _ in opt_cols]
    best = -np.inf
    floor = pb.settings.equity_floor
    for steps in itertools.product(*choices):
        for units in itertools.product(*opt_choices):
            cost = sum(
                n * op.STEP_FTE * pb.cost_per_fte[s]
                for n, (_a, s) in zip(steps, pairs, strict=True)
            )
            cost += sum(u * pb.options[k].cost for u, (k, _a) in zip(units, opt_cols, strict=True))
            if cost > budget + 1e-6:
                continue
            fte = np.zeros(pb.served.shape)
            for n, (a, s) in zip(steps, pairs, strict=True):
                fte[a, s] = n * op.STEP_FTE
            if pb.lots and not _lots_ok(pb, fte):
                continue
            places = fte * pb.places_per_fte[None]
            for u, (k, a) in zip(units, opt_cols, strict=True):
                places[a, pb.options[k].service] += u * pb.options[k].places
            total, starts = 0.0, np.zeros(len(pb.victims))
            for a, s in pairs:
                total += np.interp(places[a, s], pb.places[a][s], pb.value[a][s])
                starts[a] += np.interp(places[a, s], pb.places[a][s], pb.starts[a][s])
            reach = starts / pb.victims
            if floor > 0 and reach.min() < floor * reach.max() - 1e-9:
                continue
            best = max(best, total)
    return float(best)


def _lots_ok(pb: op.PlanProblem, fte: np.ndarray) -> bool:
    for lot in pb.lots:
        for a in range(fte.shape[0]):
            members = [s for s in lot if pb.today_fte[a, s] > 0]
            shares = np.arange(-100, 101) / 100
            ok = np.ones(len(shares), bool)
            for s in members:
                ok &= np.isclose(np.round(pb.today_fte[a, s] * (1 + shares), 1), fte[a, s])
            if not ok.any():
                return False
    return True


@pytest.mark.parametrize(
    ("budget_fte", "floor", "with_option", "with_lot"),
    [
        (4.4, 0.0, False, False),
        (4.0, 0.0, True, False),
        (4.6, 0.5, True, False),
        (4.4, 0.0, False, True),
    ],
)
def test_the_programme_matches_brute_force(
    tmp_path: Path, budget_fte: float, floor: float, with_option: bool, with_lot: bool
) -> None:
    extra: dict[str, tuple[list[str], list[list[object]]]] = {}
    if with_option:
        extra["options"] = (
            ["option", "service", "option_name", "places_per_unit", "cost_per_unit", "max_units"],
            [["GROUP", "T", "Group sessions", 1.5, 9000, 2]],
        )
    if with_lot:
        extra["lots"] = (["lot", "service"], [["L", "S"], ["L", "T"]])
    m = _model(
        tmp_path,
        [1.0, 0.9],
        crimes_a_month=[100, 80],
        second_service_fte=[1.2, 1.0],
        extra_tables=extra,
    )
    st = op.Settings(budget=0.0, years=1, equity_floor=floor, max_growth=0.2, max_shrink=0.1)
    pb = op.prepare(m, st)
    budget = budget_fte * COST
    plan = op.solve(pb, budget)
    assert plan.objective == pytest.approx(_brute_force(pb, budget), rel=op.MIP_GAP, abs=1e-6)
    _assert_constraints_hold(pb, plan, budget)


def _assert_constraints_hold(pb: op.PlanProblem, plan: op.Plan, budget: float) -> None:
    assert plan.cost <= budget + 1e-6
    steps = np.round(plan.fte / op.STEP_FTE)
    assert np.allclose(steps * op.STEP_FTE, plan.fte)  # 0.1 FTE steps
    assert ((steps >= pb.lo) & (steps <= pb.hi))[pb.served].all()
    for (code, _a), k in plan.units.items():
        assert 0 < k <= next(o.max_units for o in pb.options if o.code == code)
    if pb.lots:
        assert _lots_ok(pb, plan.fte)
    if pb.settings.equity_floor > 0:
        _total, starts = op._curve_value(pb, plan.fte)  # exact at grid points without options
        if not plan.units:
            reach = starts / pb.victims
            assert reach.min() >= pb.settings.equity_floor * reach.max() - 1e-9


def test_never_worse_than_today_and_the_curve_never_falls(tmp_path: Path) -> None:
    m = _model(tmp_path, [1.0, 0.9, 1.3], crimes_a_month=[100, 80, 120])
    pb = op.prepare(m, op.Settings(budget=0.0, years=1))
    today = op.evaluate(pb, pb.today_fte)
    plan = op.solve(pb, pb.today_cost())
    assert plan.value >= float(today["value"].sum()) - 1e-9
    budgets = np.linspace(0.8, 1.4, 7) * pb.today_cost()
    curve = op.marginal_curve(pb, budgets.tolist())
    values = curve["weighted_value"].to_numpy()
    feasible = ~np.isnan(values)
    assert feasible[-4:].all()
    assert (np.diff(values[feasible]) >= -1e-9).all()
    with ThreadPoolExecutor(2) as pool:  # the same curve, solved on two threads
        threaded = op.marginal_curve(pb, budgets.tolist(), executor=pool)
    np.testing.assert_allclose(threaded["weighted_value"], values, rtol=op.MIP_GAP)
    assert curve.loc[~feasible, "note"].str.contains("the most it may shrink in a year").all()


def test_robustness_gives_chances_and_more_staff_means_better_odds(tmp_path: Path) -> None:
    # Two areas at 1.0 FTE (10 places for 12 referrals a month: the list grows, the target
    # is missed); the plan adds staff in one area only.
    m = _model(tmp_path, [1.0, 1.0])
    pb = op.prepare(m, op.Settings(budget=0.0, years=1))
    plan = op.solve(pb, 2.3 * COST)
    table = op.robustness(plan, replicates=60, seed=3)
    rows = table[table["area"] != "ALL"].set_index("area")
    a_more = m.area_codes[int(np.argmax(plan.fte[:, 0]))]
    assert rows.loc[a_more, "chance_target_met_plan"] > rows.loc[a_more, "chance_target_met_today"]
    chances = rows[["chance_target_met_today", "chance_target_met_plan"]].to_numpy()
    assert ((chances >= 0) & (chances <= 1)).all()
    total = table[table["area"] == "ALL"].iloc[0]
    assert total["within_target_plan_p10"] <= total["within_target_plan"]
    assert total["within_target_plan"] <= total["within_target_plan_p90"]
    assert total["within_target_plan"] > total["within_target_today"]


def test_cli_writes_the_plan_and_explains_an_infeasible_budget(tmp_path: Path) -> None:
    import typer
    from openpyxl import load_workbook

    from needsled.cli_optimise import optimise

    app = typer.Typer()
    app.command()(optimise)
    app.command("noop")(lambda: None)
    folder = tiny_areas_model(tmp_path / "m", [1.0, 1.0])
    runner = CliRunner()
    out = tmp_path / "plan"
    res = runner.invoke(
        app,
        [
            "optimise",
            str(folder),
            "--budget",
            "today+10%",
            "--out",
            str(out),
            "--years",
            "1",
            "--curve-steps",
            "3",
            "--replicates",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "victims within the target wait" in res.output
    for name in (
        "plan.csv",
        "plan.xlsx",
        "summary.md",
        "binding.csv",
        "marginal_curve.csv",
        "robustness.csv",
        "reach.csv",
        "manifest.json",
    ):
        assert (out / name).is_file(), name
    book = load_workbook(out / "plan.xlsx")
    assert book.sheetnames[0] == "Cover"
    assert book["Plan"].freeze_panes == "A2"
    bad = runner.invoke(app, ["optimise", str(folder), "--budget", "10k", "--out", str(out)])
    assert bad.exit_code == 1
    assert "least" in bad.output
    assert "Traceback" not in bad.output
    words = runner.invoke(app, ["optimise", str(folder), "--budget", "lots", "--out", str(out)])
    assert words.exit_code == 1
    assert "is not an amount of money" in words.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("21800000", 21.8e6),
        ("£21.8m", 21.8e6),
        ("500k", 5e5),
        ("£1,250,000", 1.25e6),
        ("today", 1e6),
        ("today+1m", 2e6),
        ("today-10%", 0.9e6),
    ],
)
def test_budgets_are_read_as_people_write_them(text: str, expected: float) -> None:
    from needsled.cli_optimise import parse_budget

    assert parse_budget(text, 1e6) == pytest.approx(expected)
