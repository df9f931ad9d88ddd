"""Actual against modelled: provider returns set against the model's 80% band, quarter by
quarter.

Pure: the model's replicates (:class:`Modelled`, from a run) and a tidy returns frame in, a
:class:`Comparison` (table and plain-words summary) out.

For each service, area and quarter, each measure the model projects is compared with the
model's distribution of the same quarterly figure across its Monte Carlo replicates: flows
(referrals, starts, left the waiting list, closures) are each replicate's sum over the
quarter's three months, stocks (open cases, waiting list) its value at the quarter's last
month, and the band is the 10th to 90th percentile of those replicate values (never the sum
of monthly percentiles, which would be far too wide). A figure above the 90th percentile is
flagged ``above``, below the 10th ``below``. Where the returns cover every area a service
serves, the areas' total is compared too (area ``ALL``).

*Referrals* in the model are those accepted onto the waiting list, after contact and
decline: the returns' ``contacted - declined``. When a return lacks those, referrals
received are compared instead, against the model's accepted referrals scaled by its ratio of
received to accepted referrals (from the pathway; basis ``received``); that band is a little
wide, since the unseen stages add their own noise more gently than scaling does. *Closures*
are every closure (all reasons): the model's support duration runs to whatever ended it.

Actual counts are observations about service users (model.md section 8), so a count from 1
to 4 is shown as "<5", and more are hidden where a hidden count could otherwise be worked out,
shown as "[c]". The reader is assumed to know every shown figure, the identities that hold
exactly in the actual figures (the areas and their total; a waiting list carried from one
quarter end to the next by the referrals, starts and leavers in between, and the same for
open cases), that a "<5" is from 1 to 4 and that a "[c]" is 5 or more (true of all but the
few small counts marked "[c]" because a "<5" there would cap the counts tied to it, which are
known only to be at least 1); :func:`needsled.returns.suppress.protect` hides (or marks) more
until no hidden count has only one possible whole-number value. A hidden count's flag is shown
only when every value its mark allows would get the same flag, so it says nothing the mark
does not. ``suppress=False`` shows every count (for internal use; outputs then say so).

Summary sentences name each service by its name in the model where it has one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse

from needsled.privacy import HIDDEN, LEGEND, hidden_text
from needsled.projection import RunResult
from needsled.returns.format import CLOSURE_REASONS, COLUMNS, ROUTES, quarter_months
from needsled.returns.suppress import bounds, protect
from needsled.returns.synthetic import journey

__all__ = ["MEASURES", "Comparison", "Modelled", "compare", "marks_note", "modelled"]

F64 = NDArray[np.float64]
ALL = "ALL"
# returns measure -> (model metric, flow or stock, plain words, verb, what is counted)
MEASURES: dict[str, tuple[str, str, str, str, str]] = {
    "referrals": ("referrals", "flow", "referrals", "were", "quarters"),
    "starts": ("starts", "flow", "starts", "were", "quarters"),
    "left_waiting_list": ("drop_outs", "flow", "leavers from the waiting list", "were", "quarters"),
    "closures": ("completions", "flow", "closures", "were", "quarters"),
    "open_end": ("open_cases", "stock", "open cases", "were", "quarter ends"),
    "waiting_end": ("waiting", "stock", "waiting list", "was", "quarter ends"),
}
TABLE_COLUMNS = [
    "service",
    "area",
    "area_name",
    "quarter",
    "measure",
    "basis",
    "actual",
    "model_mean",
    "model_p10",
    "model_p50",
    "model_p90",
    "flag",
]


@dataclass(frozen=True)
class Modelled:
    """One scenario's replicates: ``metrics[m]`` (R, A, S, T) by month, for the metrics in
    :data:`MEASURES`; ``received_per_accepted`` (A, S, T) the pathway's referrals received per
    referral accepted (NaN where none are accepted)."""

    metrics: Mapping[str, F64]
    months: tuple[str, ...]
    area_codes: tuple[str, ...]
    area_names: tuple[str, ...]
    service_codes: tuple[str, ...]
    served: NDArray[np.bool_]
    received_per_accepted: F64
    service_names: tuple[str, ...] = ()  # as service_codes; blank or missing: the code


def modelled(run: RunResult, scenario: str | None = None) -> Modelled:
    """The replicates of a run's scenario (its first by default)."""
    sr = run.scenarios[0]
    if scenario is not None:
        found = [s for s in run.scenarios if s.scenario.name == scenario]
        if not found:
            raise KeyError(f"the run has no scenario named {scenario!r}")
        sr = found[0]
    model = run.model
    n_a = len(model.area_codes)
    j = journey(model, run.crime_mean, scenario=sr.scenario)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(j.accepted > 0, j.received / j.accepted, np.nan)
    return Modelled(
        metrics={m[0]: sr.metrics[m[0]][:, :n_a].astype(np.float64) for m in MEASURES.values()},
        months=run.months,
        area_codes=model.area_codes,
        area_names=model.area_names,
        service_codes=model.services.codes,
        served=model.staffing.served,
        received_per_accepted=ratio,
        service_names=model.services.names,
    )


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # TABLE_COLUMNS; "actual" is text ("<5" or "[c]" where hidden)
    summary: tuple[str, ...]
    suppressed: bool
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------- the returns' figures


def _observed(returns: pd.DataFrame) -> dict[tuple[str, str, str, str], tuple[float, str]]:
    """(service, area, quarter, measure) -> (actual, basis), summed over providers."""
    frame = returns.loc[:, list(COLUMNS)].copy()
    for col in COLUMNS[:-1]:
        frame[col] = frame[col].fillna("").astype(str).astype(object)
    keys = ["service", "area", "quarter", "measure", "category"]
    sums = frame.groupby(keys, sort=False)["value"].sum()
    got = {
        (str(s), str(a), str(q), str(m), str(c)): float(v)
        for (s, a, q, m, c), v in zip(sums.index, sums.to_numpy(), strict=True)
    }
    cells = {k[:3] for k in got}
    out: dict[tuple[str, str, str, str], tuple[float, str]] = {}

    def val(
        cell: tuple[str, str, str], measure: str, cats: tuple[str, ...] = ("",)
    ) -> float | None:
        given = [got[k] for c in cats if (k := (*cell, measure, c)) in got]
        return sum(given) if given else None

    for cell in cells:
        contacted, declined = val(cell, "contacted"), val(cell, "declined")
        if contacted is not None and declined is not None:
            out[(*cell, "referrals")] = (contacted - declined, "accepted")
        elif (received := val(cell, "referrals", ROUTES)) is not None:
            out[(*cell, "referrals")] = (received, "received")
        for measure in ("starts", "left_waiting_list", "open_end", "waiting_end"):
            if (v := val(cell, measure)) is not None:
                out[(*cell, measure)] = (v, "")
        if (v := val(cell, "closures", CLOSURE_REASONS)) is not None:
            out[(*cell, "closures")] = (v, "all reasons")
    return out


# ---------------------------------------------------------------- the model's figures


def _quarterly(mod: Modelled, quarters: list[str]) -> dict[tuple[str, str], F64]:
    """(measure, basis) -> (R, A, S, Q) replicate values for each quarter."""
    where = {m: i for i, m in enumerate(mod.months)}
    idx = np.array([[where[m] for m in quarter_months(q)] for q in quarters], dtype=np.int64)
    out: dict[tuple[str, str], F64] = {}
    for measure, (metric, kind, *_) in MEASURES.items():
        x = mod.metrics[metric]
        agg = x[..., idx].sum(axis=-1) if kind == "flow" else x[..., idx[:, -1]]
        out[(measure, "")] = np.nan_to_num(agg)
    received = mod.metrics["referrals"] * np.nan_to_num(mod.received_per_accepted)[None]
    out[("referrals", "received")] = np.nan_to_num(received[..., idx].sum(axis=-1))
    return out


def _band(x: F64) -> tuple[float, float, float, float]:
    p10, p50, p90 = np.percentile(x, [10.0, 50.0, 90.0])
    return float(x.mean()), float(p10), float(p50), float(p90)


def _flag(actual: float, p10: float, p90: float) -> str:
    return "above" if actual > p90 else "below" if actual < p10 else "within"


# ---------------------------------------------------------------- suppression


def _identities(rows: pd.DataFrame) -> tuple[list[dict[int, int]], list[tuple[int, list[int]]]]:
    """The identities that hold exactly in the actual figures, as rows ``coef @ figures == 0``
    (row positions), and the areas-and-total ones also as (total, parts) lines."""
    at = {
        (str(r.service), str(r.area), str(r.quarter), str(r.measure)): k
        for k, r in enumerate(rows.itertuples(index=False))
    }
    value = rows["_value"].to_numpy(dtype=np.float64)
    rules: list[dict[int, int]] = []
    lines: list[tuple[int, list[int]]] = []
    by_figure: dict[tuple[str, str, str], list[int]] = {}
    for (s, _a, q, m), k in at.items():
        by_figure.setdefault((s, q, m), []).append(k)
    for _key, found in sorted(by_figure.items()):
        ks = sorted(found)
        total = [k for k in ks if rows["area"].iat[k] == ALL]
        if len(ks) < 2 or not total:
            continue
        parts = [k for k in ks if k != total[0]]
        rules.append(dict.fromkeys(parts, 1) | {total[0]: -1})
        lines.append((total[0], parts))
    prev = {
        q: f"{int(q[:4]) - (q[-1] == '1')}-Q{(int(q[-1]) - 2) % 4 + 1}" for q in rows["quarter"]
    }
    for (s, a, q, m), i in at.items():
        if m != "waiting_end" and m != "open_end":
            continue
        p = prev[q]
        if m == "waiting_end":
            plus, minus = ["referrals"], ["starts", "left_waiting_list"]
            if rows["basis"].iat[at.get((s, a, q, "referrals"), i)] != "accepted":
                continue
        else:
            plus, minus = ["starts"], ["closures"]
        members = [(s, a, p, m), *((s, a, q, x) for x in plus + minus)]
        if not all(k in at for k in members):
            continue
        idx = [at[k] for k in members]
        start, *flows = (value[j] for j in idx)
        change = sum(flows[: len(plus)]) - sum(flows[len(plus) :])
        if start + change == value[i]:
            signs = [1, *([1] * len(plus)), *([-1] * len(minus))]
            rule: dict[int, int] = {}
            for j, sign in zip(idx, signs, strict=True):
                rule[j] = rule.get(j, 0) + sign
            rule[i] = rule.get(i, 0) - 1
            rules.append(rule)
    return rules, lines


def _hidden(rows: pd.DataFrame) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which actual figures to hide, and which hidden ones from 1 to 4 to mark "[c]" (all-areas
    totals first): every count from 1 to 4, then more until none can be worked out (see the
    module docstring). The figures are whole numbers (the returns' reader refuses others); an
    identity that involves one that is not is left out."""
    value = rows["_value"].to_numpy(dtype=np.float64)
    whole = np.isfinite(value) & (value == np.round(value))
    counts = np.where(whole, np.round(value), 0).astype(np.int64)
    rules, lines = _identities(rows)
    keep = [all(whole[j] for j in r) for r in rules]
    rules = [r for r, k in zip(rules, keep, strict=True) if k]
    lines = [(t, ps) for t, ps in lines if whole[t] and all(whole[j] for j in ps)]
    n = len(rows)
    equal = sparse.csr_matrix(
        (
            [c for r in rules for c in r.values()],
            ([k for k, r in enumerate(rules) for _ in r], [j for r in rules for j in r]),
        ),
        shape=(len(rules), n),
        dtype=np.int64,
    )
    totals = (rows["area"] == ALL).to_numpy(dtype=bool, copy=True)
    return protect(sparse.identity(n, dtype=np.int64, format="csr"), counts, equal,
                   None, lines, totals)  # fmt: skip


def _safe_flag(flag: str, p10: float, p90: float, low: float, high: float) -> bool:
    """Whether a hidden count's flag is the same for every value from ``low`` to ``high``
    (what its mark allows): the flag goes up with the value, so the two ends say."""
    return _flag(low, p10, p90) == flag == _flag(high, p10, p90)


def marks_note(suppressed: bool) -> str:
    """What the marks in the comparison's actual figures mean (or that there are none)."""
    if not suppressed:
        return "SMALL NUMBERS NOT SUPPRESSED: for internal use only."
    return (
        f"Small numbers: {LEGEND} (a {HIDDEN} is usually 5 or more, but may be a small "
        "count). A hidden figure's flag is shown only when it would be the same for every "
        "value its mark allows."
    )


# ---------------------------------------------------------------- the comparison


def compare(mod: Modelled, returns: pd.DataFrame, *, suppress: bool = True) -> Comparison:
    """Each returned figure the model projects against its 80% band (see the module doc)."""
    obs = _observed(returns)
    notes: list[str] = []
    s_idx = {c: i for i, c in enumerate(mod.service_codes)}
    a_idx = {c: i for i, c in enumerate(mod.area_codes)}
    inside = set(mod.months)
    quarters = sorted({k[2] for k in obs}, key=lambda q: (q[:4], q[-1]))
    outside = [q for q in quarters if not set(quarter_months(q)) <= inside]
    if outside:
        notes.append(
            f"quarters {', '.join(outside)} are outside the run ({mod.months[0]} to "
            f"{mod.months[-1]}): not compared"
        )
    quarters = [q for q in quarters if q not in outside]
    unknown = sorted({f"{s} in {a}" for s, a, _, _ in obs if s not in s_idx or a not in a_idx})
    unknown += sorted(
        {
            f"{s} in {a}"
            for s, a, _, _ in obs
            if s in s_idx and a in a_idx and not mod.served[a_idx[a], s_idx[s]]
        }
    )
    if unknown:
        notes.append(f"returns for {', '.join(unknown)} not compared: no such team in the model")
    if not quarters:
        empty = pd.DataFrame(columns=TABLE_COLUMNS)
        return Comparison(empty, ("Nothing to compare.",), suppress, tuple(notes))
    q_idx = {q: i for i, q in enumerate(quarters)}
    sims = _quarterly(mod, quarters)
    rows: list[dict[str, object]] = []
    for (s, a, q, m), (value, basis) in sorted(obs.items()):
        if q not in q_idx or s not in s_idx or a not in a_idx or not mod.served[a_idx[a], s_idx[s]]:
            continue
        x = sims[(m, "received" if basis == "received" else "")][:, a_idx[a], s_idx[s], q_idx[q]]
        rows.append(_row(s, a, mod.area_names[a_idx[a]], q, m, basis, value, x))
    rows += _all_areas(mod, obs, sims, quarters)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values(["service", "measure", "area", "quarter"], kind="stable")
    frame = frame.reset_index(drop=True)
    if suppress:
        hidden, wide = _hidden(frame)
    else:
        hidden = wide = np.zeros(len(frame), dtype=bool)
    shown = frame["_value"].map(lambda v: f"{v:.0f}" if float(v).is_integer() else f"{v:g}")
    counts = np.rint(frame["_value"].to_numpy(dtype=np.float64)).astype(np.int64)
    frame["actual"] = np.where(hidden, hidden_text(counts, hidden, wide), shown)
    # what a reader knows of each hidden figure from its mark
    low, high = bounds(counts, wide)
    keep = [
        not h or _safe_flag(f, p10, p90, lo, hi)
        for h, f, p10, p90, lo, hi in zip(
            hidden, frame["flag"], frame["_p10"], frame["_p90"], low, high, strict=True
        )
    ]
    frame["flag"] = np.where(keep, frame["flag"], "")
    names = dict(zip(mod.service_codes, mod.service_names, strict=False))
    summary = _summary(frame, int(np.sum(~np.asarray(keep))), names)
    table = frame.loc[:, TABLE_COLUMNS].astype({"actual": object, "flag": object})
    return Comparison(table, summary, suppress, tuple(notes))


def _row(
    s: str, a: str, name: str, q: str, m: str, basis: str, value: float, x: F64
) -> dict[str, object]:
    mean, p10, p50, p90 = _band(x)
    return {
        "service": s,
        "area": a,
        "area_name": name,
        "quarter": q,
        "measure": m,
        "basis": basis,
        "_value": value,
        "_p10": p10,
        "_p90": p90,
        "model_mean": round(mean, 1),
        "model_p10": round(p10, 1),
        "model_p50": round(p50, 1),
        "model_p90": round(p90, 1),
        "flag": _flag(value, p10, p90),
    }


def _all_areas(
    mod: Modelled,
    obs: dict[tuple[str, str, str, str], tuple[float, str]],
    sims: dict[tuple[str, str], F64],
    quarters: list[str],
) -> list[dict[str, object]]:
    """The areas' total, where the returns cover every area the service serves (one basis)."""
    rows = []
    for si, s in enumerate(mod.service_codes):
        areas = [a for ai, a in enumerate(mod.area_codes) if mod.served[ai, si]]
        for qi, q in enumerate(quarters):
            for m in MEASURES:
                got = [obs.get((s, a, q, m)) for a in areas]
                if len(areas) < 2 or any(g is None for g in got):
                    continue
                bases = {g[1] for g in got if g is not None}
                if len(bases) != 1:
                    continue
                basis = bases.pop()
                x = sims[(m, "received" if basis == "received" else "")][:, :, si, qi]
                total = x[:, mod.served[:, si]].sum(axis=1)
                value = sum(g[0] for g in got if g is not None)
                rows.append(_row(s, ALL, "all areas", q, m, basis, value, total))
    return rows


def _summary(
    frame: pd.DataFrame, flags_hidden: int, names: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    shown = frame[frame["flag"] != ""]
    out = shown[shown["flag"] != "within"]
    n = len(shown)
    head = (
        f"Of {n} returned figures compared with the model, {len(out)} "
        f"({len(out) / n:.0%}) were outside its 80% band; about 20% would be by chance alone."
        if n
        else "No figure could be compared with the model."
    )
    lines = [head]
    if flags_hidden:
        lines.append(f"{flags_hidden} flag(s) not shown: they would reveal small numbers.")
    found = []
    for (s, a, m), part in frame.groupby(["service", "area", "measure"], sort=True):
        above, below = int((part["flag"] == "above").sum()), int((part["flag"] == "below").sum())
        if not above + below:
            continue
        noun, verb, unit = MEASURES[str(m)][2:]
        if str(m) == "referrals" and set(part["basis"]) == {"received"}:
            noun = "referrals received"
        where = "in all areas" if a == ALL else f"in {part['area_name'].iloc[0]}"
        if above and below:
            how = f"above the model's 80% band in {above} and below it in {below}"
        else:
            how = f"{'above' if above else 'below'} the model's 80% band in {above or below}"
        unit = unit if len(part) > 1 else unit.removesuffix("s")
        service = (names or {}).get(str(s)) or str(s)
        text = f"{service} {noun} {where} {verb} {how} of {len(part)} {unit}"
        if (hidden := int((part["flag"] == "").sum())) > 0:
            text += f" ({hidden} not shown: small numbers)"
        found.append((-(above + below), str(s), str(a), text + "."))
    lines += [t for *_, t in sorted(found)]
    return tuple(lines)
