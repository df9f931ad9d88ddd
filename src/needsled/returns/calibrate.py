"""Estimate the model's parameters from provider returns, each with an 80% interval.

Pure: a :class:`~needsled.model.Model` and a tidy returns frame
(:data:`needsled.returns.format.COLUMNS`) in, a :class:`Calibration` out. Returns from several
providers for one service, area and quarter are added together (the model has one team per
service and area). Each parameter is estimated per service, pooled over areas and quarters,
and by area where the count it rests on is at least :data:`MIN_COUNT`. What each reads
(``k`` and ``n`` are sums over the cells used)::

    referral_share      police referrals k against the model's expected police referrals E,
                        from its recorded crime for the same months and areas, consent and need
                        mix as given:  new = old x k / E
    contact_share       (contacted - referrals by the other routes) / police referrals
    decline_share       declined / contacted
    drop_out_per_month  left the waiting list / person-months on the list
    duration_weeks      Little's law: open-case-months / (starts + re-engaged) x 52/12
    caseload_per_fte    open cases / FTE in post, at quarter ends with a waiting list

*Contacted* counts every referral the service was in contact with, self- and agency referrals
included (they made contact themselves; the model's contact share applies to police referrals
only). A quarter's person-months come from the lists at its start (the previous quarter's end)
and end, in the model's monthly timing (:func:`_person_months`), so drop-out and duration use
the quarters whose previous quarter is in the returns; when none is, the quarter-end figure
stands for the whole quarter (a note says so).

**Intervals** (80%; they carry the counts' noise only, not error in the model's structure or
in the recorded crime):

- contact and decline: the Jeffreys interval, the 10th and 90th percentiles of
  Beta(k + 1/2, n - k + 1/2), k binomial out of n;
- drop-out: the same with n person-months, widened on the log scale for the months between
  quarter ends that the returns do not show (:func:`_unseen`);
- referral share: the Jeffreys interval for a Poisson count, the Gamma(k + 1/2) percentiles,
  over the expected police referrals at a share of 1;
- support duration ``W`` from ``n`` starts: ``W x exp(+-1.2816 sd)`` with ``sd^2`` from the
  delta method for a steady caseload (:func:`_duration_var`: ``1 / n`` for exponential
  durations, ``cv^2 / n`` over windows much longer than ``W``), plus the unseen months when
  the service was not full throughout;
- caseload: a full service holds ``floor(FTE x caseload)`` cases, so each quarter end says the
  caseload lies in ``[open, open + 1) / FTE``; the interval is that band for the pooled
  figure, widened to the Student-t interval of the quarter-by-quarter ratios when they vary
  more than rounding explains.

Pathway rates are the same for every service, so they are pooled over services too (service
``ALL``): that row is the one written. The model's rates may differ by offence and area, so
the returns measure their average weighted by the journey (``old``), and the writer scales
every pathway row by ``new / old``, keeping the differences between rows. Anything the data
cannot support (no one contacted, no waiting list, a stretch service's caseload, ...) is left
as it was, with a note saying why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import astuple, dataclass, field, fields, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from needsled.demand import point_parameters
from needsled.model import Model
from needsled.returns.format import COLUMNS, ROUTES, is_quarter, quarter_months
from needsled.returns.synthetic import Journey, journey
from needsled.scenarios import month_index

__all__ = ["ALL", "MIN_COUNT", "Calibration", "Estimate", "calibrate"]

F64 = NDArray[np.float64]
Mask = NDArray[np.bool_]
MIN_COUNT = 10  # the least count (or person-months) an estimate is written from
Z90 = 1.2815515655446004  # 90th percentile of the standard Normal
WEEKS_PER_MONTH = 52.0 / 12.0
STEADY = 0.25  # Little's law gets a note when open cases change by more than this
UNSEEN = 2.0 * 2.0 / 3.0  # the months between quarter ends: see _unseen
ALL = "ALL"
OTHER_ROUTES = tuple(r for r in ROUTES if r != "police")


@dataclass(frozen=True)
class Estimate:
    """One parameter for one service (or ``ALL``) in one area (or ``ALL``)."""

    parameter: str
    service: str
    area: str
    old: float
    value: float  # NaN: not estimated
    lo: float
    hi: float
    n: float  # the count the estimate rests on
    n_of: str  # what n counts
    written: bool  # goes into the calibrated model
    note: str = ""


@dataclass(frozen=True)
class Calibration:
    estimates: tuple[Estimate, ...]
    quarters: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def period(self) -> str:
        if not self.quarters:
            return "no quarters"
        first, last = self.quarters[0], self.quarters[-1]
        return first if first == last else f"{first} to {last}"

    def get(self, parameter: str, service: str = ALL, area: str = ALL) -> Estimate | None:
        for e in self.estimates:
            if (e.parameter, e.service, e.area) == (parameter, service, area):
                return e
        return None

    def written(self) -> tuple[Estimate, ...]:
        return tuple(e for e in self.estimates if e.written)

    def table(self) -> pd.DataFrame:
        """One row per estimate: parameter, service, area, old, new, lo, hi, n, ... note."""
        names = [f.name for f in fields(Estimate)]
        frame = pd.DataFrame([astuple(e) for e in self.estimates], columns=names)
        frame["written"] = np.where(frame["written"].astype(bool), "yes", "no")
        return frame.rename(columns={"value": "new"})


# ---------------------------------------------------------------- the returns as arrays


@dataclass(frozen=True)
class _Cells:
    """The returns as arrays (A, S, Q), NaN where not returned. ``prev[q]`` is the index of
    the calendar quarter before ``q``, or -1 when the returns do not hold it."""

    quarters: tuple[str, ...]
    prev: NDArray[np.int64]
    values: dict[tuple[str, str], F64]
    shape: tuple[int, int, int]
    notes: list[str] = field(default_factory=list)

    def get(self, measure: str, category: str = "") -> F64:
        return self.values.get((measure, category), np.full(self.shape, np.nan))

    def total(self, measure: str, categories: tuple[str, ...]) -> F64:
        """Sum over categories; a category left out counts 0 where another was given."""
        parts = np.stack([self.get(measure, c) for c in categories])
        given = ~np.isnan(parts).all(axis=0)
        return np.where(given, np.nansum(parts, axis=0), np.nan)

    def at_prev(self, x: F64) -> F64:
        """``x`` at the end of the previous quarter (NaN where not returned)."""
        out = np.full(self.shape, np.nan)
        has = self.prev >= 0
        out[..., has] = x[..., self.prev[has]]
        return out


def _quarter_no(q: str) -> int:
    return int(q[:4]) * 4 + int(q[-1]) - 1


def _cells(model: Model, returns: pd.DataFrame) -> _Cells:
    missing = [c for c in COLUMNS if c not in returns.columns]
    if missing:
        raise ValueError(f"returns have no column {', '.join(missing)}; need {', '.join(COLUMNS)}")
    frame = returns.loc[:, list(COLUMNS)].copy()
    for col in COLUMNS[:-1]:
        frame[col] = frame[col].fillna("").astype(str).astype(object)
    frame["value"] = pd.to_numeric(frame["value"], errors="raise").astype(np.float64)
    bad = sorted({q for q in frame["quarter"] if not is_quarter(q)})
    if bad:
        raise ValueError(f"quarters must be written YYYY-Qn, not {', '.join(bad[:5])}")
    notes: list[str] = []
    s_idx = {c: i for i, c in enumerate(model.services.codes)}
    a_idx = {c: i for i, c in enumerate(model.area_codes)}
    for col, idx in (("service", s_idx), ("area", a_idx)):
        unknown = sorted(set(frame[col]) - set(idx))
        if unknown:
            notes.append(f"returns for {col} {', '.join(unknown)} left out: not in the model")
    frame = frame[frame["service"].isin(list(s_idx)) & frame["area"].isin(list(a_idx))]
    served = model.staffing.served[
        frame["area"].map(a_idx).to_numpy(int), frame["service"].map(s_idx).to_numpy(int)
    ]
    pairs = sorted(set(zip(frame["service"][~served], frame["area"][~served], strict=True)))
    notes += [f"returns for {s} in {a} left out: the model has no such team" for s, a in pairs]
    frame = frame[served]
    quarters = tuple(sorted(set(frame["quarter"]), key=_quarter_no))
    q_idx = {q: i for i, q in enumerate(quarters)}
    shape = (len(a_idx), len(s_idx), len(quarters))
    keys = ["measure", "category", "area", "service", "quarter"]
    summed = frame.groupby(keys, sort=False)["value"].sum(min_count=1)
    values: dict[tuple[str, str], F64] = {}
    for key, v in summed.items():
        measure, cat, a, s, q = (str(k) for k in key)  # type: ignore[attr-defined]
        arr = values.setdefault((measure, cat), np.full(shape, np.nan))
        arr[a_idx[a], s_idx[s], q_idx[q]] = float(v)
    numbers = [_quarter_no(q) for q in quarters]
    prev = np.array([numbers.index(n - 1) if n - 1 in numbers else -1 for n in numbers], int)
    return _Cells(quarters, prev, values, shape, notes)


@dataclass(frozen=True)
class _Expected:
    """The journey's expected counts per quarter (A, S, Q): at the model's rates (``model``)
    and at referral share 1 (``rs1``); ``covered``: quarters inside the recorded crime."""

    model: Journey
    rs1: Journey
    covered: NDArray[np.bool_]


def _expected(model: Model, quarters: tuple[str, ...]) -> _Expected:
    """Months outside the recorded crime take its last year's average: those quarters are
    used only as weights between offences (contact and decline), never for referral share."""
    hist = model.crime_history
    first = month_index(model.history_end) - hist.shape[-1] + 1
    months = [m for q in quarters for m in quarter_months(q)]
    crime = np.empty((*hist.shape[:2], len(months)))
    covered = np.zeros(len(months), dtype=bool)
    for i, m in enumerate(months):
        t = month_index(m) - first
        covered[i] = 0 <= t < hist.shape[-1]
        crime[..., i] = hist[..., t] if covered[i] else hist[..., -12:].mean(axis=-1)
    base = point_parameters(model)
    ones = np.ones_like(base.pathway["referral_share"])
    rs1 = replace(base, pathway={**base.pathway, "referral_share": ones})
    n_q = len(quarters)

    def fold(j: Journey) -> Journey:
        parts = {
            f.name: getattr(j, f.name).reshape(*j.police.shape[:2], n_q, 3).sum(axis=-1)
            for f in fields(j)
        }
        return Journey(**parts)

    return _Expected(
        fold(journey(model, crime)),
        fold(journey(model, crime, draws=rs1)),
        np.asarray(covered.reshape(n_q, 3).all(axis=1)),
    )


# ---------------------------------------------------------------- intervals


def _beta80(k: float, n: float) -> tuple[float, float]:
    """Jeffreys 80% interval for a binomial share k / n."""
    lo = 0.0 if k <= 0 else float(stats.beta.ppf(0.1, k + 0.5, n - k + 0.5))
    hi = 1.0 if k >= n else float(stats.beta.ppf(0.9, k + 0.5, n - k + 0.5))
    return lo, hi


def _gamma80(k: float) -> tuple[float, float]:
    """Jeffreys 80% interval for the mean of a Poisson count k."""
    lo = 0.0 if k <= 0 else float(stats.gamma.ppf(0.1, k + 0.5))
    return lo, float(stats.gamma.ppf(0.9, k + 0.5))


# ---------------------------------------------------------------- estimators


@dataclass(frozen=True)
class _Fit:
    value: float
    lo: float
    hi: float
    n: float
    old: float
    note: str = ""
    ok: bool = True


def _failed(n: float, old: float, note: str) -> _Fit:
    return _Fit(np.nan, np.nan, np.nan, n, old, note, ok=False)


def _share(k: float, n: float, old: float, note: str = "") -> _Fit:
    lo, hi = _beta80(k, n)
    value = k / n
    return _Fit(value, min(lo, value), max(hi, value), n, old, note)


def _sum(x: F64, sel: Mask) -> float:
    return float(np.sum(x[sel]))


@dataclass(frozen=True)
class _Param:
    """How to estimate one parameter: which cells can be used and the fit on a selection."""

    name: str
    n_of: str
    used: Mask  # (A, S, Q)
    fit: Callable[[Mask], _Fit]
    old: Callable[[int | None], float]  # the model's value where no cell is usable
    why_none: Callable[[int | None], str]  # (None: every service together)
    pathway: bool = False
    least: float = MIN_COUNT


def _groups(model: Model, p: _Param, services: list[int]) -> Iterator[tuple[int | None, str, Mask]]:
    """(service, area, cells): each service pooled, then by area; pathway rates also for
    every service together (service None)."""
    for s in services:
        only = np.zeros_like(p.used)
        only[:, s] = p.used[:, s]
        yield s, ALL, only
        for a in np.flatnonzero(only.any(axis=(1, 2))):
            by_area = np.zeros_like(only)
            by_area[a] = only[a]
            yield s, model.area_codes[a], by_area
    if p.pathway:
        yield None, ALL, p.used


def _estimates(model: Model, p: _Param, services: list[int]) -> list[Estimate]:
    out: list[Estimate] = []
    for s, area, sel in _groups(model, p, services):
        service = ALL if s is None else model.services.codes[s]
        if not sel.any():
            nan = float("nan")
            out.append(
                Estimate(
                    p.name, service, area, p.old(s), nan, nan, nan, 0, p.n_of, False, p.why_none(s)
                )
            )
            continue
        f = p.fit(sel)
        if area != ALL and (f.n < p.least or not f.ok):
            continue  # by area only where the counts allow
        enough = f.n >= p.least
        note = f.note
        if f.ok and not enough:
            note = f"too few to estimate: {f.n:g} {p.n_of}, fewer than {p.least:g}; left as it was"
            f = replace(f, value=np.nan, lo=np.nan, hi=np.nan)
        pooled = area == ALL and ((s is None) == p.pathway)
        if p.pathway and s is not None and area == ALL and f.ok and enough:
            note = "this service's figure; the model takes the ALL row. " + note
        written = pooled and f.ok and enough
        values = (f.old, f.value, f.lo, f.hi, f.n)
        out.append(Estimate(p.name, service, area, *values, p.n_of, written, note.strip()))
    return out


def _cols(x: F64, s: int | None) -> F64:
    """A service's cells (every service's when ``s`` is None)."""
    return x if s is None else x[:, s]


def _ratio(num: F64, den: F64) -> float:
    d = float(den.sum())
    return float(num.sum()) / d if d > 0 else float("nan")


def _referral_share(cells: _Cells, exp: _Expected) -> _Param:
    police = cells.get("referrals", "police")
    total = np.nan_to_num(cells.total("referrals", ROUTES))
    e_model, e_one = exp.model.police, exp.rs1.police
    used = ~np.isnan(police) & exp.covered[None, None, :] & (e_one > 0)

    def fit(sel: Mask) -> _Fit:
        k, e, e1 = _sum(police, sel), _sum(e_model, sel), _sum(e_one, sel)
        old = e / e1
        if k == 0 and _sum(total, sel) > 0:
            return _failed(
                k, old, "no referrals by the police route (is the route recorded?); left as it was"
            )
        lo, hi = _gamma80(k)
        note = f"{k:g} police referrals against {e:.1f} expected at the old share"
        return _Fit(k / e1, lo / e1, hi / e1, k, old, note)

    def why(_s: int | None) -> str:
        if not exp.covered.any():
            return (
                "the model's recorded crime does not reach these quarters: extend its crime "
                "table to them; left as it was"
            )
        return "no police referrals returned for quarters the crime table covers; left as it was"

    return _Param(
        "referral_share",
        "police referrals",
        used,
        fit,
        lambda s: _ratio(_cols(e_model, s), _cols(e_one, s)),
        why,
        pathway=True,
    )


def _contact_share(cells: _Cells, exp: _Expected) -> _Param:
    police, contacted = cells.get("referrals", "police"), cells.get("contacted")
    other = np.nan_to_num(cells.total("referrals", OTHER_ROUTES))
    e = exp.model
    used = ~np.isnan(police) & ~np.isnan(contacted) & (e.police > 0)

    def fit(sel: Mask) -> _Fit:
        n, k = _sum(police, sel), _sum(contacted - other, sel)
        old = _sum(e.police_contacted, sel) / _sum(e.police, sel)
        if n <= 0:
            return _failed(n, old, "no police referrals; left as it was")
        if not 0 <= k <= n:
            return _failed(
                n,
                old,
                f"contacted less the referrals by other routes is {k:g}, outside 0 to {n:g} "
                "police referrals: check what the returns count as contacted (self- and "
                "agency referrals count too); left as it was",
            )
        return _share(k, n, old)

    return _Param(
        "contact_share",
        "police referrals",
        used,
        fit,
        lambda s: _ratio(_cols(e.police_contacted, s), _cols(e.police, s)),
        lambda _s: "no quarter with both police referrals and contacted; left as it was",
        pathway=True,
    )


def _decline_share(cells: _Cells, exp: _Expected) -> _Param:
    contacted, declined = cells.get("contacted"), cells.get("declined")
    e = exp.model
    used = ~np.isnan(contacted) & ~np.isnan(declined) & (e.contacted > 0)

    def fit(sel: Mask) -> _Fit:
        n, k = _sum(contacted, sel), _sum(declined, sel)
        old = _sum(e.declined, sel) / _sum(e.contacted, sel)
        if n <= 0:
            return _failed(n, old, "no one was contacted; left as it was")
        if k > n:
            return _failed(
                n, old, f"declined ({k:g}) is more than contacted ({n:g}); left as it was"
            )
        return _share(k, n, old)

    return _Param(
        "decline_share",
        "contacted",
        used,
        fit,
        lambda s: _ratio(_cols(e.declined, s), _cols(e.contacted, s)),
        lambda _s: "no quarter with both contacted and declined; left as it was",
        pathway=True,
    )


def _person_months(
    cells: _Cells, stock: F64, sel: Mask, weights: tuple[float, float]
) -> tuple[Mask, F64, str]:
    """Cells to use and their person-months: ``a x start + b x end`` (``weights``) where the
    previous quarter's end is returned, else (when no selected cell has it) ``3 x end``.

    The weights follow the model's monthly timing with the two months between quarter ends
    interpolated linearly: drop-out in a month applies to the list carried into it (the lists
    at the start, after one and after two months: ``2 x start + end``), and the caseload is
    counted at each month's end (``start + 2 x end``). For a steady list both are
    ``3 x (start + end) / 2``.
    """
    start = cells.at_prev(stock)
    with_start = sel & ~np.isnan(start)
    if with_start.any():
        return with_start, weights[0] * np.nan_to_num(start) + weights[1] * stock, ""
    note = (
        "no quarter has the quarter before it in the returns, so each quarter's end stands "
        "for the whole quarter"
    )
    return sel, 3.0 * stock, note


def _unseen(out: float, person_months: float) -> float:
    """Relative variance of person-months read from quarter ends, ``UNSEEN x out / pm^2``,
    where ``out`` is the people who left the list (or caseload) in those quarters.

    A list that loses about ``out / 3`` people a month and gains as many moves like a random
    walk with variance ``sigma^2 = 2 out / 3`` a month. Between two quarter ends it is a
    random-walk bridge: the two unseen months differ from the straight line by errors with
    variance ``2 sigma^2 / 3`` each and covariance ``sigma^2 / 3``, ``2 sigma^2`` in all.
    """
    return UNSEEN * out / person_months**2 if person_months > 0 else 0.0


def _service_of(sel: Mask) -> int:
    return int(np.flatnonzero(sel.any(axis=(0, 2)))[0])


def _service_value(values: F64) -> Callable[[int | None], float]:
    return lambda s: float("nan") if s is None else float(values[s])


def _drop_out(model: Model, cells: _Cells) -> _Param:
    left, waiting = cells.get("left_waiting_list"), cells.get("waiting_end")
    starts = np.nan_to_num(cells.get("starts"))
    stretch = model.services.stretch
    used = ~np.isnan(left) & ~np.isnan(waiting) & ~stretch[None, :, None]
    old = _service_value(model.services.drop_out_per_month.value)

    def fit(sel: Mask) -> _Fit:
        before = old(_service_of(sel))
        sel, months, note = _person_months(cells, waiting, sel, (2.0, 1.0))
        n, k = _sum(months, sel), _sum(left, sel)
        if n <= 0:
            return _failed(n, before, "nobody was on the waiting list; left as it was")
        if k > n:
            return _failed(
                n, before, f"left the list ({k:g}) is more than the person-months on it ({n:g})"
            )
        f = _share(k, n, before, f"{k:g} left the list. {note}")
        widen = np.sqrt(1.0 + _unseen(_sum(starts + left, sel), n) * (k + 0.5))
        lo = f.value * (f.lo / f.value) ** widen if f.lo > 0 else 0.0
        hi = f.value * (f.hi / f.value) ** widen if f.value > 0 else f.hi * widen
        return replace(f, lo=lo, hi=min(hi, 1.0))

    def why(s: int | None) -> str:
        if s is not None and stretch[s]:
            return "a stretch service keeps no waiting list; left as it was"
        return "no quarter with both left the waiting list and the waiting list; left as it was"

    return _Param("drop_out_per_month", "person-months waiting", used, fit, old, why)


def _duration(model: Model, cells: _Cells) -> _Param:
    starts, open_end = cells.get("starts"), cells.get("open_end")
    waiting, reengaged = cells.get("waiting_end"), cells.get("reengaged")
    inflow = starts + np.nan_to_num(reengaged)
    used = ~np.isnan(starts) & ~np.isnan(open_end)
    sv = model.services
    old = _service_value(sv.duration_weeks.value)

    def fit(sel: Mask) -> _Fit:
        s = _service_of(sel)
        sel, months, note = _person_months(cells, open_end, sel, (1.0, 2.0))
        n, case_months = _sum(inflow, sel), _sum(months, sel)
        if n <= 0 or case_months <= 0:
            return _failed(n, old(s), "no starts or no open cases; left as it was")
        w = case_months / n  # months
        quarters = np.flatnonzero(sel.any(axis=(0, 1)))
        # a full service (a waiting list throughout) holds a fixed caseload: nothing unseen
        full = not sv.stretch[s] and bool(
            (np.nan_to_num(waiting[sel]) > 0).all()
            and (np.nan_to_num(cells.at_prev(waiting)[sel]) > 0).all()
        )
        var = _duration_var(w, float(sv.duration_cv[s]), n, 3.0 * len(quarters))
        sd = np.sqrt(var + (0.0 if full else _unseen(n, case_months)))
        weeks = w * WEEKS_PER_MONTH
        notes = [note]
        if sv.reengage_share.value[s] > 0 and np.isnan(reengaged[sel]).all():
            notes.append(
                "the model has re-engagement but the returns do not say how many came back, "
                "so this may be too long"
            )
        ends = [float(np.sum(open_end[..., q][sel[..., q]])) for q in quarters]
        if abs(ends[-1] - ends[0]) > STEADY * max(ends[0], 1.0):
            notes.append(
                f"open cases went from {ends[0]:g} to {ends[-1]:g}, and Little's law assumes "
                "a steady caseload"
            )
        lo, hi = weeks * np.exp(-Z90 * sd), weeks * np.exp(Z90 * sd)
        return _Fit(weeks, lo, hi, n, old(s), " ".join(x for x in notes if x))

    return _Param(
        "duration_weeks",
        "starts",
        used,
        fit,
        old,
        lambda _s: "no quarter with both starts and open cases; left as it was",
    )


def _duration_var(w: float, cv: float, n: float, t_months: float) -> float:
    """Relative variance of Little's law's duration ``W`` from ``n`` starts over ``t`` months.

    By the delta method on ``log(open-case-months) - log(starts)`` for a steady M/G/infinity
    caseload (Poisson starts, durations with mean ``W`` and cv ``c``), the variance is
    ``(c^2 + (1 - c^2) g(t / W)) / n``: exactly ``1 / n`` for exponential durations at any
    window; ``c^2 / n`` in a window much longer than ``W``; and for fixed durations
    ``g(x) = 1 - x^2 / 3`` (``x <= 1``) or ``2 / (3x)`` (``x >= 1``), used between. A full
    service (fixed caseload) gives the same: completions of many busy places form a renewal
    process with variance ``n c^2`` over long windows, Poisson over short ones.
    """
    x = t_months / w
    g = 1.0 - x**2 / 3.0 if x <= 1.0 else 2.0 / (3.0 * x)
    return (cv**2 + (1.0 - cv**2) * g) / n


def _caseload(model: Model, cells: _Cells) -> _Param:
    open_end, fte, waiting = (
        cells.get("open_end"),
        cells.get("fte_in_post"),
        cells.get("waiting_end"),
    )
    sv = model.services
    have = ~np.isnan(open_end) & (np.nan_to_num(fte) > 0)
    used = have & (np.nan_to_num(waiting) > 0) & ~sv.stretch[None, :, None]
    old = _service_value(sv.places_per_fte)

    def fit(sel: Mask) -> _Fit:
        k, f, m = _sum(open_end, sel), _sum(fte, sel), int(sel.sum())
        value, lo, hi = k / f, k / f, (k + m) / f
        if m >= 2:
            ratios = open_end[sel] / fte[sel]
            half = float(stats.t.ppf(0.9, m - 1)) * float(ratios.std(ddof=1)) / np.sqrt(m)
            lo, hi = min(lo, ratios.mean() - half), max(hi, ratios.mean() + half)
        return _Fit(value, lo, hi, m, old(_service_of(sel)))

    def why(s: int | None) -> str:
        sel = np.zeros_like(have)
        if s is not None:
            sel[:, s] = have[:, s]
        seen = (
            f" (observed {_sum(open_end, sel) / _sum(fte, sel):.1f} per FTE)" if sel.any() else ""
        )
        if s is not None and sv.stretch[s]:
            return (
                "a stretch service's caseload per FTE is its safe caseload, a policy the "
                f"returns cannot estimate{seen}; left as it was"
            )
        if not sel.any():
            return "no quarter with both open cases and FTE in post; left as it was"
        return (
            "no quarter end with a waiting list: the service was never full, so its open cases "
            f"show demand, not capacity{seen}, a lower bound; left as it was"
        )

    return _Param(
        "caseload_per_fte", "quarter ends with a waiting list", used, fit, old, why, least=1
    )


def calibrate(model: Model, returns: pd.DataFrame) -> Calibration:
    """Every parameter the returns can speak to, per service (and area), with 80% intervals.

    Raises ``ValueError`` when the frame is not in the returns format (columns, quarters).
    """
    cells = _cells(model, returns)
    notes = list(cells.notes)
    given = np.zeros(len(model.services), dtype=bool)
    for v in cells.values.values():
        given |= (~np.isnan(v)).any(axis=(0, 2))
    notes += [
        f"no returns for {code}: its parameters are as they were"
        for code, g in zip(model.services.codes, given, strict=True)
        if not g
    ]
    if not cells.quarters:
        return Calibration((), (), tuple(notes))
    exp = _expected(model, cells.quarters)
    params = [
        _referral_share(cells, exp),
        _contact_share(cells, exp),
        _decline_share(cells, exp),
        _drop_out(model, cells),
        _duration(model, cells),
        _caseload(model, cells),
    ]
    have = [int(s) for s in np.flatnonzero(given)]
    estimates = [e for p in params for e in _estimates(model, p, have)]
    return Calibration(tuple(estimates), cells.quarters, tuple(notes))
