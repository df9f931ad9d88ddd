"""Tables from a run: results (long form), yearly summary, waterfall, queueing checks.

Pure: takes a :class:`~needsled.projection.RunResult`, returns pandas DataFrames. Projections
are rounded to a sensible precision (they are estimates, not observations: model.md section 8).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from needsled import queueing
from needsled.model import Model
from needsled.projection import METRICS, WEEKS_PER_MONTH, RunResult, ScenarioResult, as_slice
from needsled.scenarios import month_index
from needsled.stats import summarise

__all__ = [
    "ALL_AREAS",
    "DECIMALS",
    "financial_years",
    "queueing_table",
    "results_table",
    "rounded",
    "rounded_values",
    "summary_table",
    "waterfall_table",
    "yearly",
]

ALL_AREAS = "ALL"
RESULT_COLUMNS = [
    "scenario",
    "area",
    "service",
    "month",
    "metric",
    "mean",
    "p10",
    "p50",
    "p90",
    "deterministic",
    "area_name",
]
# decimals kept per metric: counts to 1 place, weeks to 1, shares to 3, FTE to 2, £ to 100
DECIMALS = {
    "mean_wait_weeks": 1,
    "p90_wait_weeks": 1,
    "within_target_share": 3,
    "utilisation": 3,
    "caseload_per_fte": 1,
    "fte": 2,
    "fte_needed": 2,
    "fte_shortfall": 2,
    "cost_shortfall": -2,
}


def rounded(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Round one metric's rows to its precision (no negative zeros)."""
    for col in ("mean", "p10", "p50", "p90", "deterministic"):
        if col in frame:
            frame[col] = rounded_values(frame[col].to_numpy(np.float64), metric)
    return frame


def rounded_values(x: NDArray[np.floating], metric: str) -> NDArray[np.float64]:
    """One metric's figures (float64) rounded to its precision (no negative zeros)."""
    x64: NDArray[np.float64] = np.asarray(x, dtype=np.float64)
    return np.asarray(np.round(x64, DECIMALS.get(metric, 1)) + 0.0, dtype=np.float64)


def _served(res: RunResult) -> NDArray[np.bool_]:
    served = res.model.staffing.served
    return np.vstack([served, np.asarray(served.any(axis=0))[None]])  # (A + 1, S)


def results_table(res: RunResult) -> pd.DataFrame:
    """Every metric by scenario, area (plus ALL), service and month; served pairs only."""
    model = res.model
    areas = [*model.area_codes, ALL_AREAS]
    names = dict(zip(model.area_codes, model.area_names, strict=True)) | {ALL_AREAS: "All areas"}
    served = _served(res)
    frames = []
    for sr in res.scenarios:
        for metric in METRICS:
            stats = summarise(sr.metrics[metric])  # (4, A+1, S, T)
            det = sr.deterministic[metric]
            a_i, s_i, t_i = np.nonzero(np.broadcast_to(served[..., None], det.shape))
            frames.append(
                rounded(
                    pd.DataFrame(
                        {
                            "scenario": sr.scenario.name,
                            "area": np.asarray(areas)[a_i],
                            "service": np.asarray(model.services.codes)[s_i],
                            "month": np.asarray(res.months)[t_i],
                            "metric": metric,
                            "mean": stats[0, a_i, s_i, t_i],
                            "p10": stats[1, a_i, s_i, t_i],
                            "p50": stats[2, a_i, s_i, t_i],
                            "p90": stats[3, a_i, s_i, t_i],
                            "deterministic": det[a_i, s_i, t_i],
                            "area_name": np.asarray([names[a] for a in areas])[a_i],
                        }
                    ),
                    metric,
                )
            )
    out = pd.concat(frames, ignore_index=True)
    for col in ("scenario", "area", "service", "month", "metric", "area_name"):
        out[col] = out[col].astype("category")
    return out[RESULT_COLUMNS]


def financial_years(months: tuple[str, ...]) -> NDArray[np.str_]:
    """April-to-March year of each month, written 2025/26."""
    idx = np.array([month_index(m) for m in months])
    start = idx // 12 - (idx % 12 < 3)
    return np.array([f"{y}/{(y + 1) % 100:02d}" for y in start])


def yearly(
    sr: ScenarioResult, metric: str, years: NDArray[np.str_], *, stochastic: bool = True
) -> tuple[NDArray[np.float64], list[str]]:
    """(R or 1, A+1, S, Y) yearly value per replicate: flows summed, stocks at year end,
    waits weighted by starts, FTE and costs averaged over the year's months. The
    deterministic run's comes first (1 + R rows); with ``stochastic=False``, it alone."""
    labels = list(dict.fromkeys(years.tolist()))
    picks = [as_slice(np.flatnonzero(years == y)) for y in labels]  # views where they can be
    det = _yearly_values({k: v[None] for k, v in sr.deterministic.items()}, metric, picks)
    if not stochastic:
        return det, labels
    return np.concatenate([det, _yearly_values(sr.metrics, metric, picks)]), labels


def _yearly_values(
    m: Mapping[str, NDArray[np.floating]], metric: str, picks: list[slice | NDArray[np.int64]]
) -> NDArray[np.float64]:
    """:func:`yearly` of one run's metrics (R, A+1, S, T): (R, A+1, S, Y)."""
    cols = []
    for sel in picks:
        x = m[metric][..., sel].astype(np.float64)
        if metric in ("referrals", "starts", "drop_outs", "completions"):
            cols.append(x.sum(-1))
        elif metric in ("waiting", "open_cases"):
            cols.append(x[..., -1])
        elif metric in ("mean_wait_weeks", "within_target_share"):
            w = m["starts"][..., sel].astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                cols.append(np.nansum(x * w, -1) / w.sum(-1))
        else:  # a service absent from an area is NaN all year: its mean stays NaN
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                cols.append(np.nanmean(x, -1) if np.isfinite(x).any() else x[..., -1])
    return np.stack(cols, -1)


SUMMARY_METRICS = (
    "referrals",
    "starts",
    "drop_outs",
    "waiting",
    "mean_wait_weeks",
    "within_target_share",
    "caseload_per_fte",
    "fte",
    "fte_needed",
    "fte_shortfall",
    "cost_shortfall",
)


def summary_table(res: RunResult) -> pd.DataFrame:
    """Year x service x area: the numbers a commissioner quotes, with 80% intervals."""
    model = res.model
    years = financial_years(res.months)
    areas = np.asarray([*model.area_codes, ALL_AREAS])
    served = _served(res)
    frames = []
    for sr in res.scenarios:
        for metric in SUMMARY_METRICS:
            x, labels = yearly(sr, metric, years)
            stats = summarise(x[1:])
            det = x[0]
            a_i, s_i, y_i = np.nonzero(np.broadcast_to(served[..., None], det.shape))
            frames.append(
                rounded(
                    pd.DataFrame(
                        {
                            "scenario": sr.scenario.name,
                            "year": np.asarray(labels)[y_i],
                            "service": np.asarray(model.services.codes)[s_i],
                            "area": areas[a_i],
                            "metric": metric,
                            "mean": stats[0, a_i, s_i, y_i],
                            "p10": stats[1, a_i, s_i, y_i],
                            "p50": stats[2, a_i, s_i, y_i],
                            "p90": stats[3, a_i, s_i, y_i],
                            "deterministic": det[a_i, s_i, y_i],
                        }
                    ),
                    metric,
                )
            )
    return pd.concat(frames, ignore_index=True)


def waterfall_table(res: RunResult) -> pd.DataFrame:
    """What each lever added to referrals over the horizon, by scenario, service and area.

    One row per lever plus a 'baseline' row (the baseline scenario's referrals) and a
    'scenario' row (the scenario's total); the levers add up exactly to the difference.
    """
    model = res.model
    base = next((s for s in res.scenarios if not s.scenario.levers), None)
    rows = []
    areas = [*model.area_codes, ALL_AREAS]
    for sr in res.scenarios:
        total = sr.deterministic["referrals"].sum(-1)  # (A+1, S)
        start = (
            base.deterministic["referrals"].sum(-1)
            if base
            else total - np.concatenate([sr.waterfall.sum(0), sr.waterfall.sum((0, 1))[None]])
        )
        steps = [("baseline", "Baseline referrals", start)]
        for lever, contrib in zip(sr.scenario.levers, sr.waterfall, strict=True):
            steps.append(
                (lever.lever, lever.label(), np.concatenate([contrib, contrib.sum(0)[None]]))
            )
        steps.append(("scenario", f"{sr.scenario.name} referrals", total))
        for order, (kind, label, values) in enumerate(steps):
            for a, s in zip(*np.nonzero(_served(res)), strict=True):
                rows.append(
                    (
                        sr.scenario.name,
                        areas[a],
                        model.services.codes[s],
                        order,
                        kind,
                        label,
                        float(values[a, s]),
                    )
                )
    out = pd.DataFrame(
        rows, columns=["scenario", "area", "service", "step", "lever", "label", "referrals"]
    )
    out["referrals"] = out["referrals"].round(1) + 0.0
    return out


def queueing_table(res: RunResult) -> pd.DataFrame:
    """Steady-state checks per scenario, area and service, for the first and last year.

    From the deterministic run's average weekly demand and capacity over each year:
    load, target queue size (Little's law), target and relief capacity (NHS-R waiting list
    conventions, Kingman form with the /2), waiting list pressure, the M/M/c mean wait with the
    service's open-case places as servers, the Erlang C probability of waiting, and the places
    Erlang C says are needed for a mean wait of a quarter of the target. Where load >= 1 there is
    no steady state and the table says how fast the list grows instead.
    """
    model = res.model
    years = financial_years(res.months)
    keep = [years[0], years[-1]]
    rows = []
    for sr in res.scenarios:
        for y in dict.fromkeys(keep):
            sel = years == y
            lam = sr.demand_per_week[..., sel].mean(-1)  # (A, S)
            places = sr.places[..., sel].mean(-1)
            dur = sr.duration_weeks[:, sel].mean(-1)[None]  # (1, S)
            cap = places / dur
            waiting = sr.deterministic["waiting"][:-1][..., sel][..., -1]
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: nobody started
                mean_wait = np.nan_to_num(
                    np.nanmean(sr.deterministic["mean_wait_weeks"][:-1][..., sel], axis=-1)
                )
            rows += _queue_rows(
                model, sr.scenario.name, y, lam, cap, places, dur, waiting, mean_wait
            )
    return pd.DataFrame(rows)


def _queue_rows(
    model: Model,
    scenario: str,
    year: str,
    lam: NDArray[np.float64],
    cap: NDArray[np.float64],
    places: NDArray[np.float64],
    dur: NDArray[np.float64],
    waiting: NDArray[np.float64],
    mean_wait: NDArray[np.float64],
) -> list[dict[str, object]]:
    sv = model.services
    tw = sv.target_wait_weeks[None]
    load = np.where(cap > 0, lam / np.maximum(cap, 1e-12), np.inf)
    tq = queueing.target_queue_size(lam, tw)
    tcap = queueing.target_capacity(lam, tw)
    relief = queueing.relief_capacity(lam, waiting, tq)
    pressure = queueing.waiting_list_pressure(np.maximum(mean_wait, 0.0), tw)
    servers = np.floor(places + 1e-9)
    mu = 1.0 / dur
    wq = queueing.mmc_mean_wait(lam, np.broadcast_to(mu, lam.shape), servers)
    pwait = queueing.erlang_c(servers, lam / mu)
    needed = _erlang_places(lam, np.broadcast_to(mu, lam.shape), tw / 4.0)
    rows = []
    for a, s in zip(*np.nonzero(model.staffing.served), strict=True):
        stretch = bool(sv.stretch[s])
        grows = (lam[a, s] - cap[a, s]) * WEEKS_PER_MONTH
        statement = (
            "stretch service: takes everyone; see caseload per FTE"
            if stretch
            else f"grows by {_amount(grows)} a month, no steady state"
            if load[a, s] >= 1
            else "steady state exists"
        )
        rows.append(
            {
                "scenario": scenario,
                "year": year,
                "area": model.area_codes[a],
                "service": sv.codes[s],
                "demand_per_week": lam[a, s],
                "capacity_per_week": cap[a, s],
                "load": load[a, s],
                "target_queue_size": tq[a, s],
                "target_capacity_per_week": tcap[a, s],
                "relief_capacity_per_week": relief[a, s],
                "waiting_list_pressure": pressure[a, s],
                "mmc_mean_wait_weeks": wq[a, s] if load[a, s] < 1 else np.nan,
                "erlang_c_wait_probability": pwait[a, s],
                "erlang_c_places_needed": needed[a, s],
                "erlang_c_fte_needed": needed[a, s] / sv.places_per_fte[s],
                "statement": statement,
            }
        )
    return rows


def _amount(x: float) -> str:
    """A count in plain words: whole numbers from 10, one decimal below."""
    r = round(float(x), 1)
    return f"{r:,.0f}" if abs(r) >= 10 or r.is_integer() else f"{r:,.1f}"


def _erlang_places(
    lam: NDArray[np.float64], mu: NDArray[np.float64], target_mean_wait: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Fewest servers whose M/M/c mean wait is within ``target_mean_wait`` (bisection)."""
    offered = lam / mu
    lo = np.floor(offered)
    hi = np.ceil(offered + 10.0 * np.sqrt(offered) + 10.0)
    tw = np.broadcast_to(target_mean_wait, lam.shape)
    for _ in range(64):
        mid = np.floor((lo + hi) / 2.0)
        ok = queueing.mmc_mean_wait(lam, mu, mid) <= tw
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
        if np.all(hi - lo <= 1):
            break
    return np.where(lam > 0, hi, 0.0)
