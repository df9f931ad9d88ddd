"""`needsled optimise`: the staffing plan that supports the most victims within the target wait,
within the budget; with what binds, what more money buys, and how robust the plan is."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from needsled.cli_common import UserError, console, fail, out
from needsled.errors import InputError

__all__ = ["optimise", "parse_budget"]

_AMOUNT = re.compile(r"^£?\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([km]?)$", re.IGNORECASE)


def _amount(text: str) -> float | None:
    m = _AMOUNT.match(text.strip())
    if not m:
        return None
    value = float(m.group(1).replace(",", ""))
    return value * {"": 1.0, "k": 1e3, "m": 1e6}[m.group(2).lower()]


def parse_budget(text: str, today: float) -> float:
    """A budget a year: '21800000', '£21.8m', '500k', 'today', 'today+1m', 'today-10%'."""
    t = text.strip().lower().replace(" ", "")
    if t.startswith("today"):
        rest = t[5:]
        if not rest:
            return today
        sign = {"+": 1.0, "-": -1.0}.get(rest[0])
        body = rest[1:]
        if sign is not None and body.endswith("%"):
            try:
                return today * (1.0 + sign * float(body[:-1]) / 100.0)
            except ValueError:
                pass
        elif sign is not None and (x := _amount(body)) is not None:
            return today + sign * x
    elif (x := _amount(t)) is not None:
        return x
    raise UserError(
        f"--budget {text!r} is not an amount of money",
        "write it as £ a year, e.g. 21800000, £21.8m or 500k; or relative to today's "
        "staffing cost: today, today+1m, today-10%",
    )


def optimise(
    model_path: Annotated[
        Path, typer.Argument(metavar="MODEL", help="Model folder or workbook (as for `run`)")
    ],
    budget: Annotated[
        str,
        typer.Option(
            "--budget",
            help="Money a year for these services: e.g. 21.8m, 500k, today, today+1m, today-10%",
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the plan into")],
    scenario: Annotated[
        str | None, typer.Option("--scenario", help="Scenario to plan for (default: the first)")
    ] = None,
    equity_floor: Annotated[
        float,
        typer.Option(
            "--equity-floor",
            min=0.0,
            max=1.0,
            help="Every area's reach per 1,000 estimated victims at least this share of the "
            "best area's (0 = no floor)",
        ),
    ] = 0.0,
    max_growth: Annotated[
        float,
        typer.Option("--max-growth", min=0.0, max=10.0, help="Most a service may grow in a year"),
    ] = 0.3,
    max_shrink: Annotated[
        float,
        typer.Option("--max-shrink", min=0.0, max=1.0, help="Most a service may shrink in a year"),
    ] = 0.2,
    priority_weight: Annotated[
        float,
        typer.Option(
            "--priority-weight",
            min=1.0,
            max=100.0,
            help="How many times a priority victim (enhanced rights) counts",
        ),
    ] = 2.0,
    years: Annotated[
        int, typer.Option("--years", min=1, max=10, help="Contract period in years")
    ] = 3,
    no_lots: Annotated[
        bool, typer.Option("--no-lots", help="Ignore the contract lots table")
    ] = False,
    curve_steps: Annotated[
        int,
        typer.Option(
            "--curve-steps",
            min=0,
            max=200,
            help="Budgets in the marginal-money curve, from today's cost -20% to +£2m "
            "(0 = no curve)",
        ),
    ] = 20,
    replicates: Annotated[
        int,
        typer.Option(
            "--replicates",
            min=0,
            max=100_000,
            help="Monte Carlo replicates for the robustness check (0 = skip it)",
        ),
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Random seed")] = 20240401,
) -> None:
    """Choose FTE by service and area (0.1 FTE steps) and service options within the budget,
    to support the most victims within the target wait (an exact MILP solved by HiGHS)."""
    from needsled import optimise as op
    from needsled.io.load import load_model
    from needsled.io.optimise_out import write_plan

    t0 = time.perf_counter()

    def step(text: str) -> None:
        console.print(f"[{time.perf_counter() - t0:5.1f} s] {text}", highlight=False, markup=False)

    try:
        model = load_model(model_path)
    except InputError as exc:
        console.print(
            f"[bold red]{len(exc.problems)} problem(s) in {exc.what}[/]; nothing was loaded:",
            highlight=False,
        )
        for p in exc.problems:
            console.print(f"  - {p}", highlight=False, markup=False)
        raise typer.Exit(1) from None
    try:
        if scenario is not None and scenario not in {s.name for s in model.scenarios}:
            known = ", ".join(s.name for s in model.scenarios)
            raise UserError(f"the model has no scenario {scenario!r}", f"use one of: {known}")
        settings = op.Settings(
            budget=0.0,
            equity_floor=equity_floor,
            max_growth=max_growth,
            max_shrink=max_shrink,
            priority_weight=priority_weight,
            years=years,
            use_lots=not no_lots,
        )
        step("Building response curves from the flow engine...")
        pb = op.prepare(model, settings, scenario, seed=seed)
        amount = parse_budget(budget, pb.today_cost())
        if amount <= 0:
            raise UserError(f"--budget {budget!r} is not above £0", "give a positive budget")
        pb = op.with_settings(pb, budget=amount)
        step("Solving...")
        try:
            plan = op.solve(pb)
        except op.Infeasible as exc:
            console.print(f"No plan: {exc}", style="bold red", markup=False, highlight=False)
            raise typer.Exit(1) from None
    except UserError as err:
        raise fail(err) from None
    today = op.evaluate(pb, pb.today_fte)
    tables = op.plan_tables(plan, today)
    step("Checking which constraints bind...")
    bind = op.binding(plan)
    tables["binding"] = pd.DataFrame(
        [
            {
                "constraint": b.constraint,
                "victims_it_costs": round(b.cost_victims),
                "statement": b.statement,
            }
            for b in bind
        ]
    )
    if curve_steps > 0:
        today_cost = pb.today_cost()
        budgets = np.linspace(0.8 * today_cost, today_cost + 2e6, curve_steps)
        step(f"Marginal-money curve at {curve_steps} budgets...")
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            tables["marginal_curve"] = op.marginal_curve(
                pb, budgets.round(-3).tolist(), executor=pool
            )
    if replicates > 0:
        step(f"Robustness: {replicates} Monte Carlo replicates...")
        tables["robustness"] = op.robustness(plan, replicates, seed)
    lines = op.headline(plan, today)
    command = "needsled " + shlex.join(sys.argv[1:])
    written = write_plan(
        out_dir,
        headline=lines,
        tables=tables,
        settings={
            "scenario": pb.scenario.name,
            "budget": amount,
            "equity_floor": equity_floor,
            "max_growth": max_growth,
            "max_shrink": max_shrink,
            "priority_weight": priority_weight,
            "years": years,
            "lots": not no_lots,
            "replicates": replicates,
            "seed": seed,
            "solver_status": plan.status,
            "proven_gap": plan.gap,
        },
        provenance=model.provenance,
        command=command,
    )
    for line in lines:
        out.print(line, highlight=False, markup=False)
    for b in bind:
        out.print(f"- {b.statement}", highlight=False, markup=False)
    out.print(
        f"Wrote {len(written)} files to {out_dir} in {time.perf_counter() - t0:.0f} s "
        "(plan.csv, plan.xlsx, summary.md, ...)",
        highlight=False,
        markup=False,
    )
