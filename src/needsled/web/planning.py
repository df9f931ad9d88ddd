"""The optimiser page's work: the best plan within a budget and equity floor, its tables, and
the marginal-money curve (what each extra pound buys), from :mod:`needsled.optimise`.

The response curves (one engine call, a few seconds) are kept for the last few models and
settings, so a second plan with another budget or floor only solves the programme again. The
curve solves one programme per budget: the page asks for a few (``curve_steps``).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from needsled.model import Model

__all__ = ["PlanSettings", "curve_chart", "run_plan"]

_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_lock = threading.Lock()
CACHE_SIZE = 2


@dataclass(frozen=True)
class PlanSettings:
    scenario: str | None = None
    budget: float | None = None  # £ a year; None = today's cost
    equity_floor: float = 0.0
    max_growth: float = 0.3
    max_shrink: float = 0.2
    years: int = 3
    curve_steps: int = 3


def _problem(key: tuple[Any, ...], model: Model, s: PlanSettings, seed: int) -> Any:
    from needsled import optimise as op

    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    settings = op.Settings(
        budget=0.0, max_growth=s.max_growth, max_shrink=s.max_shrink, years=s.years
    )
    pb = op.prepare(model, settings, s.scenario, seed=seed)
    with _lock:
        _cache[key] = pb
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return pb


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.replace({np.nan: None}).to_dict("records")
    return [{str(k): _plain(v) for k, v in row.items()} for row in out]


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def curve_chart(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """Victims supported within the target wait against the budget (Vega-Lite)."""
    points = [
        {"budget_m": r["budget"] / 1e6, "supported": r["supported_within_target"]}
        for r in curve
        if r.get("supported_within_target") is not None
    ]
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": "What more money buys: victims supported within the target wait",
        "width": "container",
        "height": 260,
        "data": {"values": points},
        "mark": {"type": "line", "point": True},
        "encoding": {
            "x": {
                "field": "budget_m",
                "type": "quantitative",
                "title": "Budget (£ million a year)",
                "scale": {"zero": False},
            },
            "y": {
                "field": "supported",
                "type": "quantitative",
                "title": "Victims supported within target (contract period)",
                "scale": {"zero": False},
            },
            "tooltip": [
                {
                    "field": "budget_m",
                    "type": "quantitative",
                    "title": "£m a year",
                    "format": ".2f",
                },
                {"field": "supported", "type": "quantitative", "title": "Supported", "format": ","},
            ],
        },
    }


def run_plan(
    model_key: tuple[int, str], model: Model, s: PlanSettings, seed: int
) -> dict[str, Any]:
    """The plan for the settings, as JSON-able tables, or ``{"infeasible": message}``."""
    from needsled import optimise as op

    key = (*model_key, s.scenario, s.max_growth, s.max_shrink, s.years, seed)
    pb = _problem(key, model, s, seed)
    today_cost = pb.today_cost()
    budget = today_cost if s.budget is None else s.budget
    pb = op.with_settings(pb, budget=budget, equity_floor=s.equity_floor)
    result: dict[str, Any] = {"budget": budget, "today_cost": today_cost}
    try:
        plan = op.solve(pb)
    except op.Infeasible as exc:
        result["infeasible"] = str(exc)
        return result
    today = op.evaluate(pb, pb.today_fte)
    tables = op.plan_tables(plan, today)
    result |= {
        "headline": op.headline(plan, today),
        "status": plan.status,
        "gap": plan.gap,
        "cost": plan.cost,
        "scenario": pb.scenario.name,
        "plan_by_service": _records(tables["plan_by_service"]),
        "plan": _records(tables["plan"]),
        "reach": _records(tables["reach"]),
        "lottery": _records(tables["lottery"]),
    }
    if s.curve_steps > 0:
        grid = np.linspace(0.9 * today_cost, today_cost + 2e6, s.curve_steps).round(-3)
        budgets: list[float] = sorted({*grid.tolist(), round(budget, -3)})
        curve = _records(op.marginal_curve(pb, budgets))
        result["curve"] = curve
        result["curve_chart"] = curve_chart(curve)
    return result
