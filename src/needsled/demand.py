"""The victim journey from recorded crime to referrals per service (model.md section 2).

Pure functions on arrays. Shapes: replicate ``R``, area ``A``, offence ``O``, service ``S``,
month ``T``. For each month::

    police referrals  = crimes x referral_share x consent          (consent: opt-in or opt-out)
    self referrals    = prevalence x adults x (1 - report_share) / 12 x help_seeking
    engaged           = (police referrals x contact_share + self referrals) x (1 - decline_share)
    referrals[s]      = sum over offences of engaged x need_mix[o, s], where s serves the area

Self-referrers made contact themselves, so the contact share applies to police referrals
only. Each lever multiplies (or switches) one factor, with its time profile, so each lever's
contribution to demand can be measured on its own (the waterfall).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from math import factorial

import numpy as np
from numpy.typing import NDArray

from needsled.model import Z80_WIDTH, Model, Pathway
from needsled.scenarios import DEMAND_LEVERS, Lever, Scenario

__all__ = [
    "Draws",
    "LeverSizes",
    "draw_parameters",
    "lever_sizes",
    "point_parameters",
    "referrals",
    "waterfall",
]

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Draws:
    """Parameter values for each replicate (leading axis R)."""

    pathway: dict[str, F64]  # each (R, A, O)
    need_mix: F64  # (R, O, S)
    duration_weeks: F64  # (R, S)
    drop_out_per_month: F64
    cost_per_fte: F64
    reengage_share: F64

    @property
    def n(self) -> int:
        return int(self.need_mix.shape[0])


def draw_parameters(model: Model, n: int, rng: np.random.Generator) -> Draws:
    """Draw every uncertain parameter ``n`` times (model.md section 3)."""
    pw, sv = model.pathway, model.services
    return Draws(
        pathway={rate: getattr(pw, rate).draw(rng, n) for rate in Pathway.RATES},
        need_mix=model.need_mix.draw(rng, n),
        duration_weeks=sv.duration_weeks.draw(rng, n),
        drop_out_per_month=sv.drop_out_per_month.draw(rng, n),
        cost_per_fte=sv.cost_per_fte.draw(rng, n),
        reengage_share=sv.reengage_share.draw(rng, n),
    )


def point_parameters(model: Model) -> Draws:
    """The point values, as one replicate: the deterministic baseline's parameters."""
    pw, sv = model.pathway, model.services
    return Draws(
        pathway={rate: getattr(pw, rate).value[None] for rate in Pathway.RATES},
        need_mix=model.need_mix.value[None],
        duration_weeks=sv.duration_weeks.value[None],
        drop_out_per_month=sv.drop_out_per_month.value[None],
        cost_per_fte=sv.cost_per_fte.value[None],
        reengage_share=sv.reengage_share.value[None],
    )


@dataclass(frozen=True)
class LeverSizes:
    """Each lever's size per replicate, shape (R,) per lever (drawn where it has an interval)."""

    sizes: tuple[F64, ...]


def lever_sizes(scenario: Scenario, n: int, rng: np.random.Generator | None) -> LeverSizes:
    """Sizes for ``n`` replicates; with no generator, every replicate takes the point size."""
    out = []
    for lever in scenario.levers:
        size = np.full(n, lever.size)
        if lever.interval is not None and rng is not None:
            lo, hi = lever.interval
            z = rng.standard_normal(n)
            size = np.clip((lo + hi) / 2 + (hi - lo) / Z80_WIDTH * z, -1.0, 10.0)
        out.append(size)
    return LeverSizes(tuple(out))


def _mask(model: Model, lever: Lever) -> tuple[F64, F64]:
    """Which areas (A,) and offences (O,) a lever touches, as 0/1."""
    areas = np.array([lever.areas is None or a in lever.areas for a in model.area_codes], float)
    offs = np.array(
        [lever.offences is None or o in lever.offences for o in model.offence_codes], float
    )
    return areas, offs


def referrals(
    model: Model,
    crime: F64,
    draws: Draws,
    scenario: Scenario,
    sizes: LeverSizes,
    active: Iterable[int] | None = None,
    services: Sequence[int] | None = None,
) -> F64:
    """Expected referrals per month, shape (R, A, S, T, 2): class 0 priority, 1 standard.

    ``crime`` is (R, A, O, T) recorded crimes (forecast paths) before levers. ``active``
    limits which of the scenario's levers apply (all by default); the waterfall uses it.
    ``services`` (indices) gives those services' columns alone, in that order, each exactly
    its column of the whole (S is then their number).
    """
    on = set(range(len(scenario.levers))) if active is None else set(active)
    months = np.arange(model.first_month, model.first_month + crime.shape[-1])
    p = draws.pathway
    crime = crime.copy()
    ref_share = np.broadcast_to(p["referral_share"][..., None], crime.shape).copy()
    help_seek = np.broadcast_to(p["help_seeking"][..., None], crime.shape).copy()
    opt_out = np.broadcast_to(model.pathway.opt_out[None, :, :, None], crime.shape)
    switch = np.zeros(crime.shape)  # share of victims under the other referral model
    for i, lever in enumerate(scenario.levers):
        if i not in on or lever.lever not in DEMAND_LEVERS:
            continue
        w = lever.profile_weights(months, model.first_month)  # (T,)
        areas, offs = _mask(model, lever)
        reach = areas[None, :, None, None] * offs[None, None, :, None] * w[None, None, None, :]
        size = sizes.sizes[i][:, None, None, None]
        if lever.lever == "police_reports":
            crime *= 1.0 + size * reach
        elif lever.lever == "referral_share":
            ref_share = np.clip(ref_share * (1.0 + size * reach), 0.0, 1.0)
        elif lever.lever == "self_referral":
            help_seek *= 1.0 + size * reach
        else:
            differs = opt_out != (lever.value == "opt-out")
            switch = np.where(differs, np.maximum(switch, reach), switch)
    consent_in = p["consent_opt_in"][..., None]
    consent_out = p["consent_opt_out"][..., None]
    own = np.where(opt_out, consent_out, consent_in)
    other = np.where(opt_out, consent_in, consent_out)
    consent = (1.0 - switch) * own + switch * other
    police = np.maximum(crime, 0.0) * ref_share * consent
    unreported = (
        p["prevalence"] * model.adult_population[None, :, None] * (1.0 - p["report_share"]) / 12.0
    )
    self_ref = unreported[..., None] * help_seek
    engaged = (police * p["contact_share"][..., None] + self_ref) * (
        1.0 - p["decline_share"][..., None]
    )
    prio = p["priority_share"][..., None]
    served = model.staffing.served.astype(float)  # (A, S)
    # (R,A,O,T) x (R,O,S) -> (R,A,S,T), for each class
    mix = draws.need_mix
    if services is not None:
        si = np.asarray(services, dtype=np.int64)
        served, mix = served[:, si], np.ascontiguousarray(mix[:, :, si])
    out = np.empty((*engaged.shape[:2], mix.shape[2], engaged.shape[3], 2))
    out[..., 0] = np.einsum("raot,ros->rast", engaged * prio, mix)
    out[..., 1] = np.einsum("raot,ros->rast", engaged * (1.0 - prio), mix)
    out *= served[None, :, :, None, None]
    return out


def waterfall(model: Model, crime_mean: F64, scenario: Scenario) -> F64:
    """What each demand lever added to referrals over the horizon, shape (L, A, S).

    The contributions are Shapley values over the scenario's demand levers (evaluated on the
    deterministic path), so they add up exactly to the scenario's change from the baseline and
    do not depend on the order the levers are listed in. Levers that do not act on demand
    contribute zero.
    """
    draws = point_parameters(model)
    sizes = lever_sizes(scenario, 1, None)
    demand = [i for i, lv in enumerate(scenario.levers) if lv.lever in DEMAND_LEVERS]
    cache: dict[frozenset[int], F64] = {}

    def total(subset: frozenset[int]) -> F64:
        if subset not in cache:
            r = referrals(model, crime_mean[None], draws, scenario, sizes, subset)
            cache[subset] = r.sum(axis=(3, 4))[0]  # (A, S)
        return cache[subset]

    n = len(demand)
    out = np.zeros((len(scenario.levers), *model.staffing.served.shape))
    for i in demand:
        others = [j for j in demand if j != i]
        for k in range(n):
            weight = factorial(k) * factorial(n - k - 1) / factorial(n)
            for combo in combinations(others, k):
                base = frozenset(combo)
                out[i] += weight * (total(base | {i}) - total(base))
    return out
