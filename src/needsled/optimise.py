"""Choices within the funding envelope: the staffing plan that supports the most victims within
the target wait, exactly, with HiGHS (model.md section 5).

Pure core: a :class:`Model` and settings in, a :class:`Plan` out; no files.

**The decision.** FTE for every service in every area it serves, in steps of 0.1 FTE, and
whole units of the model's service options (the optional ``options`` table: blocks of places
bought at a cost, such as group support or a by-and-for grant). One plan holds for the whole
contract period.

**How the flow model becomes a mixed-integer programme.** Services in different areas do not
share places, so the victims a service supports within its target wait over the contract depend
only on that service's places in that area. For each service and area the deterministic run of
the flow engine (the same engine as every projection) is evaluated at every 0.1-FTE step of
places the plan may choose (one engine call, a chain per step), giving the response curve
``V(P)``: priority-weighted starts within the target wait over the contract for ``P`` places,
and ``S(P)``: all starts (for reach). Between steps the curve is linear. The curve is often
S-shaped (nobody is seen within target until the backlog clears, then everyone is), so it is
not concave; it is written as an incremental piecewise-linear model, ``P = P_0 + sum_k w_k d_k``
with ``0 <= d_k <= 1`` and binaries ``b_k`` forcing segments to fill in order
(``d_{k+1} <= b_k <= d_k``). Without options every plan's places are steps of the curve, where
it is the engine's own value, so the optimum over the 0.1-FTE grid is exact; options can put
places between steps, where the curve is interpolated, and the chosen plan is then evaluated
again by the engine for the figures reported. A *stretch* service never queues; a victim
counts there in proportion to how far staff cover the open caseload at the safe caseload
(``starts x min(1, places / open cases)``), which is concave in places.

**Constraints.** The budget (a year); bounds on each service's FTE in each area relative to
today's (growth and shrinkage in one contract year); the equity floor: every area's reach
(support starts per 1,000 estimated victims a year) at least ``floor`` times the best area's,
written ``R_max >= reach_a`` and ``reach_a >= floor x R_max`` for every area, which is linear;
contract lots (the optional ``lots`` table): in each area the services of a lot grow or shrink
by one common change in whole percent (each service then rounded to 0.1 FTE), chosen by a
binary per change, which fixes every member's FTE.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace

import highspy
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from needsled._highs import quiet_highs
from needsled.equity import estimated_victims, lottery
from needsled.model import Model
from needsled.projection import crime_point_forecast, staffing_response
from needsled.scenarios import Scenario

__all__ = [
    "Infeasible",
    "Option",
    "Plan",
    "PlanProblem",
    "Settings",
    "evaluate",
    "lots_of",
    "marginal_curve",
    "options_of",
    "prepare",
    "solve",
]

F64 = NDArray[np.float64]
STEP_FTE = 0.1
INF = highspy.kHighsInf
MIP_GAP = 1e-3
BOUNDS_STEP = 0.1  # how far binding() loosens the growth and shrinkage bounds
TIME_LIMIT_S = 300.0


@dataclass(frozen=True)
class Settings:
    """What the commissioner asks for.

    ``budget``: £ a year for the services planned. ``equity_floor``: every area's reach at
    least this share of the best area's (0 = no floor). ``max_growth`` / ``max_shrink``: how far
    a service's FTE in an area may rise or fall from today's in one contract year, as shares.
    ``new_fte``: FTE a service may reach in an area it serves with none today.
    ``priority_weight``: a priority victim (Victims' Code enhanced rights) counts this many
    times. ``years``: the contract period (at most the model's horizon).
    """

    budget: float
    equity_floor: float = 0.0
    max_growth: float = 0.3
    max_shrink: float = 0.2
    new_fte: float = 1.0
    priority_weight: float = 2.0
    years: int = 3
    use_lots: bool = True


@dataclass(frozen=True)
class Option:
    code: str
    name: str
    service: int
    areas: NDArray[np.bool_]  # (A,)
    places: float
    cost: float
    max_units: int


@dataclass(frozen=True)
class PlanProblem:
    """Everything the programme needs, prepared once for a model and scenario.

    Response curves are per service and area on breakpoints of places: ``places[a][s]`` (K+1,),
    ``value[a][s]`` and ``starts[a][s]`` at them (empty where the service is not served).
    """

    model: Model
    scenario: Scenario
    settings: Settings
    months: int
    today_fte: F64  # (A, S)
    lo: NDArray[np.int64]  # (A, S) lowest FTE in 0.1 steps
    hi: NDArray[np.int64]
    places_per_fte: F64  # (S,)
    cost_per_fte: F64  # (S,) £ a year, average over the contract
    options: tuple[Option, ...]
    lots: tuple[tuple[int, ...], ...]
    victims: F64  # (A,) estimated victims a year
    places: list[list[F64]]
    value: list[list[F64]]
    starts: list[list[F64]]
    crime_mean: F64 = field(repr=False)

    @property
    def served(self) -> NDArray[np.bool_]:
        return self.model.staffing.served

    def today_cost(self) -> float:
        return float((self.today_fte * self.cost_per_fte[None]).sum())

    def least_cost(self) -> float:
        """The cost of every service at its lowest bound, with no options."""
        return float((self.lo * STEP_FTE * self.cost_per_fte[None]).sum())


@dataclass(frozen=True)
class Plan:
    """A solved plan, with its figures from the engine (not the interpolated curves)."""

    problem: PlanProblem
    budget: float
    fte: F64  # (A, S)
    units: dict[tuple[str, int], int]  # (option, area) -> units
    cost: float
    value: float  # priority-weighted starts within target over the contract (engine)
    within: F64  # (A, S) starts within target over the contract (engine)
    starts: F64  # (A, S) starts over the contract
    reach: F64  # (A,) starts per 1,000 estimated victims a year
    objective: float  # the programme's objective (curves), for checks
    bound: float  # no plan's objective can exceed this (the solver's proof)
    status: str

    @property
    def gap(self) -> float:
        """How far, at most, the plan is from the best possible, as a share."""
        return max(0.0, (self.bound - self.objective) / max(abs(self.bound), 1e-9))


class Infeasible(Exception):  # noqa: N818 (reads as "optimise.Infeasible")
    """No plan meets the constraints; the message says which, and what would be feasible."""

    def __init__(self, message: str, constraint: str, feasible: dict[str, float]) -> None:
        super().__init__(message)
        self.constraint = constraint
        self.feasible = feasible


def _codes(text: object) -> list[str]:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return [c for c in str(text).replace(",", " ").split() if c]


def options_of(model: Model) -> tuple[Option, ...]:
    """The model's service options (the optional ``options`` table)."""
    frame = model.tables.get("options")
    if frame is None or frame.empty:
        return ()
    s_idx = {c: i for i, c in enumerate(model.services.codes)}
    a_idx = {c: i for i, c in enumerate(model.area_codes)}
    out = []
    for row in frame.to_dict("records"):
        s = s_idx[str(row["service"])]
        codes = _codes(row.get("areas"))
        mask = np.zeros(len(model.area_codes), bool)
        if codes:
            mask[[a_idx[c] for c in codes]] = True
        else:
            mask[:] = True
        mask &= model.staffing.served[:, s]
        out.append(
            Option(
                code=str(row["option"]),
                name=str(row["option_name"]),
                service=s,
                areas=mask,
                places=float(row["places_per_unit"]),
                cost=float(row["cost_per_unit"]),
                max_units=int(row["max_units"]),
            )
        )
    return tuple(out)


def lots_of(model: Model) -> tuple[tuple[int, ...], ...]:
    """Services bought together (the optional ``lots`` table), as service indices."""
    frame = model.tables.get("lots")
    if frame is None or frame.empty:
        return ()
    s_idx = {c: i for i, c in enumerate(model.services.codes)}
    groups: dict[str, list[int]] = {}
    for row in frame.to_dict("records"):
        groups.setdefault(str(row["lot"]), []).append(s_idx[str(row["service"])])
    return tuple(tuple(v) for v in groups.values() if len(v) > 1)


def _bounds(
    today: F64, served: NDArray[np.bool_], st: Settings
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    lo = np.ceil(np.round(today * (1 - st.max_shrink) / STEP_FTE, 6))
    hi = np.floor(np.round(today * (1 + st.max_growth) / STEP_FTE, 6))
    today_steps = np.round(today / STEP_FTE)
    on_grid = np.isclose(today_steps * STEP_FTE, today)
    # today's staffing is always allowed when it lies on the 0.1-FTE grid
    lo = np.where(on_grid, np.minimum(lo, today_steps), lo)
    hi = np.where(on_grid, np.maximum(hi, today_steps), hi)
    hi = np.where(today <= 0, np.floor(st.new_fte / STEP_FTE + 1e-9), hi)
    lo, hi = np.where(served, lo, 0), np.where(served, hi, 0)
    return lo.astype(np.int64), np.maximum(hi, lo).astype(np.int64)


def prepare(
    model: Model,
    settings: Settings,
    scenario: str | None = None,
    *,
    seed: int = 20240401,
    crime_mean: F64 | None = None,
) -> PlanProblem:
    """Build the response curves for a model, scenario and settings (one engine call)."""
    if settings.years < 1:
        raise ValueError("the contract period must be at least one year")
    sc = model.scenario(scenario) if scenario else model.scenarios[0]
    months = min(model.settings.horizon_months, 12 * settings.years)
    cm = crime_point_forecast(model, seed) if crime_mean is None else crime_mean
    sv, st = model.services, model.staffing
    n_a, n_s = st.fte.shape
    lo, hi = _bounds(st.fte, st.served, settings)
    options = options_of(model)
    ppf = sv.places_per_fte
    extra = np.zeros((n_a, n_s))
    for o in options:
        extra[:, o.service] += np.where(o.areas, o.places * o.max_units, 0.0)
    step = ppf[None] * STEP_FTE  # places per 0.1 FTE
    p_lo, p_hi = lo * step, hi * step + extra
    n_seg = np.where(st.served, np.ceil(np.round((p_hi - p_lo) / step, 6)), 0).astype(int)
    n_j = int(n_seg.max()) + 1
    grid = np.minimum(p_lo[None] + np.arange(n_j)[:, None, None] * step[None], p_hi[None])
    fte = grid / np.where(ppf > 0, ppf, 1.0)[None, None, :]
    resp = staffing_response(model, sc, fte, cm, seed)
    w = settings.priority_weight
    within = resp["within"][..., :months].sum(-1)
    prio = resp["within_priority"][..., :months].sum(-1)
    value = within + (w - 1.0) * prio  # (J, A, S)
    starts = resp["starts"][..., :months].sum(-1)
    # a stretch service: starts x min(1, places / open cases) each month
    for s in np.flatnonzero(sv.stretch):
        open_c = resp["open_cases"][0, :, s, :months]  # the same for every plan
        st_m = resp["starts"][0, :, s, :months]
        cover = np.minimum(1.0, grid[:, :, s, None] / np.maximum(open_c[None], 1e-9))
        prio_share = np.divide(
            resp["within_priority"][0, :, s, :months],
            np.maximum(resp["within"][0, :, s, :months], 1e-12),
        )
        value[:, :, s] = (st_m[None] * cover * (1.0 + (w - 1.0) * prio_share[None])).sum(-1)
        starts[:, :, s] = st_m.sum(-1)[None]
    cost = resp["cost_per_fte"][:, :months].mean(axis=1)
    places_l: list[list[F64]] = []
    value_l: list[list[F64]] = []
    starts_l: list[list[F64]] = []
    for a in range(n_a):
        places_l.append([grid[: n_seg[a, s] + 1, a, s].copy() for s in range(n_s)])
        value_l.append([value[: n_seg[a, s] + 1, a, s].copy() for s in range(n_s)])
        starts_l.append([starts[: n_seg[a, s] + 1, a, s].copy() for s in range(n_s)])
    return PlanProblem(
        model=model,
        scenario=sc,
        settings=settings,
        months=months,
        today_fte=st.fte.copy(),
        lo=lo,
        hi=hi,
        places_per_fte=ppf.copy(),
        cost_per_fte=np.asarray(cost, dtype=np.float64),
        options=options,
        lots=lots_of(model) if settings.use_lots else (),
        victims=estimated_victims(model),
        places=places_l,
        value=value_l,
        starts=starts_l,
        crime_mean=cm,
    )


class _Builder:
    """Columns and rows of the programme, gathered as lists then passed to HiGHS at once."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.lower: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[list[int], list[float], float, float]] = []

    def col(self, cost: float, lower: float, upper: float, integer: bool = False) -> int:
        self.cost.append(cost)
        self.lower.append(lower)
        self.upper.append(upper)
        self.integer.append(integer)
        return len(self.cost) - 1

    def row(self, idx: list[int], val: list[float], lower: float, upper: float) -> int:
        self.rows.append((idx, val, lower, upper))
        return len(self.rows) - 1

    def highs(self, objective: Sequence[float] | None = None) -> highspy.Highs:
        n = len(self.cost)
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = len(self.rows)
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.col_cost_ = np.asarray(self.cost if objective is None else objective, dtype=float)
        lp.col_lower_ = np.asarray(self.lower, dtype=float)
        lp.col_upper_ = np.asarray(self.upper, dtype=float)
        lp.row_lower_ = np.asarray([r[2] for r in self.rows], dtype=float)
        lp.row_upper_ = np.asarray([r[3] for r in self.rows], dtype=float)
        # row-wise matrix
        starts = np.zeros(len(self.rows) + 1, dtype=np.int32)
        starts[1:] = np.cumsum([len(r[0]) for r in self.rows])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = starts
        lp.a_matrix_.index_ = np.asarray([i for r in self.rows for i in r[0]], dtype=np.int32)
        lp.a_matrix_.value_ = np.asarray([v for r in self.rows for v in r[1]], dtype=float)
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in self.integer
        ]
        h = quiet_highs()
        # Proven within 0.1% of the best plan: closing the last fraction of a percent costs
        # minutes among near-equal plans (London example: 2-5 s at 0.1%, 80 s at 0.001%).
        h.setOptionValue("mip_rel_gap", MIP_GAP)
        h.setOptionValue("mip_abs_gap", 1e-6)
        h.setOptionValue("time_limit", TIME_LIMIT_S)
        h.setOptionValue("threads", 1)
        h.passModel(lp)
        return h


@dataclass
class _Programme:
    b: _Builder
    n: dict[tuple[int, int], int]  # (a, s) -> FTE steps above lo
    u: dict[tuple[int, int], int]  # (option index, a) -> units
    budget_row: int
    reach_rows: list[int]
    floor_rows: list[int]
    lot_rows: list[int]


def _programme(pb: PlanProblem, budget: float, floor: float) -> _Programme:
    b = _Builder()
    n_a, n_s = pb.today_fte.shape
    served = pb.served
    n: dict[tuple[int, int], int] = {}
    u: dict[tuple[int, int], int] = {}
    budget_idx: list[int] = []
    budget_val: list[float] = []
    fixed_cost = 0.0
    starts_terms: list[tuple[list[int], list[float], float]] = []
    for a in range(n_a):
        idx_a: list[int] = []
        val_a: list[float] = []
        const_a = 0.0
        for s in range(n_s):
            if not served[a, s]:
                continue
            places, value, starts = pb.places[a][s], pb.value[a][s], pb.starts[a][s]
            step = pb.places_per_fte[s] * STEP_FTE
            fixed_cost += pb.lo[a, s] * STEP_FTE * pb.cost_per_fte[s]
            n_col = b.col(0.0, 0.0, float(pb.hi[a, s] - pb.lo[a, s]), integer=True)
            n[(a, s)] = n_col
            budget_idx.append(n_col)
            budget_val.append(STEP_FTE * pb.cost_per_fte[s])
            link_idx, link_val = [n_col], [-step]
            for k, o in enumerate(pb.options):
                if o.service == s and o.areas[a] and o.max_units > 0:
                    u_col = b.col(0.0, 0.0, float(o.max_units), integer=True)
                    u[(k, a)] = u_col
                    budget_idx.append(u_col)
                    budget_val.append(o.cost)
                    link_idx.append(u_col)
                    link_val.append(-o.places)
            widths = np.diff(places)
            d_cols = []
            for k, wdt in enumerate(widths):
                d = b.col(float(value[k + 1] - value[k]), 0.0, 1.0)
                d_cols.append(d)
                link_idx.append(d)
                link_val.append(float(wdt))
            b.col(float(value[0]), 1.0, 1.0)  # a constant: V(P_0), the curve at the lowest bound
            b.row(link_idx, link_val, 0.0, 0.0)  # places from the curve = places bought
            # Segments fill in order. Where the curve bends down (a concave kink) the
            # objective already fills the steeper segment first, so d_{k+1} <= d_k suffices;
            # where it bends up (convex), or when the equity floor could reward starts that
            # come from filling out of order, a binary enforces it.
            slopes = np.diff(value) / np.maximum(widths, 1e-12)
            for k in range(len(d_cols) - 1):
                convex = slopes[k + 1] > slopes[k] + 1e-9 * max(1.0, abs(slopes[k]))
                if convex or floor > 0:
                    bk = b.col(0.0, 0.0, 1.0, integer=True)
                    b.row([d_cols[k + 1], bk], [1.0, -1.0], -INF, 0.0)
                    b.row([bk, d_cols[k]], [1.0, -1.0], -INF, 0.0)
                else:
                    b.row([d_cols[k + 1], d_cols[k]], [1.0, -1.0], -INF, 0.0)
            idx_a += d_cols
            val_a += list(np.diff(starts))
            const_a += float(starts[0])
        if idx_a or const_a > 0:
            starts_terms.append((idx_a, val_a, const_a))
        else:
            starts_terms.append(([], [], 0.0))
    budget_row = b.row(budget_idx, budget_val, -INF, budget - fixed_cost)
    # equity: reach_a = k_a x starts_a; R_max >= reach_a; reach_a >= floor x R_max
    reach_rows: list[int] = []
    floor_rows: list[int] = []
    if floor > 0:
        r_max = b.col(0.0, 0.0, INF)
        for a in range(n_a):
            idx_a, val_a, const_a = starts_terms[a]
            if pb.victims[a] <= 0 or not served[a].any():
                continue
            k_a = 1000.0 / (pb.victims[a] * pb.months / 12.0)
            vals = [k_a * v for v in val_a]
            # reach_a - R_max <= 0
            reach_rows.append(b.row([*idx_a, r_max], [*vals, -1.0], -INF, -k_a * const_a))
            # reach_a - floor R_max >= 0
            floor_rows.append(b.row([*idx_a, r_max], [*vals, -floor], -k_a * const_a, INF))
    # Lots: in each area one common change g (whole percent) for every service of the lot,
    # each rounded to 0.1 FTE; a binary picks g, and fixes every member's FTE steps.
    lot_rows: list[int] = []
    for a, members, choices in _lot_groups(pb):
        ys = [b.col(0.0, 0.0, 1.0, integer=True) for _ in choices]
        lot_rows.append(b.row(ys, [1.0] * len(ys), 1.0, 1.0))
        for i, s in enumerate(members):
            vals = [float(c[i] - pb.lo[a, s]) for c in choices]
            lot_rows.append(b.row([n[(a, s)], *ys], [1.0, *(-v for v in vals)], 0.0, 0.0))
    return _Programme(b, n, u, budget_row, reach_rows, floor_rows, lot_rows)


def _lot_groups(pb: PlanProblem) -> list[tuple[int, list[int], list[tuple[int, ...]]]]:
    """Each lot in each area: its member services there and the distinct FTE steps (one per
    member) that a common whole-percent change within every member's bounds gives."""
    out = []
    for lot in pb.lots:
        for a in range(pb.today_fte.shape[0]):
            members = [s for s in lot if pb.served[a, s] and pb.today_fte[a, s] > 0]
            if len(members) < 2:
                continue
            shares = np.arange(-100, 101) / 100.0
            steps = np.stack(
                [np.round(pb.today_fte[a, s] * (1 + shares) / STEP_FTE) for s in members], 1
            )
            ok = np.ones(len(shares), bool)
            for i, s in enumerate(members):
                ok &= (steps[:, i] >= pb.lo[a, s]) & (steps[:, i] <= pb.hi[a, s])
            choices = list(dict.fromkeys(tuple(int(v) for v in row) for row in steps[ok]))
            out.append((a, members, choices))
    return out


@dataclass(frozen=True)
class _Result:
    status: str  # "optimal", "time limit" (a plan, not proven), or "infeasible"
    x: F64
    objective: float
    bound: float


def _run(prog: _Programme) -> _Result:
    h = prog.b.highs()
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    has_plan = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if ms == highspy.HighsModelStatus.kOptimal:
        status = "optimal"
    elif ms == highspy.HighsModelStatus.kTimeLimit and has_plan:
        status = "time limit"
    else:
        return _Result("infeasible", np.zeros(0), math.nan, math.nan)
    x = np.asarray(h.getSolution().col_value, dtype=np.float64)
    obj = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if math.isfinite(info.mip_dual_bound) else obj
    return _Result(status, x, obj, max(bound, obj))


def _decode(pb: PlanProblem, prog: _Programme, x: F64) -> tuple[F64, dict[tuple[str, int], int]]:
    fte = np.zeros_like(pb.today_fte)
    for (a, s), col in prog.n.items():
        fte[a, s] = (pb.lo[a, s] + round(x[col])) * STEP_FTE
    units = {
        (pb.options[k].code, a): round(x[col]) for (k, a), col in prog.u.items() if round(x[col])
    }
    return np.round(fte, 6), units


def evaluate(
    pb: PlanProblem, fte: F64, units: dict[tuple[str, int], int] | None = None
) -> dict[str, F64]:
    """The engine's figures for a staffing plan (deterministic run over the contract)."""
    places = fte * pb.places_per_fte[None]
    code_of = {o.code: o for o in pb.options}
    for (code, a), k in (units or {}).items():
        o = code_of[code]
        places[a, o.service] += o.places * k
    eq = places / np.where(pb.places_per_fte > 0, pb.places_per_fte, 1.0)[None]
    resp = staffing_response(pb.model, pb.scenario, eq[None], pb.crime_mean)
    m = pb.months
    within = resp["within"][0, ..., :m].sum(-1)
    prio = resp["within_priority"][0, ..., :m].sum(-1)
    starts = resp["starts"][0, ..., :m].sum(-1)
    value = within + (pb.settings.priority_weight - 1.0) * prio
    sv = pb.model.services
    for s in np.flatnonzero(sv.stretch):
        open_c = resp["open_cases"][0, :, s, :m]
        st_m = resp["starts"][0, :, s, :m]
        cover = np.minimum(1.0, places[:, s, None] / np.maximum(open_c, 1e-9))
        share = np.divide(
            resp["within_priority"][0, :, s, :m], np.maximum(resp["within"][0, :, s, :m], 1e-12)
        )
        value[:, s] = (st_m * cover * (1.0 + (pb.settings.priority_weight - 1.0) * share)).sum(-1)
        within[:, s] = (st_m * cover).sum(-1)
    served = pb.served
    value = np.where(served, value, 0.0)
    within = np.where(served, within, 0.0)
    starts = np.where(served, starts, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        reach = np.where(pb.victims > 0, starts.sum(1) / (pb.victims * m / 12.0) * 1000.0, np.nan)
    cost = float((fte * pb.cost_per_fte[None]).sum())
    cost += sum(code_of[c].cost * k for (c, _a), k in (units or {}).items())
    return {
        "value": value,
        "within": within,
        "starts": starts,
        "reach": reach,
        "cost": np.asarray(cost),
    }


def _plan(pb: PlanProblem, budget: float, prog: _Programme, res: _Result) -> Plan:
    fte, units = _decode(pb, prog, res.x)
    ev = evaluate(pb, fte, units)
    return Plan(
        problem=pb,
        budget=budget,
        fte=fte,
        units=units,
        cost=float(ev["cost"]),
        value=float(ev["value"].sum()),
        within=ev["within"],
        starts=ev["starts"],
        reach=ev["reach"],
        objective=res.objective,
        bound=res.bound,
        status=res.status,
    )


def _money(x: float) -> str:
    if abs(x) >= 1e6:
        return f"£{x / 1e6:,.2f}m"
    return f"£{x / 1e3:,.0f}k"


def least_budget(pb: PlanProblem, floor: float) -> float | None:
    """The least budget a year for which a plan meets the bounds, lots and equity floor."""
    prog = _programme(pb, 1e15, floor)
    b = prog.b
    objective = [0.0] * len(b.cost)
    idx, val, _lo, _hi = b.rows[prog.budget_row]
    for i, v in zip(idx, val, strict=True):
        objective[i] = -v  # maximise minus the cost
    h = b.highs(objective)
    h.setOptionValue("mip_rel_gap", 0.0)  # the least budget is quoted to the pound
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return -float(h.getInfo().objective_function_value) + pb.least_cost()


def highest_floor(pb: PlanProblem, budget: float, tol: float = 0.005) -> float:
    """The highest equity floor any plan within the budget can meet (bisection)."""
    lo, hi = 0.0, 1.0
    if _run(_programme(pb, budget, 1.0)).status != "infeasible":
        return 1.0
    while hi - lo > tol:
        mid = (lo + hi) / 2
        if _run(_programme(pb, budget, mid)).status != "infeasible":
            lo = mid
        else:
            hi = mid
    return lo


def solve(pb: PlanProblem, budget: float | None = None) -> Plan:
    """The best plan for the budget (default: the settings' budget), or :class:`Infeasible`."""
    budget = pb.settings.budget if budget is None else budget
    floor = pb.settings.equity_floor
    prog = _programme(pb, budget, floor)
    res = _run(prog)
    if res.status == "infeasible":
        raise _diagnose(pb, budget, floor)
    plan = _plan(pb, budget, prog, res)
    today = _today_if_better(pb, budget, plan)
    return plan if today is None else today


def _curve_value(pb: PlanProblem, fte: F64) -> tuple[float, F64]:
    """The programme's objective and each area's starts for a plan on the 0.1-FTE grid."""
    total = 0.0
    starts = np.zeros(len(pb.victims))
    for a, s in zip(*np.nonzero(pb.served), strict=True):
        p = fte[a, s] * pb.places_per_fte[s]
        total += float(np.interp(p, pb.places[a][s], pb.value[a][s]))
        starts[a] += float(np.interp(p, pb.places[a][s], pb.starts[a][s]))
    return total, starts


def _today_if_better(pb: PlanProblem, budget: float, plan: Plan) -> Plan | None:
    """Today's allocation when it is feasible and the solver's plan (within its proven gap)
    is not better: so a plan is never worse than today's at today's budget."""
    today = pb.today_fte
    steps = today / STEP_FTE
    on_grid = np.allclose(np.round(steps) * STEP_FTE, today)
    inside = ((np.round(steps) >= pb.lo) & (np.round(steps) <= pb.hi)) | ~pb.served
    if not (on_grid and inside.all()) or pb.today_cost() > budget + 0.5:
        return None
    value, starts = _curve_value(pb, today)
    if value <= plan.objective:
        return None
    floor = pb.settings.equity_floor
    if floor > 0:
        ok = (pb.victims > 0) & pb.served.any(1)
        reach = starts[ok] / (pb.victims[ok] * pb.months / 12.0)
        if reach.min() < floor * reach.max() - 1e-12:
            return None
    ev = evaluate(pb, today, {})
    return replace(
        plan,
        fte=today.copy(),
        units={},
        cost=float(ev["cost"]),
        value=float(ev["value"].sum()),
        within=ev["within"],
        starts=ev["starts"],
        reach=ev["reach"],
        objective=value,
        bound=max(plan.bound, value),
    )


def _diagnose(pb: PlanProblem, budget: float, floor: float) -> Infeasible:
    bounds_only = least_budget(pb, 0.0)
    st = pb.settings
    if bounds_only is not None and budget < bounds_only - 0.5:
        return Infeasible(
            f"No plan fits a budget of {_money(budget)} a year: even with every service at the "
            f"most it may shrink in a year ({st.max_shrink:.0%}), the services cost "
            f"{_money(bounds_only)}. Raise the budget to at least {_money(bounds_only)}, or "
            "allow services to shrink further (--max-shrink).",
            "bounds",
            {"least_budget": bounds_only},
        )
    if floor > 0:
        need = least_budget(pb, floor)
        best = highest_floor(pb, budget)
        if need is None:
            top = highest_floor(pb, 1e15)
            return Infeasible(
                f"No plan can meet an equity floor of {floor:.0%} within the growth and "
                f"shrinkage bounds, whatever the budget: the highest floor any plan meets is "
                f"{top:.1%}. Lower the floor to at most {top:.1%}, or allow services to grow "
                "or shrink further (--max-growth, --max-shrink).",
                "equity floor",
                {"highest_floor": top, "highest_floor_at_budget": best},
            )
        return Infeasible(
            f"No plan within {_money(budget)} a year meets an equity floor of {floor:.0%} "
            f"(every area's reach at least {floor:.0%} of the best area's). The least budget "
            f"that meets it is {_money(need)}; within {_money(budget)} the highest floor any "
            f"plan meets is {best:.1%}.",
            "equity floor",
            {"least_budget": need, "highest_floor_at_budget": best},
        )
    return Infeasible(
        "No plan meets the contract lots within the growth and shrinkage bounds: a lot's "
        "services must change by the same share in each area, and their 0.1-FTE steps cannot "
        "all fit. Widen the bounds or split the lot.",
        "lots",
        {},
    )


def marginal_curve(
    pb: PlanProblem,
    budgets: Sequence[float],
    progress: Callable[[int], None] | None = None,
    executor: Executor | None = None,
) -> pd.DataFrame:
    """The best plan's value at each budget, in rising order; infeasible budgets say why.

    Budgets are solved independently (through ``executor`` when given: HiGHS releases the
    GIL, so a thread pool uses every core). Each budget's value is at least the previous
    one's: a smaller budget's plan is feasible at a larger one, so if a solve within its
    proven gap comes out a hair lower, that plan is kept.
    """
    order = sorted(budgets)

    def one(budget: float) -> Plan | Infeasible:
        try:
            return solve(pb, budget)
        except Infeasible as exc:
            return exc

    results = list(executor.map(one, order)) if executor else [one(b) for b in order]
    rows: list[dict[str, object]] = []
    best: Plan | None = None
    for i, (budget, res) in enumerate(zip(order, results, strict=True)):
        if isinstance(res, Infeasible):
            rows.append(
                {
                    "budget": budget,
                    "cost": math.nan,
                    "supported_within_target": math.nan,
                    "weighted_value": math.nan,
                    "engine_weighted_value": math.nan,
                    "note": str(res),
                }
            )
        else:
            plan, note = res, ""
            if best is not None and best.objective > plan.objective:
                plan, note = replace(best, budget=budget), "the plan for a smaller budget"
            best = plan
            rows.append(
                {
                    "budget": budget,
                    "cost": plan.cost,
                    "supported_within_target": float(plan.within.sum()),
                    "weighted_value": plan.objective,
                    "engine_weighted_value": plan.value,
                    "note": note,
                }
            )
        if progress:
            progress(i)
    return pd.DataFrame(rows)


def with_settings(pb: PlanProblem, **changes: float | int | bool) -> PlanProblem:
    """The same prepared problem with other settings (no new engine run when the bounds and
    contract period are unchanged)."""
    st = replace(pb.settings, **changes)  # type: ignore[arg-type]
    if any(
        k in changes for k in ("max_growth", "max_shrink", "new_fte", "years", "priority_weight")
    ):
        return prepare(pb.model, st, pb.scenario.name, crime_mean=pb.crime_mean)
    return replace(pb, settings=st, lots=lots_of(pb.model) if st.use_lots else ())


@dataclass(frozen=True)
class Binding:
    """What one constraint costs: victims supported within target over the contract."""

    constraint: str
    cost_victims: float  # more victims supported within target without it (>= 0)
    statement: str


def binding(plan: Plan, step: float = 100_000.0) -> list[Binding]:
    """Which constraints bind, in plain words, by re-solving without each one.

    The budget's line is the marginal value of ``step`` more a year; the others are what the
    plan would gain if the constraint were lifted (the equity floor; contract lots) or, for
    the growth and shrinkage bounds, loosened by ``BOUNDS_STEP`` (10 percentage points).
    """
    pb = plan.problem
    base = float(plan.within.sum())
    out: list[Binding] = []

    def gain(other: Plan) -> float:
        return max(0.0, float(other.within.sum()) - base)

    more = gain(solve(pb, plan.budget + step))
    out.append(
        Binding(
            "budget",
            more,
            f"An extra {_money(step)} a year would support about {more:,.0f} more victims "
            f"within the target wait over the {pb.months // 12}-year contract."
            if more >= 0.5
            else f"An extra {_money(step)} a year would not support more victims within the "
            "target wait: the budget does not bind.",
        )
    )
    st = pb.settings
    if st.equity_floor > 0:
        g = gain(solve(with_settings(pb, equity_floor=0.0), plan.budget))
        out.append(
            Binding(
                "equity floor",
                g,
                f"The equity floor ({st.equity_floor:.0%} of the best area's reach) costs "
                f"{g:,.0f} victims supported within the target wait."
                if g >= 0.5
                else "The equity floor costs nothing: the best plan meets it anyway.",
            )
        )
    grow, shrink = st.max_growth + BOUNDS_STEP, min(1.0, st.max_shrink + BOUNDS_STEP)
    wide = with_settings(pb, max_growth=grow, max_shrink=shrink)
    try:
        g = gain(solve(wide, plan.budget))
    except Infeasible:
        g = 0.0
    out.append(
        Binding(
            "growth and shrinkage bounds",
            g,
            f"The limits on change in one year bind: letting services grow up to {grow:.0%} "
            f"(not {st.max_growth:.0%}) and shrink up to {shrink:.0%} (not "
            f"{st.max_shrink:.0%}) would support {g:,.0f} more victims within the target wait."
            if g >= 0.5
            else f"The limits on growth ({st.max_growth:.0%}) and shrinkage "
            f"({st.max_shrink:.0%}) do not bind: looser limits would not help at this budget.",
        )
    )
    if pb.lots:
        try:
            g = gain(solve(with_settings(pb, use_lots=False), plan.budget))
        except Infeasible:
            g = 0.0
        out.append(
            Binding(
                "contract lots",
                g,
                f"Buying the lots' services together costs {g:,.0f} victims supported within "
                "the target wait."
                if g >= 0.5
                else "Buying the lots' services together costs nothing at this budget.",
            )
        )
    return out


def without_fte_levers(sc: Scenario) -> Scenario:
    """The scenario with its staffing levers removed (a plan sets the staffing)."""
    return sc.model_copy(update={"levers": [lv for lv in sc.levers if lv.lever != "fte"]})


def plan_model(plan: Plan, fte: F64 | None = None) -> Model:
    """The model with the plan's staffing (options as the FTE giving the same places) and the
    plan's scenario alone, without its staffing levers: ready for the Monte Carlo engine."""
    pb = plan.problem
    fte = plan.fte if fte is None else fte
    places = fte * pb.places_per_fte[None]
    if fte is plan.fte:
        code_of = {o.code: o for o in pb.options}
        for (code, a), k in plan.units.items():
            places[a, code_of[code].service] += code_of[code].places * k
    eq = places / np.where(pb.places_per_fte > 0, pb.places_per_fte, 1.0)[None]
    model = pb.model
    return replace(
        model,
        staffing=replace(model.staffing, fte=eq),
        scenarios=(without_fte_levers(pb.scenario),),
    )


def _chance_met(model: Model, metrics: dict[str, NDArray[np.float32]], months: int) -> F64:
    """Per replicate, area and service (R, A, S): is the target met in the contract's last
    year? A queue: the starts-weighted mean wait is within the target wait. A stretch
    service: the open caseload is within the safe caseload on average."""
    sv = model.services
    n_a = len(model.area_codes)
    last = slice(max(0, months - 12), months)
    starts = metrics["starts"][:, :n_a, :, last].astype(np.float64)
    wait = np.nan_to_num(metrics["mean_wait_weeks"][:, :n_a, :, last].astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_wait = (wait * starts).sum(-1) / starts.sum(-1)
    queue_ok = np.where(starts.sum(-1) > 0, mean_wait <= sv.target_wait_weeks[None, None], True)
    util = metrics["utilisation"][:, :n_a, :, last].astype(np.float64)
    stretch_ok = np.nanmean(util, axis=-1) <= 1.0
    ok = np.where(sv.stretch[None, None], stretch_ok, queue_ok)
    return ok.astype(np.float64)


def robustness(plan: Plan, replicates: int = 200, seed: int = 20240401) -> pd.DataFrame:
    """The plan and today's staffing re-run through the Monte Carlo engine (same seed, so the
    comparison shares its random numbers): per service and area, the chance the target is met
    in the contract's last year, and victims supported within target over the contract
    (mean and 80% interval). The last rows (area ``ALL``) are the totals."""
    from needsled.projection import run

    pb = plan.problem
    model = pb.model
    rows = []
    chances = {}
    totals = {}
    for label, fte in (("today", pb.today_fte), ("plan", plan.fte)):
        m = plan_model(plan, None if label == "plan" else fte)
        res = run(m, replicates=replicates, seed=seed)
        met = res.scenarios[0].metrics
        chances[label] = _chance_met(m, met, pb.months).mean(axis=0)  # (A, S)
        n_a = len(model.area_codes)
        within = met["starts"][:, :n_a, :, : pb.months].astype(np.float64) * np.nan_to_num(
            met["within_target_share"][:, :n_a, :, : pb.months].astype(np.float64)
        )
        totals[label] = within.sum(-1)  # (R, A, S)
    for a, s in zip(*np.nonzero(pb.served), strict=True):
        t, p = totals["today"][:, a, s], totals["plan"][:, a, s]
        rows.append(
            {
                "area": model.area_codes[a],
                "area_name": model.area_names[a],
                "service": model.services.codes[s],
                "chance_target_met_today": round(float(chances["today"][a, s]), 3),
                "chance_target_met_plan": round(float(chances["plan"][a, s]), 3),
                "within_target_today": round(float(t.mean()), 1),
                "within_target_plan": round(float(p.mean()), 1),
                "within_target_plan_p10": round(float(np.percentile(p, 10)), 1),
                "within_target_plan_p90": round(float(np.percentile(p, 90)), 1),
            }
        )
    for s, code in enumerate(model.services.codes):
        if not pb.served[:, s].any():
            continue
        t, p = totals["today"][:, :, s].sum(1), totals["plan"][:, :, s].sum(1)
        rows.append(
            {
                "area": "ALL",
                "area_name": "All areas",
                "service": code,
                "chance_target_met_today": np.nan,
                "chance_target_met_plan": np.nan,
                "within_target_today": round(float(t.mean()), 1),
                "within_target_plan": round(float(p.mean()), 1),
                "within_target_plan_p10": round(float(np.percentile(p, 10)), 1),
                "within_target_plan_p90": round(float(np.percentile(p, 90)), 1),
            }
        )
    return pd.DataFrame(rows)


def headline(plan: Plan, today: dict[str, F64]) -> list[str]:
    """The plan in plain words, for the top of every output."""
    pb = plan.problem
    years = pb.months / 12
    t_within, p_within = float(today["within"].sum()), float(plan.within.sum())
    change = (p_within - t_within) / t_within if t_within > 0 else math.nan
    lines = [
        f"Within {_money(plan.budget)} a year, the best plan supports {p_within:,.0f} victims "
        f"within the target wait over {years:g} years, against {t_within:,.0f} with today's "
        f"staffing ({change:+.0%}); it costs {_money(plan.cost)} a year "
        f"(today: {_money(pb.today_cost())}).",
        f"Scenario: {pb.scenario.name}. Priority victims count {pb.settings.priority_weight:g} "
        "times. "
        + (
            "The plan is proven optimal"
            if plan.gap < 1e-9
            else f"No plan can do better by more than {plan.gap:.2%} (the solver's proof)"
        )
        + (" (the solver stopped at its time limit)." if plan.status == "time limit" else "."),
    ]
    eq_t = _lottery_of(pb, today["reach"])
    eq_p = _lottery_of(pb, plan.reach)
    lines.append(
        f"Postcode lottery: the best area reaches {eq_p['ratio']:.2f} times as many victims "
        f"per 1,000 as the worst under the plan (today {eq_t['ratio']:.2f}); Gini "
        f"{eq_p['gini']:.3f} (today {eq_t['gini']:.3f})."
    )
    return lines


def _lottery_of(pb: PlanProblem, reach: F64) -> dict[str, float]:
    return lottery(reach, pb.victims)


def plan_tables(plan: Plan, today: dict[str, F64]) -> dict[str, pd.DataFrame]:
    """The plan against today's allocation: by service and area, by service, the options
    bought, and reach by area before and after. Projections are rounded, not suppressed."""
    pb = plan.problem
    model = pb.model
    sv = model.services
    rows = []
    opts_by_pair: dict[tuple[int, int], list[str]] = {}
    code_of = {o.code: o for o in pb.options}
    for (code, a), k in sorted(plan.units.items()):
        o = code_of[code]
        opts_by_pair.setdefault((a, o.service), []).append(f"{k} x {o.name}")
    for a, s in zip(*np.nonzero(pb.served), strict=True):
        option_cost = sum(
            code_of[c].cost * k
            for (c, aa), k in plan.units.items()
            if aa == a and code_of[c].service == s
        )
        rows.append(
            {
                "area": model.area_codes[a],
                "area_name": model.area_names[a],
                "service": sv.codes[s],
                "service_name": sv.names[s],
                "fte_today": round(float(pb.today_fte[a, s]), 2),
                "fte_plan": round(float(plan.fte[a, s]), 2),
                "fte_change": round(float(plan.fte[a, s] - pb.today_fte[a, s]), 2),
                "options": "; ".join(opts_by_pair.get((a, s), [])),
                "cost_today": round(float(pb.today_fte[a, s] * pb.cost_per_fte[s]), -2),
                "cost_plan": round(float(plan.fte[a, s] * pb.cost_per_fte[s] + option_cost), -2),
                "within_target_today": round(float(today["within"][a, s]), 1),
                "within_target_plan": round(float(plan.within[a, s]), 1),
                "starts_today": round(float(today["starts"][a, s]), 1),
                "starts_plan": round(float(plan.starts[a, s]), 1),
            }
        )
    by_area = pd.DataFrame(rows)
    num = [c for c in by_area.columns if c.startswith(("fte_", "cost_", "within_", "starts_"))]
    by_service = by_area.groupby(["service", "service_name"], sort=False)[num].sum().round(2)
    by_service = by_service.reset_index()
    options = pd.DataFrame(
        [
            {
                "option": c,
                "option_name": code_of[c].name,
                "service": sv.codes[code_of[c].service],
                "area": model.area_codes[a],
                "area_name": model.area_names[a],
                "units": k,
                "cost": round(code_of[c].cost * k, -2),
            }
            for (c, a), k in sorted(plan.units.items())
        ],
        columns=["option", "option_name", "service", "area", "area_name", "units", "cost"],
    )
    reach = pd.DataFrame(
        {
            "area": model.area_codes,
            "area_name": model.area_names,
            "estimated_victims_a_year": np.round(pb.victims),
            "reach_per_1000_today": np.round(today["reach"], 1),
            "reach_per_1000_plan": np.round(plan.reach, 1),
        }
    )
    eq_t, eq_p = _lottery_of(pb, today["reach"]), _lottery_of(pb, plan.reach)
    lottery_table = pd.DataFrame(
        [
            {"measure": k, "today": round(eq_t[k], 3), "plan": round(eq_p[k], 3)}
            for k in ("best", "worst", "ratio", "gini")
        ]
    )
    return {
        "plan": by_area,
        "plan_by_service": by_service,
        "options_bought": options,
        "reach": reach,
        "lottery": lottery_table,
    }


def plan(
    model: Model,
    budget: float,
    scenario: str | None = None,
    *,
    seed: int = 20240401,
    **settings: float | int | bool,
) -> Plan:
    """The best plan within ``budget`` (£ a year) in one call: ``needsled.plan(model, 21.8e6,
    equity_floor=0.6)``. Other settings as :class:`Settings`; raises :class:`Infeasible` with
    a plain answer when no plan meets the constraints. Then :func:`binding`,
    :func:`marginal_curve` (on ``plan.problem``), :func:`robustness`, :func:`plan_tables`."""
    pb = prepare(model, Settings(budget=budget, **settings), scenario, seed=seed)  # type: ignore[arg-type]
    return solve(pb)
