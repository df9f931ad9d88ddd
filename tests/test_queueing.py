"""Tests for needsled.queueing.

Published values for the NHS-R rules of thumb come from the NHS-R Community R package's
own testthat suites (repository nhs-r-community/NHSRwaitinglist), cited per test. R's
``expect_equal`` uses a relative tolerance of about 1.5e-8 and the R tests quote 7-9
significant figures, so we compare with ``rel=1e-7``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from needsled import queueing as q
from needsled.queueing import (
    erlang_b,
    erlang_c,
    mmc_mean_wait,
    queue_load,
    relief_capacity,
    target_capacity,
    target_mean_wait,
    target_queue_size,
    waiting_list_pressure,
)

REL = 1e-7


def _erlang_b_factorial(c: int, a: float) -> float:
    """Textbook closed form: (a^c / c!) / sum_{k<=c} a^k / k!."""
    terms = [a**k / math.factorial(k) for k in range(c + 1)]
    return terms[-1] / sum(terms)


def _erlang_c_factorial(c: int, a: float) -> float:
    """Textbook closed form: P_c * c/(c-a) / (sum_{k<c} a^k/k! + P_c * c/(c-a))."""
    head = sum(a**k / math.factorial(k) for k in range(c))
    tail = a**c / math.factorial(c) * c / (c - a)
    return tail / (head + tail)


# --- public surface ---------------------------------------------------------------------


def test_public_surface_is_exactly_the_nine_functions() -> None:
    expected = {
        "erlang_b",
        "erlang_c",
        "mmc_mean_wait",
        "queue_load",
        "relief_capacity",
        "target_capacity",
        "target_mean_wait",
        "target_queue_size",
        "waiting_list_pressure",
    }
    public = {n for n in vars(q) if not n.startswith("_") and callable(getattr(q, n))}
    public -= {"annotations", "np", "ArrayLike", "NDArray"}
    assert public == expected
    assert set(q.__all__) == expected


# --- NHS-R published values -------------------------------------------------------------


def test_queue_load_nhsr_published() -> None:
    # nhs-r-community/NHSRwaitinglist tests/testthat/test-calc_queue_load.R
    assert queue_load(30, 27) == pytest.approx(30 / 27, rel=REL)
    assert queue_load(30, 27) == pytest.approx(1.11111111, rel=REL)
    got = queue_load([35, 30, 52], [27, 25, 42])
    np.testing.assert_allclose(got, [1.2962963, 1.2, 1.23809524], rtol=REL)


def test_target_mean_wait_nhsr_published() -> None:
    # nhs-r-community/NHSRwaitinglist tests/testthat/test-calc_target_mean_wait.R
    assert target_mean_wait(52, 4) == pytest.approx(13.0, rel=REL)
    assert target_mean_wait(52) == pytest.approx(13.0, rel=REL)  # default factor = 4
    got = target_mean_wait([35, 30, 52], [4, 4, 6])
    np.testing.assert_allclose(got, [8.75, 7.5, 8.6666667], rtol=REL)


def test_target_queue_size_nhsr_published() -> None:
    # nhs-r-community/NHSRwaitinglist tests/testthat/test-calc_target_queue_size.R
    assert target_queue_size(30, 52) == pytest.approx(390.0, rel=REL)
    assert target_queue_size(30, 50) == pytest.approx(375.0, rel=REL)
    assert target_queue_size(30, 50, 6) == pytest.approx(250.0, rel=REL)
    got = target_queue_size([30, 30, 30], [52, 50, 50], [4, 4, 6])
    np.testing.assert_allclose(got, [390, 375, 250], rtol=REL)


def test_relief_capacity_nhsr_published() -> None:
    # nhs-r-community/NHSRwaitinglist tests/testthat/test-calc_relief_capacity.R
    # (also the roxygen example in R/calc_relief_capacity.R: 61.15 patients per week)
    assert relief_capacity(30, 1200, 390, 26) == pytest.approx(30 + (1200 - 390) / 26, rel=REL)
    assert relief_capacity(30, 1200, 390, 26) == pytest.approx(61.153846, rel=REL)
    assert relief_capacity(30, 1200, 390) == pytest.approx(61.153846, rel=REL)  # default 26
    got = relief_capacity([30, 33, 35], [1200, 800, 250], [390, 200, 100], [26, 30, 15])
    np.testing.assert_allclose(got, [61.153846, 53, 45], rtol=REL)


def test_relief_capacity_is_not_clipped_below_demand() -> None:
    # Same as the R code: a queue under target gives capacity below demand.
    assert relief_capacity(30, 100, 390, 26) < 30


def test_target_capacity_nhsr_published() -> None:
    # nhs-r-community/NHSRwaitinglist tests/testthat/test-calc_target_capacity.R
    assert target_capacity(30, 52, 3, 1.1, 1.2) == pytest.approx(
        30 + ((1.1**2 + 1.2**2) / 2) * (3 / 52), rel=REL
    )
    assert target_capacity(30, 52, 3, 1.1, 1.2) == pytest.approx(30.076442, rel=REL)
    # Vector case from the same file; commented out there only because a later
    # `num_referrals` branch broke vectorisation in R. Values are consistent with the /2.
    got = target_capacity([30, 42, 35], [52, 65, 50], [3, 2, 1], [1.1, 1.2, 1.3], [1.4, 1.5, 1.6])
    np.testing.assert_allclose(got, [30.0914423, 42.0567692, 35.0425], rtol=REL)


def test_target_capacity_defaults_include_kingman_half() -> None:
    # Defaults factor=4, cv=1,1: demand + ((1+1)/2) * 4/52. Without the /2 it would be 8/52.
    assert target_capacity(4, 52) == pytest.approx(4 + 4 / 52, rel=1e-12)


def test_waiting_list_pressure_nhsr_published() -> None:
    # nhs-r-community/NHSRwaitinglist tests/testthat/test-calc_waiting_list_pressure.R
    assert waiting_list_pressure(63, 52) == pytest.approx(2 * 63 / 52, rel=REL)
    assert waiting_list_pressure(63, 52) == pytest.approx(2.42307692, rel=REL)
    got = waiting_list_pressure([63, 42, 55], [52, 24, 50])
    np.testing.assert_allclose(got, [2.42307692, 3.5, 2.2], rtol=REL)


# --- Erlang B / C -----------------------------------------------------------------------


def test_erlang_b_table_values() -> None:
    # Classic Erlang B table: 10 circuits carry 4.46 E at 1% and 5.08 E at 2% blocking.
    assert erlang_b(10, 4.46) == pytest.approx(0.01, abs=5e-5)
    assert erlang_b(10, 5.08) == pytest.approx(0.02, abs=1e-4)
    # Computed to 4 s.f. from the closed form: B(10, 5) = 0.01838.
    assert erlang_b(10, 5) == pytest.approx(0.01838457, rel=1e-6)
    # By hand: B(3, 2) = (8/6) / (1 + 2 + 2 + 8/6) = 4/19.
    assert erlang_b(3, 2) == pytest.approx(4 / 19, rel=1e-12)


def test_erlang_c_table_values() -> None:
    # By hand: C(3, 2) = 4 / (1 + 2 + 2 + 4) = 4/9; C(2, 1) = 1/3; C(1, a) = a.
    assert erlang_c(3, 2) == pytest.approx(4 / 9, rel=1e-12)
    assert erlang_c(2, 1) == pytest.approx(1 / 3, rel=1e-12)
    assert erlang_c(1, 0.7) == pytest.approx(0.7, rel=1e-12)
    # Computed from the closed form: C(10, 8) = 0.4092, C(10, 5) = 0.03611.
    assert erlang_c(10, 8) == pytest.approx(0.40918015, rel=1e-6)
    assert erlang_c(10, 5) == pytest.approx(0.03610536, rel=1e-6)


@pytest.mark.parametrize("c", [1, 2, 3, 5, 8, 13, 20, 40])
@pytest.mark.parametrize("a", [0.1, 0.9, 2.5, 7.0, 12.0, 30.0])
def test_erlang_b_and_c_match_factorial_closed_form(c: int, a: float) -> None:
    assert erlang_b(c, a) == pytest.approx(_erlang_b_factorial(c, a), rel=1e-10)
    expected_c = 1.0 if a >= c else _erlang_c_factorial(c, a)
    assert erlang_c(c, a) == pytest.approx(expected_c, rel=1e-10)


def test_erlang_b_large_servers_stable_and_matches_poisson_ratio() -> None:
    # B(c, a) = Poisson pmf(c; a) / Poisson cdf(c; a): independent of the recursion.
    c = np.array([500, 2000, 2000, 5000])
    a = np.array([480.0, 1950.0, 2100.0, 4900.0])
    got = erlang_b(c, a)
    expected = stats.poisson.pmf(c, a) / stats.poisson.cdf(c, a)
    assert np.all(np.isfinite(got))
    assert np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    cc = erlang_c(2000, 1950)
    assert np.isfinite(cc)
    assert 0 < cc < 1
    assert cc == pytest.approx(0.178675068, rel=1e-6)


def test_erlang_edge_cases() -> None:
    assert erlang_b(0, 3.0) == 1.0  # no servers: everything blocked
    assert erlang_b(0, 0.0) == 1.0
    assert erlang_b(5, 0.0) == 0.0  # no traffic: nothing blocked
    assert erlang_c(5, 0.0) == 0.0
    assert erlang_c(5, 5.0) == 1.0  # saturated
    assert erlang_c(5, 9.0) == 1.0
    assert erlang_c(0, 0.0) == 1.0
    assert erlang_b(4.0, 2.0) == pytest.approx(_erlang_b_factorial(4, 2.0))  # integral float


def test_erlang_broadcasting_shapes() -> None:
    servers = np.arange(1, 5)[:, None]
    loads = np.array([0.5, 1.0, 2.0])
    b = erlang_b(servers, loads)
    c = erlang_c(servers, loads)
    assert b.shape == (4, 3)
    assert c.shape == (4, 3)
    assert b.dtype == np.float64
    assert b[2, 2] == pytest.approx(4 / 19)  # c=3, a=2
    assert c[2, 2] == pytest.approx(4 / 9)
    assert np.all(c[0, 1:] == 1.0)  # c=1 with a >= 1
    assert erlang_b([], []).shape == (0,)


@given(
    c=st.integers(min_value=0, max_value=150),
    a=st.floats(min_value=0.0, max_value=200.0, allow_nan=False, allow_infinity=False),
)
def test_erlang_properties(c: int, a: float) -> None:
    b, cc = float(erlang_b(c, a)), float(erlang_c(c, a))
    assert 0.0 <= b <= 1.0
    assert 0.0 <= cc <= 1.0
    assert cc >= b * (1 - 1e-12)
    assert float(erlang_c(c + 1, a)) <= cc * (1 + 1e-12)
    assert float(erlang_b(c + 1, a)) <= b * (1 + 1e-12)


# --- M/M/c mean wait --------------------------------------------------------------------


@pytest.mark.parametrize(("lam", "mu"), [(0.5, 1.0), (3.0, 4.0), (9.0, 10.0), (0.1, 2.0)])
def test_mm1_matches_closed_form(lam: float, mu: float) -> None:
    rho = lam / mu
    assert mmc_mean_wait(lam, mu, 1) == pytest.approx(rho / (mu - lam), rel=1e-12)


@pytest.mark.parametrize(("lam", "mu"), [(1.0, 1.0), (3.0, 2.0), (1.9, 1.0), (0.2, 5.0)])
def test_mm2_matches_closed_form(lam: float, mu: float) -> None:
    # M/M/2 by hand: rho = lam/(2 mu), Lq = 2 rho^3 / (1 - rho^2), Wq = Lq / lam.
    rho = lam / (2 * mu)
    assert mmc_mean_wait(lam, mu, 2) == pytest.approx(2 * rho**3 / (1 - rho**2) / lam, rel=1e-12)
    assert erlang_c(2, lam / mu) == pytest.approx(2 * rho**2 / (1 + rho), rel=1e-12)


def test_mmc_mean_wait_inf_when_overloaded() -> None:
    got = mmc_mean_wait([5.0, 6.0, 7.0, 4.0], 1.0, 5)
    assert np.isinf(got[0])  # rho = 1
    assert np.isinf(got[1])
    assert np.isinf(got[2])
    assert np.isfinite(got[3])
    assert np.isinf(mmc_mean_wait(1.0, 1.0, 0))  # no servers
    assert mmc_mean_wait(0.0, 1.0, 3) == 0.0  # no arrivals


def test_mmc_mean_wait_broadcasts_and_units() -> None:
    # 40 referrals/week, each worker closes 5/week: 9..12 workers.
    workers = np.array([9, 10, 11, 12])
    wq = mmc_mean_wait(40.0, 5.0, workers)
    assert wq.shape == (4,)
    assert np.all(np.diff(wq) < 0)  # more workers, shorter wait
    assert wq[1] == pytest.approx(float(erlang_c(10, 8)) / (50 - 40), rel=1e-12)
    grid = mmc_mean_wait(np.array([[30.0], [40.0]]), 5.0, workers)
    assert grid.shape == (2, 4)
    # Rescaling time (weeks -> days) rescales the wait and nothing else.
    assert mmc_mean_wait(40 / 7, 5 / 7, 10) == pytest.approx(7 * wq[1], rel=1e-12)


def test_mmc_large_system_finite() -> None:
    wq = mmc_mean_wait(1950.0, 1.0, 2000)
    assert np.isfinite(wq)
    assert wq == pytest.approx(float(erlang_c(2000, 1950)) / 50, rel=1e-12)


# --- vectorisation and validation -------------------------------------------------------


def test_scalar_in_gives_float64_out() -> None:
    out = queue_load(30, 27)
    assert isinstance(out, np.ndarray)
    assert out.shape == ()
    assert out.dtype == np.float64
    assert float(mmc_mean_wait(0.5, 1.0, 1)) == pytest.approx(1.0)


def test_nhsr_functions_broadcast() -> None:
    demand = np.array([[10.0], [20.0]])
    got = target_queue_size(demand, np.array([18.0, 52.0]))
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got, [[45.0, 130.0], [90.0, 260.0]])


@pytest.mark.parametrize(
    ("call", "argname"),
    [
        (lambda: queue_load(-1, 27), "demand"),
        (lambda: queue_load(30, 0), "capacity"),
        (lambda: queue_load(30, [27, np.nan]), "capacity"),
        (lambda: target_mean_wait(np.nan), "target_wait"),
        (lambda: target_mean_wait(52, 0), "factor"),
        (lambda: target_queue_size(30, -52), "target_wait"),
        (lambda: relief_capacity(30, -1, 390), "queue_size"),
        (lambda: relief_capacity(30, 1200, 390, 0), "time_to_target"),
        (lambda: target_capacity(30, 0), "target_wait"),
        (lambda: target_capacity(30, 52, cv_demand=-0.5), "cv_demand"),
        (lambda: waiting_list_pressure(np.inf, 52), "mean_wait"),
        (lambda: erlang_b(-1, 2.0), "servers"),
        (lambda: erlang_b(2.5, 2.0), "servers"),
        (lambda: erlang_c(3, np.nan), "offered_load"),
        (lambda: mmc_mean_wait(1.0, 0.0, 2), "service_rate"),
        (lambda: mmc_mean_wait(-1.0, 1.0, 2), "arrival_rate"),
        (lambda: mmc_mean_wait(1.0, 1.0, np.nan), "servers"),
        (lambda: queue_load("thirty", 27), "demand"),
    ],
)
def test_invalid_inputs_raise_clear_value_error(call: object, argname: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=f"`{argname}`") as info:
        call()
    message = str(info.value)
    assert "must be" in message
    assert "()" in message  # names the function that rejected it
