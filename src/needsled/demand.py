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

import numba as nb
import numpy as np
from numpy.typing import NDArray

from needsled._parallel import launch_guard
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
    n_r, n_a, n_o, n_t = crime.shape
    kinds, reaches, by_size, differs = [], [], [], []
    for i, lever in enumerate(scenario.levers):
        if i not in on or lever.lever not in DEMAND_LEVERS:
            continue
        w = lever.profile_weights(months, model.first_month)  # (T,)
        areas, offs = _mask(model, lever)
        reaches.append(areas[:, None, None] * offs[None, :, None] * w[None, None, :])
        kinds.append(_KINDS.index(lever.lever))
        by_size.append(np.broadcast_to(sizes.sizes[i], (n_r,)))
        differs.append(model.pathway.opt_out != (lever.value == "opt-out"))
    served = model.staffing.served.astype(float)  # (A, S)
    mix = draws.need_mix
    if services is not None:
        si = np.asarray(services, dtype=np.int64)
        served, mix = served[:, si], mix[:, :, si]
    unreported = (
        p["prevalence"] * model.adult_population[None, :, None] * (1.0 - p["report_share"]) / 12.0
    )

    def each(x: F64) -> F64:  # (R, A, O) for every replicate
        return np.broadcast_to(x, (n_r, n_a, n_o))

    with launch_guard():  # the kernel runs without the interpreter lock
        return _referrals(
            np.ascontiguousarray(crime, dtype=np.float64),
            each(p["referral_share"]),
            each(p["help_seeking"]),
            each(p["consent_opt_in"]),
            each(p["consent_opt_out"]),
            np.ascontiguousarray(model.pathway.opt_out, dtype=np.bool_),
            each(unreported),
            each(p["contact_share"]),
            each(p["decline_share"]),
            each(p["priority_share"]),
            np.ascontiguousarray(np.broadcast_to(mix, (n_r, *mix.shape[1:]))),
            np.ascontiguousarray(served),
            np.asarray(kinds, dtype=np.int64),
            np.array(by_size, dtype=np.float64).reshape(len(kinds), n_r),
            np.array(reaches, dtype=np.float64).reshape(len(kinds), n_a, n_o, n_t),
            np.array(differs, dtype=np.bool_).reshape(len(kinds), n_a, n_o),
        )


# the demand levers' kinds, in the order the kernel numbers them
_KINDS = ("police_reports", "referral_share", "self_referral", "referral_model")


@nb.njit(cache=True, parallel=True, nogil=True)
def _referrals(
    crime: F64,
    referral_share: F64,
    help_seeking: F64,
    consent_opt_in: F64,
    consent_opt_out: F64,
    opt_out: NDArray[np.bool_],
    unreported: F64,
    contact_share: F64,
    decline_share: F64,
    priority_share: F64,
    mix: F64,
    served: F64,
    kinds: NDArray[np.int64],
    sizes: F64,
    reach: F64,
    differs: NDArray[np.bool_],
) -> F64:
    """:func:`referrals`, cell by cell, with no array in between (the levers in scenario
    order: ``kinds`` (L,) numbered as :data:`_KINDS`, ``sizes`` (L, R), ``reach`` (L, A, O,
    T), ``differs`` (L, A, O): whether a referral-model lever changes the model there).
    Every figure is worked out with the same operations in the same order as NumPy would,
    element by element, so it is the same to the last bit: a lever's change ``1 + size *
    reach``; the victims referred ``max(crime, 0) * share * consent``; the referrals of each
    service summed over offences in order, then times whether the area has the service."""
    n_r, n_a, n_o, n_t = crime.shape
    n_s = mix.shape[2]
    out = np.empty((n_r, n_a, n_s, n_t, 2))
    for r in nb.prange(n_r):
        acc = np.empty((n_s, n_t, 2))  # one area's referrals, summed over offences in order
        for a in range(n_a):
            acc[:] = 0.0
            for o in range(n_o):
                own_out = opt_out[a, o]
                c_in, c_out = consent_opt_in[r, a, o], consent_opt_out[r, a, o]
                own = c_out if own_out else c_in
                other = c_in if own_out else c_out
                contact = contact_share[r, a, o]
                kept = 1.0 - decline_share[r, a, o]
                prio = priority_share[r, a, o]
                for t in range(n_t):
                    c = crime[r, a, o, t]
                    share = referral_share[r, a, o]
                    seeking = help_seeking[r, a, o]
                    switch = 0.0
                    for lv in range(kinds.shape[0]):
                        f = reach[lv, a, o, t]
                        kind = kinds[lv]
                        if kind == 0:
                            c *= 1.0 + sizes[lv, r] * f
                        elif kind == 1:
                            share = share * (1.0 + sizes[lv, r] * f)
                            share = 0.0 if share < 0.0 else 1.0 if share > 1.0 else share
                        elif kind == 2:
                            seeking *= 1.0 + sizes[lv, r] * f
                        elif differs[lv, a, o]:
                            switch = max(switch, f)
                    consent = (1.0 - switch) * own + switch * other
                    police = (0.0 if c < 0.0 else c) * share * consent
                    engaged = (police * contact + unreported[r, a, o] * seeking) * kept
                    first, second = engaged * prio, engaged * (1.0 - prio)
                    for s in range(n_s):
                        acc[s, t, 0] += first * mix[r, o, s]
                        acc[s, t, 1] += second * mix[r, o, s]
            for s in range(n_s):
                for t in range(n_t):
                    out[r, a, s, t, 0] = acc[s, t, 0] * served[a, s]
                    out[r, a, s, t, 1] = acc[s, t, 1] * served[a, s]
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
