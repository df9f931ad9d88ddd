"""Shares of a national grant across the 43 territorial police force areas (pure, no I/O).

Three ways of splitting a national pot, all computed from the tidy table returned by
:func:`needsled.sources.ons_pfa.read_ons_pfa_crime`:

* **recorded crime**: ``all_crime`` and ``sexual_offences`` (the ``Sexual offences`` group;
  the ONS PFA file has no rape split);
* **population**, if PFA populations are supplied (none are in the shared data);
* **need-weighted**: each offence group's count times a seriousness weight.

Definition of "all crime" used here (state it whenever a share is quoted): the sum of
every offence group for the territorial force at that year ending, **excluding**
``Fraud offences`` (by default) and excluding British Transport Police, Action Fraud,
CIFAS and UK Finance. Fraud is excluded because territorial forces stopped recording it
in 2013/14 (it moved to Action Fraud, which has no area), so including it would make the
definition change over time.

**London check.** The claim that "the Metropolitan Police and City of London had about
21% of recorded crime in England and Wales" is reproduced by this file only for years
ending March 2011 to March 2014: 20.1-21.4% on the definition above (peak 21.4%, YE Dec
2012 and YE Mar 2013; 21.8% if fraud is counted). For YE Mar 2018 the same definition
gives **17.05%** (17.2% counting victim-based offences only; 17.9% with England alone as
the denominator; unchanged if fraud is counted, as forces no longer record it), so
"21%" is a 2011-14 figure, not a 2018 one.
London received 14.69% of the MoJ victims' grant (:data:`MOJ_VICTIMS_GRANT_LONDON_SHARE`),
allocated on population.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date

import numpy as np
import pandas as pd

from needsled.sources.errors import PeriodNotAvailableError
from needsled.sources.ons_pfa import TERRITORIAL_PFAS, pfa_code_for_name

__all__ = [
    "ALL_CRIME_EXCLUDED_OFFENCES",
    "DEFAULT_SEVERITY_WEIGHTS",
    "LONDON_PFA_CODES",
    "MOJ_VICTIMS_GRANT_LONDON_SHARE",
    "SEXUAL_OFFENCES",
    "funding_shares",
    "london_summary",
]

#: Offence groups left out of "all crime" (see module docstring).
ALL_CRIME_EXCLUDED_OFFENCES: tuple[str, ...] = ("Fraud offences",)
SEXUAL_OFFENCES = "Sexual offences"
#: Metropolitan Police and City of London.
LONDON_PFA_CODES: tuple[str, ...] = ("E23000001", "E23000034")
#: London's (MOPAC's) share of the MoJ victims' services grant, allocated on population.
MOJ_VICTIMS_GRANT_LONDON_SHARE = 0.1469

#: ASSUMPTION, not an official table. Round-number seriousness weights per ONS offence
#: group, in the spirit of the ONS Crime Severity Score (CSS weights offences by the
#: average sentence they attract, in custody-day equivalents; ONS gives murder ~8,000 and
#: cannabis possession ~3). The CSS weights individual offence codes, not these groups;
#: these group values are a judgement about typical mixes (e.g. sexual offences ~ one
#: third rape). Replace them with CSS-derived group weights for the year of interest
#: before using need-weighted shares for a real allocation.
DEFAULT_SEVERITY_WEIGHTS: dict[str, float] = {
    "Homicide": 5000.0,
    "Death or serious injury caused by illegal driving": 1000.0,
    "Sexual offences": 500.0,
    "Robbery": 300.0,
    "Domestic burglary": 200.0,
    "Residential burglary": 200.0,
    "Violence with injury": 100.0,
    "Possession of weapons offences": 50.0,
    "Non-domestic burglary": 50.0,
    "Non-residential burglary": 50.0,
    "Miscellaneous crimes against society": 30.0,
    "Violence without injury": 20.0,
    "Stalking and harassment": 20.0,
    "Drug offences": 20.0,
    "Vehicle offences": 20.0,
    "Theft from the person": 20.0,
    "Fraud offences": 10.0,
    "Criminal damage and arson": 10.0,
    "Public order offences": 10.0,
    "All other theft offences": 10.0,
    "Bicycle theft": 5.0,
    "Shoplifting": 5.0,
}

_REQUIRED = ("year_ending", "pfa_code", "offence", "count", "territorial")
_NAME_BY_CODE = {code: name for name, code in TERRITORIAL_PFAS.items()}


def _pick_year(pfa_crime: pd.DataFrame, year_ending: date) -> pd.Timestamp:
    if pfa_crime["year_ending"].isna().any():
        raise ValueError("pfa_crime has missing year_ending values; re-read the source file")
    wanted = pd.Timestamp(year_ending).normalize()
    available = pd.DatetimeIndex(pfa_crime["year_ending"].unique()).sort_values()
    if wanted in available:
        return wanted
    nearest = sorted(available, key=lambda d: abs((d - wanted).days))[:4]
    listed = ", ".join(d.date().isoformat() for d in sorted(nearest))
    raise PeriodNotAvailableError(
        f"year ending {wanted.date().isoformat()} is not in the data. Nearest available: "
        f"{listed} (data run {available[0].date()} to {available[-1].date()})."
    )


def _population(population: Mapping[str, float] | pd.Series) -> pd.Series:
    """Population indexed by PFA code, from keys that are PFA names or codes."""
    items = population.items()
    by_code: dict[str, float] = {}
    unknown: list[str] = []
    for key, value in items:
        key = str(key)
        code = key if key in _NAME_BY_CODE else pfa_code_for_name(key)
        if code is None:
            unknown.append(key)
            continue
        if code in by_code:
            raise ValueError(f"population given twice for {_NAME_BY_CODE[code]} ({key!r})")
        by_code[code] = float(value)
    missing = sorted(_NAME_BY_CODE[c] for c in set(_NAME_BY_CODE) - set(by_code))
    bad = sorted(_NAME_BY_CODE[c] for c, v in by_code.items() if not (math.isfinite(v) and v > 0))
    problems = []
    if unknown:
        problems.append(f"not territorial PFA names or codes: {', '.join(map(repr, unknown))}")
    if missing:
        problems.append(f"missing for {len(missing)} PFA(s): {', '.join(missing)}")
    if bad:
        problems.append(f"not a positive number for: {', '.join(bad)}")
    if problems:
        raise ValueError("population: " + "; ".join(problems))
    return pd.Series(by_code, dtype="float64")


def _weights(weights: Mapping[str, float] | None, offences: set[str]) -> pd.Series:
    merged = {**DEFAULT_SEVERITY_WEIGHTS, **(weights or {})}
    typos = sorted(set(weights or {}) - offences - set(DEFAULT_SEVERITY_WEIGHTS))
    missing = sorted(offences - set(merged))
    bad = sorted(k for k, v in merged.items() if not (math.isfinite(v) and v >= 0))
    problems = []
    if typos:
        problems.append(f"unknown offence group(s) {typos}; known: {sorted(offences)}")
    if missing:
        problems.append(f"no weight for offence group(s) {missing}")
    if bad:
        problems.append(f"weights must be finite and >= 0: {bad}")
    if problems:
        raise ValueError("weights: " + "; ".join(problems))
    return pd.Series(merged, dtype="float64")


def funding_shares(
    pfa_crime: pd.DataFrame,
    year_ending: date,
    population: Mapping[str, float] | pd.Series | None = None,
    weights: Mapping[str, float] | None = None,
    *,
    excluded_offences: tuple[str, ...] = ALL_CRIME_EXCLUDED_OFFENCES,
) -> pd.DataFrame:
    """Each territorial PFA's share of a national grant under several allocation bases.

    Returns one row per territorial PFA (43, sorted by code): ``pfa_code, pfa_name,
    all_crime, sexual_offences, weighted_crime, population, share_all_crime,
    share_sexual_offences, share_need_weighted, share_population``. Each ``share_*``
    column sums to 1 (``share_population`` is NaN when no population is given).

    ``population`` maps PFA names (any known spelling) or GSS codes to residents and must
    cover all 43. ``weights`` overrides :data:`DEFAULT_SEVERITY_WEIGHTS` per offence group
    (an assumption; see its note). ``excluded_offences`` are left out of ``all_crime``
    and the need-weighted total. A ``year_ending`` not in the data raises
    :class:`~needsled.sources.errors.PeriodNotAvailableError` listing the nearest dates.
    """
    missing_cols = [c for c in _REQUIRED if c not in pfa_crime.columns]
    if missing_cols:
        raise ValueError(f"pfa_crime lacks column(s) {missing_cols}; use read_ons_pfa_crime()")
    when = _pick_year(pfa_crime, year_ending)
    rows = pfa_crime[(pfa_crime["year_ending"] == when) & pfa_crime["territorial"]]
    # Validate keys before grouping: groupby would silently drop missing codes.
    if rows["pfa_code"].isna().any() or rows["offence"].isna().any():
        raise ValueError("territorial rows with a missing pfa_code or offence")
    unknown = sorted(set(rows["pfa_code"]) - set(_NAME_BY_CODE))
    absent = sorted(_NAME_BY_CODE[c] for c in set(_NAME_BY_CODE) - set(rows["pfa_code"]))
    if unknown or absent:
        raise ValueError(
            f"year ending {when.date()}: expected the 43 territorial PFAs; "
            f"unknown codes {unknown}, missing {absent}"
        )
    if rows.duplicated(["pfa_code", "offence"]).any():
        raise ValueError(f"year ending {when.date()}: a PFA has the same offence twice")
    counted = rows[~rows["offence"].isin(excluded_offences)]
    w = _weights(weights, set(counted["offence"]))
    weighted = counted["count"] * counted["offence"].map(w).to_numpy()
    sexual = counted["offence"].str.casefold() == SEXUAL_OFFENCES.casefold()
    codes = sorted(_NAME_BY_CODE)

    def per_pfa(values: pd.Series, keys: pd.Series) -> np.ndarray:
        return values.groupby(keys).sum().reindex(codes, fill_value=0).to_numpy()

    out = pd.DataFrame(
        {
            "pfa_code": codes,
            "pfa_name": [_NAME_BY_CODE[c] for c in codes],
            "all_crime": per_pfa(counted["count"], counted["pfa_code"]),
            "sexual_offences": per_pfa(counted["count"][sexual], counted["pfa_code"][sexual]),
            "weighted_crime": per_pfa(weighted, counted["pfa_code"]),
            "population": (
                _population(population).reindex(codes).to_numpy()
                if population is not None
                else np.full(len(codes), np.nan)
            ),
        }
    )
    bases = {
        "all_crime": "share_all_crime",
        "sexual_offences": "share_sexual_offences",
        "weighted_crime": "share_need_weighted",
        "population": "share_population",
    }
    for base, share in bases.items():
        if population is None and base == "population":
            out[share] = np.nan
            continue
        negative = out.loc[out[base] < 0, "pfa_name"].tolist()
        total = out[base].sum()
        if negative or not total > 0:
            raise ValueError(
                f"year ending {when.date()}: cannot share on {base}: national total {total}, "
                f"negative for {negative or 'none'}"
            )
        out[share] = out[base] / total
    out.attrs["year_ending"] = when.date()
    out.attrs["excluded_offences"] = tuple(excluded_offences)
    return out


def london_summary(shares: pd.DataFrame) -> pd.Series:
    """London (Metropolitan Police + City of London) totals of each ``share_*`` column
    of :func:`funding_shares`, plus the MoJ victims' grant reference share."""
    london = shares[shares["pfa_code"].isin(LONDON_PFA_CODES)]
    if len(london) != len(LONDON_PFA_CODES):
        raise ValueError("shares must contain the Metropolitan Police and City of London rows")
    cols = [c for c in shares.columns if c.startswith("share_")]
    summary = london[cols].sum(min_count=1)
    summary["moj_victims_grant_reference"] = MOJ_VICTIMS_GRANT_LONDON_SHARE
    return summary
