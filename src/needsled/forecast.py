"""Monthly recorded-crime forecasts with 80% intervals and sample paths.

All methods take ``history`` of shape ``(n_series, n_months)`` (non-negative monthly counts,
oldest first, at least 24 months) and return a :class:`Forecast`. ``paths`` are sampled
**crime counts** (non-negative, integer-valued for the pooled method): they include the
uncertainty in level, trend and seasonality *and* month-to-month noise, so the 10th-90th
percentiles of ``paths`` over replicates are ``lo80``/``hi80``. Downstream models should thin
or scale a path (for example Poisson referrals with mean ``rate * path``) and must not add a
second layer of crime-count noise.

Methods (``m = 12``, ``h = 1..H`` months ahead, ``z = 1.2816`` the 90% normal quantile):

``"seasonal_naive"``
    ``ŷ[T+h] = y[T+h-12k]`` with ``k = ceil(h/12)``. Residuals ``e[t] = y[t] - y[t-12]``;
    ``σ = RMS(e)``; the error is a seasonal random walk, so ``sd_h = σ·sqrt(k)`` and paths add
    one ``N(0, σ²)`` step per elapsed year to each calendar month (correlated at lag 12).
``"mean"``
    ``ŷ[T+h] = mean(y[T-11..T])``. Residuals ``e[t] = y[t] - mean(y[t-12..t-1])``;
    ``sd_h = σ = RMS(e)`` for every ``h``; paths are ``ŷ + N(0, σ²)`` independently by month.
``"ets"``
    Per series, ETS(A,Ad,A) (additive error, damped additive trend, additive seasonality;
    Hyndman et al. 2008) fitted by maximum likelihood on ``x = log1p(y)``. With
    ``c_j = α + β(φ + … + φ^j) + γ·1[j mod m = 0]`` the forecast variance is
    ``v_h = σ²(1 + Σ_{j<h} c_j²)``; ``mean = exp(x̂_h + v_h/2) - 1`` and the interval is
    ``expm1(x̂_h ± z·sqrt(v_h))``. Paths are ``expm1`` of state-space simulations. One fit per
    series: about 0.4 s each, so it is a comparison method, not the default.
``"pooled_ets"`` (default)
    Series with the same ``groups`` label (all series when ``groups`` is None) are pooled:

    1. *Total.* ``T[t] = Σ_i y[i,t]`` gets the ETS(A,Ad,A) model above on ``log1p`` scale.
       Pooling gives a seasonal profile and trend estimated from counts ~30× larger than any
       one borough's, where a borough's own seasonal estimate is mostly noise.
    2. *Shares.* ``ŝ_i = (Σ_{last L} y_i + 0.5) / (Σ_{last L} T + 0.5k)``, ``L = 24`` (whole
       years, so seasonality cancels; 24 beat 12 in the backtests; ``+0.5`` keeps shares
       positive). Each path's log-share is ``log ŝ_i + sqrt(v0_i)·ξ_i + τ·Σ_{j≤h} ν_ij``
       (``ξ, ν ~ N(0,1)``), renormalised to sum to 1. ``τ²`` is a random-walk drift per
       month, from year-on-year changes of annual log-shares over the last 5 years,
       ``E[Δ²] = τ²(2m²+1)/(3m) + sampling variance``; ``v0_i = φ(1-ŝ_i)/Σ_{last L} y_i +
       τ²(L-1)(2L-1)/(6L)`` is the error of the L-month share as the current share.
    3. *Allocation.* Each path's total count ``N = round(expm1(x))`` is split
       Dirichlet-multinomially, ``y_h | N ~ DirMult(N, c·s_h)``, whose variance is
       ``N s(1-s)·φ`` with ``φ = (N+c)/(1+c)``. ``φ`` is the mean Pearson ratio
       ``(y - T·s̃)² / (T·s̃(1-s̃))`` over the last 36 months (``s̃`` = share in the 12
       neighbouring months, ``×12/13`` for that estimate's own noise).

    Borough paths therefore sum exactly to the total's path (coherent), keep the total's
    level/trend uncertainty and lag-12 correlation, and add share drift and allocation noise.
    ``mean_i = ŝ_i·(exp(x̂_h + v_h/2) - 1)``; intervals are path quantiles with a continuity
    correction (counts spread over ``k ± ½``) so that discreteness does not widen them.

Intervals of the simulated methods use ``max(n_paths, 1000)`` internal paths; the first
``n_paths`` are returned. Assumptions: Gaussian errors on the working scale, parameters known
(no parameter uncertainty), no structural breaks (lockdowns, recording-practice changes).
Evidence for the default (rolling-origin backtests on Met data) is in ``docs/forecasting.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from threadpoolctl import threadpool_limits

__all__ = [
    "DEFAULT_METHOD",
    "METHODS",
    "MIN_MONTHS",
    "Forecast",
    "ForecastInputError",
    "backtest",
    "forecast",
    "mase",
]

F64 = NDArray[np.float64]

SEASON = 12
MIN_MONTHS = 2 * SEASON
METHODS = ("seasonal_naive", "mean", "ets", "pooled_ets")
DEFAULT_METHOD = "pooled_ets"
Z80 = 1.2815515655446004  # standard normal 0.9 quantile
N_INTERVAL_PATHS = 1000
SHARE_MONTHS = 24
DISPERSION_MONTHS = 36
DRIFT_YEARS = 5
# ETS(A,Ad,A) first; ETS(A,N,A) if that fit does not converge.
ETS_SPECS: tuple[dict[str, Any], ...] = (
    {"trend": "add", "damped_trend": True},
    {"trend": None, "damped_trend": False},
)


class ForecastInputError(ValueError):
    """Invalid input to :func:`forecast` or :func:`backtest`; the message says what to fix."""


@dataclass(frozen=True)
class Forecast:
    """Forecast for ``n_series`` series over ``horizon`` months (arrays are read-only).

    ``mean``, ``lo80``, ``hi80``: ``(n_series, horizon)`` expected count and the 10% / 90%
    quantiles. ``paths``: ``(n_paths, n_series, horizon)`` sampled counts including noise.
    ``notes``: what the fit had to do (e.g. a model fallback after a convergence warning).
    """

    mean: F64
    lo80: F64
    hi80: F64
    paths: F64
    method: str
    notes: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        for arr in (self.mean, self.lo80, self.hi80, self.paths):
            arr.flags.writeable = False


def _validate(history: ArrayLike) -> F64:
    try:
        y = np.asarray(history, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ForecastInputError(f"history must be numeric counts: {exc}") from exc
    if y.ndim != 2:
        raise ForecastInputError(
            f"history must be 2-D (n_series, n_months), got shape {y.shape}; "
            "for one series pass history[None, :]"
        )
    if y.shape[0] < 1:
        raise ForecastInputError("history has no series (shape[0] == 0)")
    if not np.all(np.isfinite(y)):
        bad = np.argwhere(~np.isfinite(y))[0]
        raise ForecastInputError(
            f"history contains NaN/inf (first at series {bad[0]}, month {bad[1]}); "
            "fill or drop missing months before forecasting"
        )
    if np.any(y < 0):
        bad = np.argwhere(y < 0)[0]
        raise ForecastInputError(
            f"history contains negative counts (first at series {bad[0]}, month {bad[1]}); "
            "counts must be >= 0"
        )
    if y.shape[1] < MIN_MONTHS:
        raise ForecastInputError(
            f"history has {y.shape[1]} months; at least {MIN_MONTHS} (two full years) are "
            "needed to estimate seasonality; supply a longer history"
        )
    return y


def _group_index(groups: Sequence[Hashable] | NDArray[Any] | None, k: int) -> list[NDArray[Any]]:
    if groups is None:
        return [np.arange(k)]
    labels = list(groups)
    if len(labels) != k:
        raise ForecastInputError(f"groups has {len(labels)} labels but history has {k} series")
    index: dict[Hashable, list[int]] = {}
    for i, g in enumerate(labels):
        index.setdefault(g, []).append(i)
    return [np.array(v) for v in index.values()]


def _sn_residual_sd(y: F64) -> F64:
    e = y[:, SEASON:] - y[:, :-SEASON]
    return np.asarray(np.sqrt(np.mean(e**2, axis=1)))


def _seasonal_naive(
    y: F64, horizon: int, n_paths: int, rng: np.random.Generator
) -> tuple[F64, ...]:
    k = y.shape[0]
    h = np.arange(horizon)
    mean = y[:, y.shape[1] - SEASON + h % SEASON]
    years = h // SEASON + 1
    sigma = _sn_residual_sd(y)
    sd = sigma[:, None] * np.sqrt(years)[None, :]
    n_years = int(years[-1])
    steps = rng.standard_normal((n_paths, k, n_years, SEASON)).cumsum(axis=2)
    noise = steps.reshape(n_paths, k, n_years * SEASON)[:, :, :horizon]
    paths = np.maximum(mean + sigma[None, :, None] * noise, 0.0)
    return mean, np.maximum(mean - Z80 * sd, 0.0), mean + Z80 * sd, paths


def _mean_method(y: F64, horizon: int, n_paths: int, rng: np.random.Generator) -> tuple[F64, ...]:
    k, n = y.shape
    level = y[:, -SEASON:].mean(axis=1)
    csum = np.concatenate([np.zeros((k, 1)), np.cumsum(y, axis=1)], axis=1)
    trailing = (csum[:, SEASON:n] - csum[:, : n - SEASON]) / SEASON  # mean of y[t-12..t-1]
    sd = np.sqrt(np.mean((y[:, SEASON:] - trailing) ** 2, axis=1))
    mean = np.repeat(level[:, None], horizon, axis=1)
    noise = rng.standard_normal((n_paths, k, horizon)) * sd[None, :, None]
    paths = np.maximum(mean + noise, 0.0)
    band = Z80 * sd[:, None]
    return mean, np.maximum(mean - band, 0.0), mean + band, paths


@dataclass(frozen=True)
class _LogEts:
    """ETS fit on x = log1p(y): point forecast and analytic variance on that scale."""

    xhat: F64
    var: F64
    sims: F64  # (n_sim, horizon) simulated x
    note: str | None


def _fit_once(x: F64, spec: dict[str, Any]) -> tuple[Any, list[str]]:
    """One ETS fit; returns the results and the optimiser problems it reported."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = ETSModel(x, error="add", seasonal="add", seasonal_periods=SEASON, **spec)
        res = model.fit(disp=False, maxiter=2000)
    problems: list[str] = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning | RuntimeWarning):
            problems.append(f"{w.category.__name__}: {w.message}")
        else:  # not ours to handle: pass it on unchanged
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not res.mle_retvals.get("converged", True):
        problems.append("optimiser did not converge")
    if not np.isfinite(res.llf):
        problems.append("non-finite likelihood")
    return res, list(dict.fromkeys(problems))


def _fit_log_ets(y: F64, horizon: int, n_sim: int, rng: np.random.Generator) -> _LogEts:
    """Fit ETS(A,Ad,A) to log1p(y), falling back to ETS(A,N,A) if it does not converge.

    statsmodels reports optimiser trouble as ConvergenceWarning (or RuntimeWarning from
    overflow in a trial step). Those are caught for this fit only and acted on: the simpler
    no-trend model is tried, and if that also fails the first fit is kept; either way the
    problem is recorded in ``Forecast.notes``. Any other warning is re-issued unchanged.
    """
    x = np.log1p(y)
    if np.ptp(x) == 0:  # constant (e.g. all-zero) history: nothing to fit, no variation seen
        flat = np.full(horizon, x[-1])
        return _LogEts(flat, np.zeros(horizon), np.tile(flat, (n_sim, 1)), "constant history")
    res, problems = _fit_once(x, ETS_SPECS[0])
    note: str | None = None
    if problems:
        note = f"ETS {ETS_SPECS[0]}: {'; '.join(problems)}"
        for spec in ETS_SPECS[1:]:
            alt, alt_problems = _fit_once(x, spec)
            if not alt_problems:
                res, note = alt, f"{note}; used ETS {spec} instead"
                break
        else:
            note = f"{note}; fallbacks failed too, kept the first fit"
    alpha = float(res.smoothing_level)
    beta = float(res.smoothing_trend) if res.has_trend else 0.0
    gamma = float(res.smoothing_seasonal)
    phi = float(res.damping_trend) if res.damped_trend else 1.0
    j = np.arange(1, horizon)
    phi_j = np.cumsum(phi ** np.arange(1, horizon + 1))[: horizon - 1]
    c = alpha + beta * phi_j + gamma * (j % SEASON == 0)
    scale = float(res.scale)
    var = scale * (1.0 + np.concatenate([[0.0], np.cumsum(c**2)]))
    xhat = np.asarray(res.forecast(horizon), dtype=np.float64)
    eps = rng.standard_normal((horizon, n_sim)) * np.sqrt(scale)
    sims = np.asarray(res.simulate(horizon, anchor="end", repetitions=n_sim, random_errors=eps))
    return _LogEts(xhat=xhat, var=var, sims=sims.reshape(horizon, n_sim).T, note=note)


def _mid_quantile(counts: F64, p: float) -> F64:
    """Quantile ``p`` over axis 0 of integer ``counts`` spread uniformly on ``[k-½, k+½]``.

    Plain quantiles of a discrete variable make a closed 80% interval cover more than 80%
    (about 85% at a mean of 20); this continuity correction removes that bias.
    """
    n = counts.shape[0]
    k = np.sort(counts, axis=0)[max(int(np.ceil(p * n)) - 1, 0)]
    below = (counts < k).mean(axis=0)
    at = (counts == k).mean(axis=0)
    return np.asarray(np.maximum(k - 0.5 + (p - below) / at, 0.0))


def _ets_per_series(
    y: F64, horizon: int, n_paths: int, rng: np.random.Generator
) -> tuple[F64, F64, F64, F64, list[str]]:
    k = y.shape[0]
    n_sim = max(n_paths, N_INTERVAL_PATHS)
    mean, lo, hi = (np.empty((k, horizon)) for _ in range(3))
    paths = np.empty((n_paths, k, horizon))
    notes: list[str] = []
    for i in range(k):
        fit = _fit_log_ets(y[i], horizon, n_sim, rng)
        sd = np.sqrt(fit.var)
        mean[i] = np.maximum(np.expm1(fit.xhat + fit.var / 2), 0.0)
        lo[i] = np.maximum(np.expm1(fit.xhat - Z80 * sd), 0.0)
        hi[i] = np.expm1(fit.xhat + Z80 * sd)
        paths[:, i, :] = np.maximum(np.expm1(fit.sims[:n_paths]), 0.0)
        if fit.note:
            notes.append(f"series {i}: {fit.note}")
    return mean, lo, hi, paths, notes


def _dispersion(y: F64, total: F64) -> float:
    """Pearson dispersion of series around their local share of the total (``φ``, >= 1)."""
    n = y.shape[1]
    half = SEASON // 2
    cy = np.concatenate([np.zeros((y.shape[0], 1)), np.cumsum(y, axis=1)], axis=1)
    ct = np.concatenate([[0.0], np.cumsum(total)])
    ratios = []
    for t in range(max(half, n - DISPERSION_MONTHS), n):
        a, b = max(0, t - half), min(n, t + half + 1)
        tot = ct[b] - ct[a] - total[t]
        if tot <= 0 or total[t] <= 0:
            continue
        s = (cy[:, b] - cy[:, a] - y[:, t]) / tot
        mu = total[t] * s
        ok = (s > 0) & (s < 1)
        ratios.append((y[ok, t] - mu[ok]) ** 2 / (mu[ok] * (1 - s[ok])))
    pearson = np.concatenate(ratios) if ratios else np.zeros(0)
    if pearson.size == 0:
        return 1.0
    window = SEASON / (SEASON + 1)  # remove the noise of the 12-month neighbour share
    return max(1.0, float(np.mean(pearson)) * window)


def _share_drift(y: F64, phi: float) -> float:
    """Random-walk variance per month of log-shares, from annual blocks (``τ²`` >= 0)."""
    n_blocks = min(DRIFT_YEARS, y.shape[1] // SEASON)
    blocks = y[:, y.shape[1] - n_blocks * SEASON :].reshape(y.shape[0], n_blocks, SEASON).sum(2)
    blocks = blocks + 0.5
    shares = blocks / blocks.sum(axis=0)
    d2 = np.diff(np.log(shares), axis=1) ** 2
    sampling = phi * (1 - shares) / blocks
    excess = float(np.mean(d2) - np.mean(sampling[:, 1:] + sampling[:, :-1]))
    return max(0.0, excess * 3 * SEASON / (2 * SEASON**2 + 1))


def _pooled_group(
    y: F64, horizon: int, n_paths: int, rng: np.random.Generator
) -> tuple[F64, F64, F64, F64, list[str]]:
    k = y.shape[0]
    n_sim = max(n_paths, N_INTERVAL_PATHS)
    total = y.sum(axis=0)
    fit = _fit_log_ets(total, horizon, n_sim, rng)
    n_total = np.rint(np.maximum(np.expm1(fit.sims), 0.0))  # (n_sim, horizon)
    recent = y[:, -SHARE_MONTHS:].sum(axis=1)
    share = (recent + 0.5) / (recent.sum() + 0.5 * k)
    mean = share[:, None] * np.maximum(np.expm1(fit.xhat + fit.var / 2), 0.0)[None, :]
    if k == 1:
        sims = n_total[:, None, :]
    else:
        phi = _dispersion(y, total)
        tau2 = _share_drift(y, phi)
        m = SHARE_MONTHS
        v0 = phi * (1 - share) / (recent + 0.5) + tau2 * (m - 1) * (2 * m - 1) / (6 * m)
        logs = np.log(share)[None, None, :] + np.sqrt(v0) * rng.standard_normal((n_sim, 1, k))
        logs = logs + np.sqrt(tau2) * rng.standard_normal((n_sim, horizon, k)).cumsum(axis=1)
        s = np.exp(logs - logs.max(axis=2, keepdims=True))
        s /= s.sum(axis=2, keepdims=True)
        if phi > 1.0:
            t_bar = max(float(total[-SHARE_MONTHS:].mean()), 2.0)
            conc = max((t_bar - phi) / (phi - 1.0), 1.0)
            g = rng.gamma(np.maximum(conc * s, 1e-12))
            s = g / g.sum(axis=2, keepdims=True)
        counts = rng.multinomial(n_total.astype(np.int64), s)  # (n_sim, horizon, k)
        sims = np.transpose(counts, (0, 2, 1)).astype(np.float64)
    lo, hi = _mid_quantile(sims, 0.1), _mid_quantile(sims, 0.9)
    notes = [fit.note] if fit.note else []
    return mean, lo, hi, sims[:n_paths], notes


def forecast(
    history: ArrayLike,
    horizon: int,
    n_paths: int,
    rng: np.random.Generator,
    method: str = DEFAULT_METHOD,
    groups: Sequence[Hashable] | NDArray[Any] | None = None,
) -> Forecast:
    """Forecast ``horizon`` months after ``history`` (``(n_series, n_months)`` counts).

    ``groups`` (one label per series) says which series are pooled by ``"pooled_ets"``, e.g.
    the offence of each borough series; ``None`` pools all. Other methods ignore it. All
    randomness comes from ``rng``: the same generator state gives identical paths.
    """
    y = _validate(history)
    if method not in METHODS:
        raise ForecastInputError(f"unknown method {method!r}; choose one of {METHODS}")
    if not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ForecastInputError(f"horizon must be a positive integer, got {horizon!r}")
    if not isinstance(n_paths, int | np.integer) or n_paths < 1:
        raise ForecastInputError(f"n_paths must be a positive integer, got {n_paths!r}")
    if not isinstance(rng, np.random.Generator):
        raise ForecastInputError("rng must be a numpy.random.Generator (np.random.default_rng)")
    horizon, n_paths = int(horizon), int(n_paths)
    # statsmodels' small fits run about 4x faster on one BLAS thread than on several
    with threadpool_limits(limits=1, user_api="blas"):
        return _forecast(y, horizon, n_paths, rng, method, groups)


def _forecast(
    y: F64,
    horizon: int,
    n_paths: int,
    rng: np.random.Generator,
    method: str,
    groups: Sequence[Hashable] | NDArray[Any] | None,
) -> Forecast:
    notes: list[str] = []
    if method == "seasonal_naive":
        mean, lo, hi, paths = _seasonal_naive(y, horizon, n_paths, rng)
    elif method == "mean":
        mean, lo, hi, paths = _mean_method(y, horizon, n_paths, rng)
    elif method == "ets":
        mean, lo, hi, paths, notes = _ets_per_series(y, horizon, n_paths, rng)
    else:
        k = y.shape[0]
        mean, lo, hi = (np.empty((k, horizon)) for _ in range(3))
        paths = np.empty((n_paths, k, horizon))
        for idx in _group_index(groups, k):
            g = _pooled_group(y[idx], horizon, n_paths, rng)
            mean[idx], lo[idx], hi[idx], paths[:, idx, :] = g[:4]
            notes.extend(f"group of series {idx.tolist()}: {s}" for s in g[4])
    return Forecast(
        mean=np.asarray(mean, dtype=np.float64),
        lo80=np.asarray(lo, dtype=np.float64),
        hi80=np.asarray(hi, dtype=np.float64),
        paths=np.asarray(paths, dtype=np.float64),
        method=method,
        notes=tuple(notes),
    )


def mase(actual: ArrayLike, predicted: ArrayLike, train: ArrayLike) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006), seasonal scaling ``m = 12``.

    ``mean|actual - predicted| / mean_{t>=12}|train[t] - train[t-12]|``: below 1 means more
    accurate than the in-sample seasonal-naive forecast. NaN when the scale is 0.
    """
    a, p, tr = (np.asarray(v, dtype=np.float64) for v in (actual, predicted, train))
    if tr.size <= SEASON:
        raise ForecastInputError(f"train needs more than {SEASON} months to scale MASE")
    scale = float(np.mean(np.abs(tr[SEASON:] - tr[:-SEASON])))
    return float(np.mean(np.abs(a - p)) / scale) if scale > 0 else float("nan")


def backtest(
    history: ArrayLike,
    horizon: int,
    origins: Sequence[int] | None = None,
    methods: Sequence[str] = ("seasonal_naive", "mean", DEFAULT_METHOD),
    *,
    groups: Sequence[Hashable] | NDArray[Any] | None = None,
    series_names: Sequence[Hashable] | None = None,
    month_labels: Sequence[Hashable] | None = None,
    n_paths: int = N_INTERVAL_PATHS,
    seed: int = 0,
) -> pd.DataFrame:
    """Rolling-origin evaluation: one row per (series, method, origin).

    Origin ``o`` trains on months ``[0, o)`` (expanding window) and scores months
    ``[o, o + horizon)``. ``mase`` is scaled by the seasonal-naive MAE of that training
    window; ``coverage80`` is the share of held-out months with ``lo80 <= y <= hi80``.
    Default origins: every 3 months over the last 5 years of possible origins. ``origin`` is
    ``month_labels[o]`` if given, else ``o``; ``series`` is ``series_names[i]`` or ``i``.
    Origin ``o`` uses ``numpy.random.default_rng([seed, o])``, so results are reproducible.
    """
    y = _validate(history)
    k, n = y.shape
    last = n - int(horizon)
    if last < MIN_MONTHS:
        raise ForecastInputError(
            f"{n} months cannot hold {MIN_MONTHS} training months plus a {horizon}-month test"
        )
    if origins is None:
        origins = list(range(last, max(MIN_MONTHS, last - 60) - 1, -3))[::-1]
    bad = [o for o in origins if not MIN_MONTHS <= o <= last]
    if bad:
        raise ForecastInputError(
            f"origins {bad} out of range: need {MIN_MONTHS} <= origin <= n_months - horizon "
            f"= {last}"
        )
    names = list(series_names) if series_names is not None else list(range(k))
    labels = list(month_labels) if month_labels is not None else list(range(n))
    if len(names) != k or len(labels) != n:
        raise ForecastInputError("series_names must match n_series and month_labels n_months")
    rows: list[dict[str, Any]] = []
    for o in origins:
        train, test = y[:, :o], y[:, o : o + horizon]
        for method in methods:
            rng = np.random.default_rng([seed, o])
            fc = forecast(train, horizon, n_paths, rng, method=method, groups=groups)
            inside = (test >= fc.lo80) & (test <= fc.hi80)
            rows.extend(
                {
                    "series": names[i],
                    "method": method,
                    "origin": labels[o],
                    "horizon": int(horizon),
                    "mase": mase(test[i], fc.mean[i], train[i]),
                    "coverage80": float(inside[i].mean()),
                }
                for i in range(k)
            )
    return pd.DataFrame(
        rows, columns=["series", "method", "origin", "horizon", "mase", "coverage80"]
    )
