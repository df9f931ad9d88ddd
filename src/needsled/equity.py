"""Equitable access: reach by area, the postcode lottery, and who is heard (model.md sections 4-5).

Pure: arrays and tables in, tables out.

- **Estimated victims** in an area a year = sum over offences of prevalence x adult population:
  need from prevalence, not police reports alone (most victims never report).
- **Reach** = support starts (all services) per 1,000 estimated victims a year. A victim who
  starts two services counts twice: it measures support delivered, not people.
- **The postcode lottery**: the ratio of the best area's reach to the worst's, and a Gini
  coefficient of reach across victims (each area's victims weighted by their number; 0 = every
  victim's area reaches equally, 1 = all support in one area).
- **By group** (sex, age band, ethnicity, disability, sexuality), from the optional ``groups``
  table: each group's share of service users against its share of estimated victims (a reach
  index of 1 = in proportion), and a **representativeness check** of a consultation or
  service-user sample: a chi-squared goodness-of-fit test of the sample's make-up against the
  estimated victim population, with the groups that are under-represented (adjusted residual
  below -1.96). Observed counts are suppressed when small (model.md section 8); figures
  derived from a suppressed count are not shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from needsled.model import Model
from needsled.privacy import THRESHOLD, hidden_text, suppression_mask
from needsled.projection import RunResult

__all__ = [
    "estimated_victims",
    "gini",
    "group_table",
    "lottery",
    "reach",
    "representativeness",
    "run_tables",
]

F64 = NDArray[np.float64]
Z95 = 1.959964


def estimated_victims(model: Model) -> F64:
    """Victims a year in each area, from prevalence and the adult population (A,)."""
    prevalence = model.pathway.prevalence.value  # (A, O)
    return np.asarray(prevalence.sum(axis=1) * model.adult_population, dtype=np.float64)


def reach(starts_per_year: F64, victims: F64) -> F64:
    """Support starts per 1,000 estimated victims a year; NaN where there are no victims."""
    s = np.asarray(starts_per_year, dtype=np.float64)
    v = np.asarray(victims, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v > 0, s / v * 1000.0, np.nan)


def gini(values: F64, weights: F64 | None = None) -> float:
    """Gini coefficient of ``values`` (>= 0), each counted ``weights`` times (default once).

    Half the weighted mean absolute difference between every pair, over the weighted mean:
    ``sum_ij w_i w_j |x_i - x_j| / (2 (sum w)^2 mean)``. NaN values are left out.
    """
    x = np.asarray(values, dtype=np.float64)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    keep = ~np.isnan(x) & (w > 0)
    x, w = x[keep], w[keep]
    if x.size == 0 or (x < 0).any():
        raise ValueError("a Gini coefficient needs at least one value, none negative")
    total = w.sum()
    mean = float((w * x).sum() / total)
    if mean == 0:
        return 0.0
    diff = np.abs(x[:, None] - x[None, :])
    return float((w[:, None] * w[None, :] * diff).sum() / (2.0 * total**2 * mean))


def lottery(area_reach: F64, victims: F64) -> dict[str, float]:
    """Best and worst area's reach, their ratio, and the victim-weighted Gini coefficient."""
    r = np.asarray(area_reach, dtype=np.float64)
    ok = ~np.isnan(r)
    if not ok.any():
        return {"best": np.nan, "worst": np.nan, "ratio": np.nan, "gini": np.nan}
    best, worst = float(r[ok].max()), float(r[ok].min())
    return {
        "best": best,
        "worst": worst,
        "ratio": best / worst if worst > 0 else np.inf,
        "gini": gini(r, victims),
    }


def _hide(counts: NDArray[np.int64], suppress: bool) -> NDArray[np.bool_]:
    """Which counts of one breakdown to hide (primary and secondary suppression)."""
    if not suppress:
        return np.zeros(counts.shape, bool)
    hide, _rows, _cols = suppression_mask(counts.reshape(-1, 1))
    return hide.ravel()


def representativeness(
    groups: list[str], sample: NDArray[np.int64], victim_share: F64, *, suppress: bool = True
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Does a sample's make-up match the estimated victim population?

    Returns one row per group (sample count, expected count, ratio, adjusted residual,
    under-represented) and the test: chi-squared, degrees of freedom, p-value, the sample size,
    and how many groups expect fewer than 5 (when the chi-squared approximation is rough).
    Counts hidden by suppression hide their ratio and residual too, and are merged into one
    group for the test (so the statistic reveals only their sum, which the total already
    does); the statistic is rounded to 1 decimal place and the p-value to 2 significant
    figures.
    """
    o = np.asarray(sample, dtype=np.int64)
    share = np.asarray(victim_share, dtype=np.float64)
    if o.shape != share.shape or (o < 0).any():
        raise ValueError("one non-negative count per group is needed")
    share = share / share.sum()
    n = int(o.sum())
    e = n * share
    with np.errstate(divide="ignore", invalid="ignore"):
        resid = (o - e) / np.sqrt(e * (1.0 - share))
        ratio = o / e
    hide = _hide(o, suppress)
    if hide.sum() == 1 and len(o) > 1:
        # the expected counts give the total (n x share), so one hidden count could be worked
        # out from it: every other non-zero count is shown, so hide a zero beside it
        hide[int(np.argmin(np.where(hide, np.iinfo(np.int64).max, o)))] = True
    small_total = suppress and 0 < n < THRESHOLD
    # The test is on the groups as shown: hidden groups are merged into one, so the statistic
    # cannot be used to work out a hidden count (their sum is already known from the total).
    if hide.any():
        o_t = np.append(o[~hide], o[hide].sum())
        s_t = np.append(share[~hide], share[hide].sum())
    else:
        o_t, s_t = o, share
    e_t = n * s_t
    live = s_t > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        # with a total of 1 to 4 the statistic would give the total: not computed
        terms = ((o_t - e_t) ** 2) / e_t
        chi2 = float(terms[live].sum()) if n > 0 and not small_total else np.nan
    dof = int(live.sum()) - 1
    p = float(stats.chi2.sf(chi2, dof)) if np.isfinite(chi2) and dof > 0 else np.nan
    table = pd.DataFrame(
        {
            "group": groups,
            "sample": hidden_text(o, hide),
            # a total of 1 to 4 is itself a small count: the expected counts would give it
            "expected": np.full(len(o), np.nan) if small_total else np.round(e, 1),
            "sample_to_expected": np.where(hide, np.nan, np.round(ratio, 2)),
            "adjusted_residual": np.where(hide, np.nan, np.round(resid, 2)),
            "under_represented": np.where(hide, "", np.where(resid < -Z95, "yes", "no")),
        }
    )
    test = {
        "chi_squared": round(chi2, 1) if np.isfinite(chi2) else np.nan,
        "dof": float(dof),
        "p_value": float(f"{p:.2g}") if np.isfinite(p) else np.nan,
        "sample_size": np.nan if small_total else float(n),
        "groups_expecting_under_5": float((e_t[live] < 5).sum()),
        "groups_merged": float(hide.sum()),
    }
    return table, test


def group_table(model: Model, *, suppress: bool = True) -> pd.DataFrame:
    """The ``groups`` table's breakdowns: service users' share against victims' share, the
    reach index, and, where a sample is given, the representativeness check; one row per
    dimension and group. Empty when the model has no ``groups`` table."""
    frame = model.tables.get("groups")
    cols = [
        "dimension",
        "group",
        "victim_share",
        "users",
        "users_share",
        "reach_index",
        "sample",
        "expected",
        "sample_to_expected",
        "adjusted_residual",
        "under_represented",
        "chi_squared",
        "p_value",
    ]
    if frame is None or frame.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for dim, part in frame.groupby("dimension", sort=False):
        names = [str(g) for g in part["group"]]
        share = part["victim_share"].to_numpy(np.float64)
        row = pd.DataFrame({"dimension": dim, "group": names, "victim_share": share})
        users = part["users"].to_numpy(np.float64)
        if np.isnan(users).all():
            row["users"], row["users_share"], row["reach_index"] = "", np.nan, np.nan
        else:
            u = np.nan_to_num(users).astype(np.int64)
            hide = _hide(u, suppress)
            u_share = u / max(int(u.sum()), 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                index = np.where(share > 0, u_share / (share / share.sum()), np.nan)
            row["users"] = hidden_text(u, hide)
            row["users_share"] = np.where(hide, np.nan, np.round(u_share, 3))
            row["reach_index"] = np.where(hide, np.nan, np.round(index, 2))
        sample = part["sample"].to_numpy(np.float64)
        if np.isnan(sample).all():
            for c in cols[6:]:
                row[c] = np.nan if c not in ("sample", "under_represented") else ""
        else:
            table, test = representativeness(
                names, np.nan_to_num(sample).astype(np.int64), share, suppress=suppress
            )
            for c in ("sample", "expected", "sample_to_expected", "adjusted_residual"):
                row[c] = table[c].to_numpy()
            row["under_represented"] = table["under_represented"].to_numpy()
            row["chi_squared"] = test["chi_squared"]
            row["p_value"] = test["p_value"]
        out.append(row[cols])
    return pd.concat(out, ignore_index=True)


def run_tables(res: RunResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reach by scenario, year and area, and the postcode lottery by scenario and year.

    From the projected support starts (all services) of every replicate: each figure is the
    mean with its 80% interval (p10, p90) over replicates, and the deterministic run's value.
    A part year (the projection starting or ending inside an April-to-March year) is scaled
    to a full year. Projections are rounded, not suppressed.
    """
    from needsled.results import financial_years

    model = res.model
    victims = estimated_victims(model)
    years = financial_years(res.months)
    labels = list(dict.fromkeys(years.tolist()))
    names = dict(zip(model.area_codes, model.area_names, strict=True))
    area_rows: list[dict[str, object]] = []
    lottery_rows: list[dict[str, object]] = []
    n_a = len(model.area_codes)
    for sr in res.scenarios:
        for kind, x in (
            ("det", sr.deterministic["starts"][None]),
            ("stoch", sr.metrics["starts"].astype(np.float64)),
        ):
            starts = np.nansum(x[:, :n_a], axis=2)  # (R, A, T) all services
            per_year = np.stack(
                [starts[..., years == y].sum(-1) * 12.0 / (years == y).sum() for y in labels],
                -1,
            )  # (R, A, Y)
            r = reach(per_year, victims[None, :, None])
            if kind == "det":
                det_r = r[0]
                det_lot = [lottery(det_r[:, j], victims) for j in range(len(labels))]
                continue
            for j, y in enumerate(labels):
                q = np.nanpercentile(r[..., j], [10, 50, 90], axis=0)
                for a, code in enumerate(model.area_codes):
                    area_rows.append(
                        {
                            "scenario": sr.scenario.name,
                            "year": y,
                            "area": code,
                            "area_name": names[code],
                            "estimated_victims": round(float(victims[a])),
                            "starts_per_year": round(float(per_year[:, a, j].mean()), 1),
                            "reach_per_1000": round(float(np.nanmean(r[:, a, j])), 1),
                            "p10": round(float(q[0, a]), 1),
                            "p50": round(float(q[1, a]), 1),
                            "p90": round(float(q[2, a]), 1),
                            "deterministic": round(float(det_r[a, j]), 1),
                        }
                    )
                draws = [lottery(r[i, :, j], victims) for i in range(r.shape[0])]
                for key, label in (("ratio", "best to worst ratio"), ("gini", "Gini")):
                    vals = np.array([d[key] for d in draws], dtype=np.float64)
                    lottery_rows.append(
                        {
                            "scenario": sr.scenario.name,
                            "year": y,
                            "measure": label,
                            "mean": round(float(np.mean(vals)), 3),
                            "p10": round(float(np.percentile(vals, 10)), 3),
                            "p90": round(float(np.percentile(vals, 90)), 3),
                            "deterministic": round(float(det_lot[j][key]), 3),
                        }
                    )
    return pd.DataFrame(area_rows), pd.DataFrame(lottery_rows)
