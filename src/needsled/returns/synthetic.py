"""Provider returns made by the model itself: what a provider would report if the model were
exactly right. They are the known truth that calibration and actual-against-modelled are
tested against.

Pure: a run (or the arrays it holds) and a random generator in, a tidy returns frame
(:data:`needsled.returns.format.COLUMNS`) out.

**The journey behind a service's counts.** For service ``s`` in area ``a`` and month ``t``
(sums over offences ``o``, each weighted by the need mix ``m[o, s]``)::

    police referrals    P  = sum_o crimes x referral_share x consent x m
    contacted of those  Pc = sum_o crimes x referral_share x consent x contact_share x m
    other referrals     N  = sum_o prevalence x adults x (1 - report_share) / 12 x help_seeking x m
    contacted           C  = Pc + N        (self- and agency referrers are in contact already)
    declined            D  = sum_o (police contacted + other) x decline_share x m
    accepted            E  = C - D         (the engine's ``referrals``: they join the list)

A police referral counts at each service the victim needs (the need mix), like the engine's
referrals. :func:`journey` computes these expectations with :func:`needsled.demand.referrals`
itself (switching parts of the pathway off), so they match the engine exactly, levers
included.

**One replicate's counts.** The engine draws the accepted referrals as Poisson counts. Under
Poisson thinning, the parts of a Poisson stream that are split off at random (not contacted,
declined, police or other route) are independent Poisson counts, so given the engine's
accepted count ``E`` the rest of the journey is drawn as::

    accepted by the police route   ~ Binomial(E, E_police / E)
    declined, police route         ~ Poisson(Pc - E_police);  other route ~ Poisson(N - E_other)
    police, not contacted          ~ Poisson(P - Pc)
    other agency (not self)        ~ Binomial(other referrals, other_agency_share)

which is an exact draw from the whole journey when the expectations are the ones the engine
used: point parameters and a crime path without spread (for example the ``mean`` forecast of
a flat history). With intervals on parameters or a forecast with spread, the upstream counts
are drawn around the point rates and the mean crime path while the engine's replicate used its
own: close, not exact. The model has no "other agency" route of its own: self- and partner
referrals are one stream, shared out by ``other_agency_share``.

Measures written: ``referrals`` by route, ``contacted``, ``declined``, ``starts``,
``left_waiting_list`` (drop-outs), ``closures`` (every end of support, as ``completed``: the
model does not know why support ended), ``open_end``, ``waiting_end`` and ``fte_in_post``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from needsled.demand import Draws, LeverSizes, lever_sizes, point_parameters, referrals
from needsled.model import Model
from needsled.projection import RunResult, ScenarioResult
from needsled.returns.format import COLUMNS, quarter_months
from needsled.scenarios import Scenario

__all__ = ["Journey", "journey", "returns_from_flows", "returns_from_run"]

F64 = NDArray[np.float64]
BASELINE = Scenario(name="baseline")


@dataclass(frozen=True)
class Journey:
    """Expected counts a month by stage of the journey, each (A, S, T); see the module doc."""

    police: F64
    police_contacted: F64
    police_accepted: F64
    other: F64
    other_accepted: F64

    @property
    def contacted(self) -> F64:
        return self.police_contacted + self.other

    @property
    def accepted(self) -> F64:
        return self.police_accepted + self.other_accepted

    @property
    def declined(self) -> F64:
        return self.contacted - self.accepted

    @property
    def received(self) -> F64:
        return self.police + self.other


def journey(
    model: Model,
    crime: F64,
    draws: Draws | None = None,
    scenario: Scenario = BASELINE,
    sizes: LeverSizes | None = None,
) -> Journey:
    """Expected counts by stage for ``crime`` (A, O, T) recorded crimes a month.

    ``draws`` defaults to the model's point values and ``scenario`` to no levers.
    """
    base = point_parameters(model) if draws is None else draws
    sizes = lever_sizes(scenario, 1, None) if sizes is None else sizes
    p = base.pathway
    zero, one = np.zeros_like(p["contact_share"]), np.ones_like(p["contact_share"])

    def run(**rates: F64) -> F64:
        d = replace(base, pathway={**p, **rates})
        return np.asarray(referrals(model, crime[None], d, scenario, sizes)[0].sum(axis=-1))

    no_self = {"prevalence": zero}
    no_police = {"referral_share": zero}
    return Journey(
        police=run(**no_self, contact_share=one, decline_share=zero),
        police_contacted=run(**no_self, decline_share=zero),
        police_accepted=run(**no_self),
        other=run(**no_police, decline_share=zero),
        other_accepted=run(**no_police),
    )


def _quarter_index(months: tuple[str, ...], quarters: list[str]) -> list[list[int]]:
    where = {m: i for i, m in enumerate(months)}
    out, missing = [], []
    for q in quarters:
        ms = quarter_months(q)
        if any(m not in where for m in ms):
            missing.append(q)
        else:
            out.append([where[m] for m in ms])
    if missing:
        raise ValueError(
            f"quarters {', '.join(missing)} are not wholly inside the months simulated "
            f"({months[0]} to {months[-1]})"
        )
    return out


def returns_from_flows(
    model: Model,
    flows: dict[str, F64],
    expected: Journey,
    months: tuple[str, ...],
    quarters: list[str],
    rng: np.random.Generator,
    *,
    provider: str = "SYNTH",
    other_agency_share: float = 0.0,
) -> pd.DataFrame:
    """Quarterly returns from one replicate's monthly flows and stocks.

    ``flows``: ``referrals`` (accepted), ``starts``, ``drop_outs``, ``completions``,
    ``open_cases``, ``waiting`` and ``fte``, each (A, S, T) over ``months``; ``expected``: the
    journey the engine's referrals were drawn from (same shape).
    """
    qidx = _quarter_index(months, quarters)
    accepted = np.rint(np.nan_to_num(flows["referrals"])).astype(np.int64)
    share = np.divide(
        expected.police_accepted,
        expected.accepted,
        out=np.zeros_like(expected.accepted),
        where=expected.accepted > 0,
    )
    acc_police = rng.binomial(accepted, np.clip(share, 0.0, 1.0))
    acc_other = accepted - acc_police
    dec_police = rng.poisson(np.maximum(expected.police_contacted - expected.police_accepted, 0))
    dec_other = rng.poisson(np.maximum(expected.other - expected.other_accepted, 0))
    not_contacted = rng.poisson(np.maximum(expected.police - expected.police_contacted, 0))
    police = acc_police + dec_police + not_contacted
    other = acc_other + dec_other
    agency = rng.binomial(other, other_agency_share)
    monthly: dict[tuple[str, str], NDArray[np.int64] | F64] = {
        ("referrals", "police"): police,
        ("referrals", "self"): other - agency,
        ("referrals", "other agency"): agency,
        ("contacted", ""): accepted + dec_police + dec_other,
        ("declined", ""): dec_police + dec_other,
        ("starts", ""): flows["starts"],
        ("left_waiting_list", ""): flows["drop_outs"],
        ("closures", "completed"): flows["completions"],
    }
    stocks = {"open_end": flows["open_cases"], "waiting_end": flows["waiting"]}
    rows: list[tuple[str, str, str, str, str, str, float]] = []
    served = model.staffing.served
    for q, idx in zip(quarters, qidx, strict=True):
        for a, s in zip(*np.nonzero(served), strict=True):
            key = (provider, model.services.codes[s], model.area_codes[a], q)
            for (measure, cat), x in monthly.items():
                rows.append((*key, measure, cat, float(np.rint(np.nansum(x[a, s, idx])))))
            for measure, x in stocks.items():
                rows.append((*key, measure, "", float(np.rint(np.nan_to_num(x[a, s, idx[-1]])))))
            rows.append((*key, "fte_in_post", "", float(flows["fte"][a, s, idx[-1]])))
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for col in COLUMNS[:-1]:
        frame[col] = frame[col].astype(object)
    return frame


def _scenario(run: RunResult, name: str | None) -> ScenarioResult:
    if name is None:
        return run.scenarios[0]
    for sc in run.scenarios:
        if sc.scenario.name == name:
            return sc
    raise KeyError(f"the run has no scenario named {name!r}")


def returns_from_run(
    run: RunResult,
    quarters: list[str],
    rng: np.random.Generator,
    *,
    replicate: int = 0,
    scenario: str | None = None,
    provider: str = "SYNTH",
    other_agency_share: float = 0.0,
) -> pd.DataFrame:
    """Returns for ``quarters`` from one replicate of a run (the first scenario by default).

    The upstream counts (route, contacted, declined) come from the journey at the model's
    point values and the run's mean crime path: exact when those are what the replicate used
    (see the module docstring).
    """
    sr = _scenario(run, scenario)
    n_a = len(run.model.area_codes)
    flows = {
        key: sr.metrics[key][replicate, :n_a].astype(np.float64)
        for key in (
            "referrals",
            "starts",
            "drop_outs",
            "completions",
            "open_cases",
            "waiting",
            "fte",
        )
    }
    expected = journey(run.model, run.crime_mean, scenario=sr.scenario)
    return returns_from_flows(
        run.model,
        flows,
        expected,
        run.months,
        quarters,
        rng,
        provider=provider,
        other_agency_share=other_agency_share,
    )
