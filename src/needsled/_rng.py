"""Small, fast random number samplers for the Numba flow kernel.

Each service of each Monte Carlo chain owns its own SplitMix64 stream (Steele, Lea & Flood
2014, the generator behind Java's ``SplittableRandom``; it passes BigCrush). A stream depends
only on its seed, so results are identical whatever the number of threads, the chunking of
chains or the services run alongside.
NumPy's generators are not used inside the kernel because Numba keeps one global state per
thread, which makes parallel results depend on scheduling, and its samplers are several times
slower than these.

Samplers:

- ``uniform``: 53-bit doubles in [0, 1).
- ``poisson``: inversion by sequential search for a mean below 30 (exact); above that the
  PTRS transformed rejection of Hörmann (1993), also exact.
- ``binomial``: inversion (exact) when ``n·min(p, 1−p) < 30``; above that a Normal
  approximation with continuity correction, rounded and clipped to ``[0, n]``. At that size
  the skewness ``(1−2p)/sqrt(np(1−p))`` is below 0.2 and the mean and variance are exact to
  the rounding, which is all the flow model's outputs depend on.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np
from numpy.typing import NDArray

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO53 = 1.0 / 9007199254740992.0
# 1/k for the inversion loops: a multiplication is several times cheaper than a division
_INV = 1.0 / np.arange(1, 1002, dtype=np.float64)


@nb.njit(cache=True, inline="always")
def mix64(z: np.uint64) -> np.uint64:
    """SplitMix64's finaliser (Stafford's Mix13): a bijection that mixes every bit into
    every other; it also turns one stream's seed into another, unrelated one."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@nb.njit(cache=True, inline="always")
def next_u64(state: NDArray[np.uint64]) -> np.uint64:
    state[0] += _GOLDEN
    return mix64(state[0])


@nb.njit(cache=True, inline="always")
def uniform(state: NDArray[np.uint64]) -> float:
    return float(next_u64(state) >> _S11) * _TWO53


@nb.njit(cache=True)
def normal(state: NDArray[np.uint64]) -> float:
    u1 = uniform(state)
    while u1 <= 0.0:
        u1 = uniform(state)
    u2 = uniform(state)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@nb.njit(cache=True)
def poisson(state: NDArray[np.uint64], lam: float) -> float:
    if lam <= 0.0:
        return 0.0
    if lam < 10.0:
        p = math.exp(-lam)
        cdf = p
        u = uniform(state)
        k = 0
        while u > cdf and k < 1000:
            k += 1
            p *= lam * _INV[k - 1]
            cdf += p
        return float(k)
    # PTRS, Hörmann (1993), "The transformed rejection method for generating Poisson random
    # variables", Insurance: Mathematics and Economics 12(1).
    slam = math.sqrt(lam)
    loglam = math.log(lam)
    b = 0.931 + 2.53 * slam
    a = -0.059 + 0.02483 * b
    invalpha = 1.1239 + 1.1328 / (b - 3.4)
    vr = 0.9277 - 3.6224 / (b - 2.0)
    while True:
        u = uniform(state) - 0.5
        v = uniform(state)
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + lam + 0.43)
        if us >= 0.07 and v <= vr:
            return float(k)
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(invalpha) - math.log(a / (us * us) + b) <= (
            -lam + k * loglam - math.lgamma(k + 1.0)
        ):
            return float(k)


@nb.njit(cache=True)
def binomial(state: NDArray[np.uint64], n: float, p: float, log1m_q: float = 1.0) -> float:
    """Binomial(n, p). ``log1m_q``, if given (it is a log, so never positive), is
    ``log(1 - min(p, 1 - p))``: a caller drawing many times with the same ``p`` passes it to
    save a logarithm per draw."""
    trials = math.floor(n + 0.5)
    if trials <= 0.0 or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return trials
    flip = p > 0.5
    q = 1.0 - p if flip else p
    if trials * q * (1.0 - q) < 10.0:
        # inversion: walk up the pmf from 0
        ratio = q / (1.0 - q)
        pmf = math.exp(trials * (log1m_q if log1m_q <= 0.0 else math.log1p(-q)))
        cdf = pmf
        u = uniform(state)
        k = 0.0
        while u > cdf and k < trials:
            pmf *= ratio * (trials - k) * (_INV[int(k)] if k < 1000.0 else 1.0 / (k + 1.0))
            k += 1.0
            cdf += pmf
        x = k
    else:
        sd = math.sqrt(trials * q * (1.0 - q))
        x = math.floor(trials * q + sd * normal(state) + 0.5)
        x = min(max(x, 0.0), trials)
    return trials - x if flip else x
