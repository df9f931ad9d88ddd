"""Summaries across Monte Carlo replicates: mean and the 10th, 50th and 90th percentiles."""

from __future__ import annotations

import numba as nb
import numpy as np
from numpy.typing import NDArray

from needsled._parallel import launch_guard

__all__ = ["QUANTILES", "summarise"]

QUANTILES = (0.1, 0.5, 0.9)


def summarise(x: NDArray[np.float32] | NDArray[np.float64]) -> NDArray[np.float64]:
    """Mean, p10, p50, p90 over the first axis, ignoring NaN; shape (4, *x.shape[1:]).

    Percentiles interpolate linearly between order statistics (NumPy's default "linear"
    method), so they match ``numpy.nanpercentile``. A cell whose replicates are all NaN
    gives NaN.
    """
    flat = np.ascontiguousarray(x.reshape(x.shape[0], -1), dtype=np.float32)
    if flat.shape[0] == 1:  # one replicate (a preview): each figure is its value
        return _one(flat[0]).reshape((4, *x.shape[1:]))
    if not np.isnan(flat).any():  # NumPy's partition-based percentiles are fastest here
        out = np.empty((4, flat.shape[1]))
        out[0] = flat.mean(axis=0, dtype=np.float64)
        out[1:] = np.percentile(flat, [10.0, 50.0, 90.0], axis=0)
    else:
        with launch_guard():  # the kernel runs without the interpreter lock
            out = _kernel(flat.T.copy())
    return out.reshape((4, *x.shape[1:]))


def _one(v32: NDArray[np.float32]) -> NDArray[np.float64]:
    """:func:`summarise` of one replicate without sorting, to the bit what its two ways give
    (signed zeros included): the mean is the value; each percentile is the value too, but NaN
    for an infinite one (the interpolation takes inf - inf), and with NaN in any cell (the
    NaN-aware kernel) a negative zero comes out positive, as ``v + 0 * 0`` does."""
    v = v32.astype(np.float64)
    out = np.empty((4, v.size))
    with np.errstate(invalid="ignore"):
        out[0] = v + 0.0
        if np.isnan(v).any():
            out[1:] = v + (v - v) * 0.0
        else:
            out[1:] = np.where(np.isinf(v), np.nan, v)
    return out


@nb.njit(cache=True, parallel=True, nogil=True)
def _kernel(cells: NDArray[np.float32]) -> NDArray[np.float64]:
    n_cells, n_rep = cells.shape
    out = np.full((4, n_cells), np.nan)
    for i in nb.prange(n_cells):
        col = cells[i]
        vals = np.empty(n_rep)
        n = 0
        total = 0.0
        for j in range(n_rep):
            v = col[j]
            if v == v:
                vals[n] = v
                total += v
                n += 1
        if n == 0:
            continue
        vals = np.sort(vals[:n])
        out[0, i] = total / n
        for q in range(3):
            pos = (0.1, 0.5, 0.9)[q] * (n - 1)
            lo = int(np.floor(pos))
            hi = min(lo + 1, n - 1)
            out[q + 1, i] = vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)
    return out
