"""Summaries across replicates (needsled.stats.summarise) against NumPy's own."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.typing import NDArray

from needsled import stats

SPECIALS = np.array([np.inf, -np.inf, 0.0, -0.0, np.nan, 1e-45, -3.5, 7.0], np.float32)


def _bits_alike(a: NDArray[np.float64], b: NDArray[np.float64]) -> bool:
    """Equal to the bit, signed zeros included; NaN equal to NaN whatever its sign."""
    nan = np.isnan(a)
    return bool(
        np.array_equal(nan, np.isnan(b))
        and np.array_equal(a[~nan].view(np.uint64), b[~nan].view(np.uint64))
    )


def test_many_replicates_give_numpys_mean_and_percentiles() -> None:
    rng = np.random.default_rng(1)
    x = rng.gamma(2.0, 3.0, size=(200, 7, 5)).astype(np.float32)
    got = stats.summarise(x)
    np.testing.assert_allclose(got[0], x.mean(0, dtype=np.float64), rtol=1e-12)
    want = np.percentile(x.astype(np.float64), [10, 50, 90], axis=0)
    np.testing.assert_allclose(got[1:], want, rtol=1e-6)
    x[:150, 0, 0] = np.nan  # NaN ignored; a cell all NaN gives NaN
    x[:, 1, 1] = np.nan
    got = stats.summarise(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanpercentile(x.astype(np.float64), [10, 50, 90], axis=0)
        mean = np.nanmean(x.astype(np.float64), axis=0)
    np.testing.assert_allclose(got[1:], want, rtol=1e-6)
    np.testing.assert_allclose(got[0], mean, rtol=1e-12)
    assert np.isnan(got[:, 1, 1]).all()


@pytest.mark.parametrize("with_nan", [False, True])
def test_one_replicate_gives_what_sorting_would_to_the_bit(with_nan: bool) -> None:
    """One replicate (a preview) takes a short way; it must give what the general way would
    give, to the bit (signed zeros too: a figure's sign could show in a table), for values
    with infinities, zeros of either sign, subnormals and (in one case) NaN."""
    rng = np.random.default_rng(2)
    specials = SPECIALS if with_nan else SPECIALS[~np.isnan(SPECIALS)]
    for _ in range(200):
        n = int(rng.integers(1, 40))
        v = rng.normal(size=n).astype(np.float32)
        k = int(rng.integers(0, n + 1))
        v[rng.choice(n, k, replace=False)] = rng.choice(specials, k)
        if with_nan:
            v[rng.integers(0, n)] = np.nan
        flat = v[None]
        if np.isnan(flat).any():  # the general way with NaN: the NaN-aware kernel
            want = stats._kernel(flat.T.copy())
        else:  # and without: NumPy's mean and partition-based percentiles
            want = np.empty((4, n))
            want[0] = flat.mean(axis=0, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                want[1:] = np.percentile(flat, [10.0, 50.0, 90.0], axis=0)
        assert _bits_alike(stats.summarise(flat), want), v
