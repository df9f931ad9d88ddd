"""Analytic queueing layer: NHS-R waiting-list rules of thumb, Erlang B/C and M/M/c.

Units follow the NHS-R Community ``NHSRwaitinglist`` R package: demand and capacity are
rates per week and waits are in weeks. Any consistent time unit works, as long as every
rate and every time in one call use the same unit.

Every function is NumPy-vectorised: array-like inputs broadcast together and the result
is a float64 ndarray (0-d for all-scalar inputs). Invalid inputs (NaN, infinite,
negative, or zero where a divisor is needed) raise ``ValueError`` naming the argument.

Sources:
    NHS-R Community, NHSRwaitinglist, https://github.com/nhs-r-community/NHSRwaitinglist,
    files ``R/calc_*.R`` (queue load, target mean wait, target queue size, relief and
    target capacity, waiting list pressure).
    Erlang B/C and M/M/c: standard results, e.g. Gross, Shortle, Thompson & Harris,
    *Fundamentals of Queueing Theory*, 4th ed., Wiley (2008), section 2.3.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "erlang_b",
    "erlang_c",
    "mmc_mean_wait",
    "queue_load",
    "relief_capacity",
    "target_capacity",
    "target_mean_wait",
    "target_queue_size",
    "waiting_list_pressure",
]

_FloatArray = NDArray[np.float64]


def _check(func: str, name: str, value: ArrayLike, *, positive: bool = False) -> _FloatArray:
    """Convert ``value`` to float64 and reject NaN, infinite, negative (or zero) entries."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        msg = f"{func}(): `{name}` must be numeric, got {value!r}; pass numbers or an array."
        raise ValueError(msg) from exc
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else (arr < 0))
    if np.any(bad):
        bound = "> 0" if positive else ">= 0"
        first = float(arr[bad].ravel()[0])
        msg = (
            f"{func}(): `{name}` must be finite and {bound}, but {int(np.sum(bad))} value(s) "
            f"are not (first offending value: {first!r}). Remove or impute missing (NaN) "
            f"values and check the sign and units of `{name}` before calling."
        )
        raise ValueError(msg)
    return arr


def _servers(func: str, value: ArrayLike) -> NDArray[np.int64]:
    """Validate a number of servers: finite, >= 0 and integral."""
    arr = _check(func, "servers", value)
    if np.any(arr != np.floor(arr)):
        msg = (
            f"{func}(): `servers` must be whole numbers, got {value!r}; round staffing "
            "to whole servers (e.g. with numpy.floor) before calling."
        )
        raise ValueError(msg)
    return arr.astype(np.int64)


def _erlang_b(c: NDArray[np.int64], a: _FloatArray) -> _FloatArray:
    """Stable Erlang B recursion, vectorised over broadcast ``c`` and ``a``."""
    cb, ab = np.broadcast_arrays(c, a)
    b = np.ones(ab.shape, dtype=np.float64)
    for k in range(1, int(cb.max(initial=0)) + 1):
        ak = ab * b
        b = np.where(k <= cb, ak / (k + ak), b)
    return b


def _erlang_c(c: NDArray[np.int64], a: _FloatArray) -> _FloatArray:
    b = _erlang_b(c, a)
    cf = c.astype(np.float64)
    saturated = a >= cf
    denom = np.where(saturated, 1.0, cf - a * (1.0 - b))
    return np.asarray(np.where(saturated, 1.0, cf * b / denom), dtype=np.float64)


def queue_load(demand: ArrayLike, capacity: ArrayLike) -> _FloatArray:
    """Queue load ``demand / capacity`` (NHSRwaitinglist ``calc_queue_load``).

    Arrivals per removal; a load above 1 means the waiting list grows. ``demand`` and
    ``capacity`` are rates in the same unit (patients per week in the NHS-R convention).
    """
    d = _check("queue_load", "demand", demand)
    cap = _check("queue_load", "capacity", capacity, positive=True)
    return np.asarray(d / cap, dtype=np.float64)


def target_mean_wait(target_wait: ArrayLike, factor: ArrayLike = 4) -> _FloatArray:
    """Target mean wait ``target_wait / factor`` (NHSRwaitinglist ``calc_target_mean_wait``).

    Assumes roughly exponential waits, so a mean of a quarter (factor 4) to a sixth
    (factor 6) of the target gives about a 1.8%-0.2% chance of breaching it. Weeks in,
    weeks out.
    """
    tw = _check("target_mean_wait", "target_wait", target_wait)
    f = _check("target_mean_wait", "factor", factor, positive=True)
    return np.asarray(tw / f, dtype=np.float64)


def target_queue_size(
    demand: ArrayLike, target_wait: ArrayLike, factor: ArrayLike = 4
) -> _FloatArray:
    """Target queue size ``demand * target_wait / factor`` by Little's law.

    NHSRwaitinglist ``calc_target_queue_size``: L = lambda * W with W the target mean
    wait. Assumes a steady state with capacity > demand. Demand per week and target
    wait in weeks give a number of patients.
    """
    d = _check("target_queue_size", "demand", demand)
    tw = _check("target_queue_size", "target_wait", target_wait)
    f = _check("target_queue_size", "factor", factor, positive=True)
    return np.asarray(_target_queue_size(d, tw, f), dtype=np.float64)


def relief_capacity(
    demand: ArrayLike,
    queue_size: ArrayLike,
    target_queue_size: ArrayLike,
    time_to_target: ArrayLike = 26,
) -> _FloatArray:
    """Relief capacity ``demand + (queue_size - target_queue_size) / time_to_target``.

    NHSRwaitinglist ``calc_relief_capacity``: the removal rate that clears the excess
    queue linearly over ``time_to_target`` (same time unit as the demand rate, default
    26 weeks) while keeping up with demand. Deterministic (fluid) approximation; as in
    the R code the result is not clipped, so it falls below demand when the queue is
    already under target. The R function's optional ``num_referrals``/``cv_demand``
    demand inflation is not implemented.
    """
    d = _check("relief_capacity", "demand", demand)
    q = _check("relief_capacity", "queue_size", queue_size)
    tq = _check("relief_capacity", "target_queue_size", target_queue_size)
    t = _check("relief_capacity", "time_to_target", time_to_target, positive=True)
    return np.asarray(_relief_capacity(d, q, tq, t), dtype=np.float64)


def target_capacity(
    demand: ArrayLike,
    target_wait: ArrayLike,
    factor: ArrayLike = 4,
    cv_demand: ArrayLike = 1,
    cv_capacity: ArrayLike = 1,
) -> _FloatArray:
    """Capacity needed for a target wait, Kingman's heavy-traffic formula.

    ``demand + ((cv_demand**2 + cv_capacity**2) / 2) * (factor / target_wait)``, exactly
    as coded in NHSRwaitinglist ``calc_target_capacity`` (its roxygen text omits the
    ``/ 2``; the code and its tests include it). From Kingman's G/G/1 approximation
    ``W ~ ((ca^2 + cs^2) / 2) / (capacity - demand)`` solved for capacity with
    ``W = target_wait / factor``. ``cv_demand`` is the coefficient of variation of
    inter-arrival times, ``cv_capacity`` that of times between removals (1 and 1 =
    Poisson-like). Assumes heavy traffic (load close to but below 1). Per-week rates in,
    per-week capacity out.
    """
    d = _check("target_capacity", "demand", demand)
    tw = _check("target_capacity", "target_wait", target_wait, positive=True)
    f = _check("target_capacity", "factor", factor, positive=True)
    cvd = _check("target_capacity", "cv_demand", cv_demand)
    cvc = _check("target_capacity", "cv_capacity", cv_capacity)
    return np.asarray(_target_capacity(d, tw, f, cvd, cvc), dtype=np.float64)


# The formulas alone, for callers whose arrays are valid by construction (the projection's
# FTE needed, on arrays of a million cells, where each check is a pass over them; not part
# of the public surface): the functions above check their arguments, then call these, so
# both give the same numbers.


_Values = _FloatArray | float  # an array of float64, or one number


def _target_queue_size(demand: _Values, target_wait: _Values, factor: _Values = 4.0) -> _Values:
    """:func:`target_queue_size` without its checks."""
    return demand * (target_wait / factor)


def _relief_capacity(
    demand: _Values, queue_size: _Values, target_queue_size: _Values, time_to_target: _Values
) -> _Values:
    """:func:`relief_capacity` without its checks."""
    return demand + (queue_size - target_queue_size) / time_to_target


def _target_capacity(
    demand: _Values,
    target_wait: _Values,
    factor: _Values = 4.0,
    cv_demand: _Values = 1.0,
    cv_capacity: _Values = 1.0,
) -> _Values:
    """:func:`target_capacity` without its checks."""
    return demand + ((cv_demand**2 + cv_capacity**2) / 2) * (factor / target_wait)


def waiting_list_pressure(mean_wait: ArrayLike, target_wait: ArrayLike) -> _FloatArray:
    """Waiting list pressure ``2 * mean_wait / target_wait``.

    NHSRwaitinglist ``calc_waiting_list_pressure``: above 1 the list will most likely
    miss its target. ``mean_wait`` is the current mean wait of the list, in the same
    unit as ``target_wait`` (weeks).
    """
    mw = _check("waiting_list_pressure", "mean_wait", mean_wait)
    tw = _check("waiting_list_pressure", "target_wait", target_wait, positive=True)
    return np.asarray(2 * mw / tw, dtype=np.float64)


def erlang_b(servers: ArrayLike, offered_load: ArrayLike) -> _FloatArray:
    """Erlang B blocking probability for ``servers`` servers and ``offered_load`` Erlangs.

    ``B(c, a) = (a^c / c!) / sum_{k=0..c} a^k / k!`` (M/M/c/c loss system: Poisson
    arrivals, no queue, any service-time distribution), computed with the stable
    recursion ``B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))``, which never forms
    factorials and is accurate for thousands of servers. ``offered_load`` = arrival
    rate x mean service time (dimensionless). ``servers`` must be whole numbers >= 0.
    """
    c = _servers("erlang_b", servers)
    a = _check("erlang_b", "offered_load", offered_load)
    return _erlang_b(c, a)


def erlang_c(servers: ArrayLike, offered_load: ArrayLike) -> _FloatArray:
    """Erlang C probability that an arrival has to wait (M/M/c queue).

    ``C(c, a) = c B(c, a) / (c - a (1 - B(c, a)))`` for ``a < c``, with B the Erlang B
    probability; 1.0 where ``a >= c`` (unstable queue, everyone waits). Assumes Poisson
    arrivals, exponential service, ``c`` identical servers, FIFO, no abandonment.
    """
    c = _servers("erlang_c", servers)
    a = _check("erlang_c", "offered_load", offered_load)
    return _erlang_c(c, a)


def mmc_mean_wait(
    arrival_rate: ArrayLike, service_rate: ArrayLike, servers: ArrayLike
) -> _FloatArray:
    """Mean wait in queue (excluding service) of an M/M/c queue.

    ``Wq = C(c, a) / (c mu - lambda)`` with ``a = lambda / mu`` and C the Erlang C
    probability; ``inf`` where the load ``rho = lambda / (c mu) >= 1``. ``arrival_rate``
    (lambda) and ``service_rate`` (mu, per server) share a time unit, e.g. referrals per
    week and cases closed per worker per week, giving Wq in weeks. Same assumptions as
    :func:`erlang_c`.
    """
    lam = _check("mmc_mean_wait", "arrival_rate", arrival_rate)
    mu = _check("mmc_mean_wait", "service_rate", service_rate, positive=True)
    c = _servers("mmc_mean_wait", servers)
    a = lam / mu
    slack = c * mu - lam
    unstable = (a >= c) | (slack <= 0)
    wq = _erlang_c(c, a) / np.where(unstable, 1.0, slack)
    return np.asarray(np.where(unstable, np.inf, wq), dtype=np.float64)
