"""Calibration of analysis.statistics on simulated series with known truth: a light version of
benchmarks/calibration.py (a few hundred to a thousand series per cell, a few seconds).

Tolerances are about 3.5 Monte Carlo standard errors around the nominal rate (the figures are
seeded, so a pass is reproducible); each still fails the method used before issue 20, whose
figures at these cells were 88-89 % coverage, 82-89 % with positive autocorrelation, and 10.5 %
false rejection at 22 sessions.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.statistics import (
    cumulative_bounds,
    ewc_degrees,
    metric_intervals,
    paired_p_values,
    pairwise_tests,
    sharpe_bounds,
)

MU, SIGMA = 0.0005, 0.012


def ar1(rng: np.random.Generator, rho: float, series: int, n: int) -> np.ndarray:
    """``(series, n)`` stationary Gaussian AR(1) shocks with unit marginal variance."""
    z = rng.standard_normal((series, n))
    x = np.empty_like(z)
    x[:, 0] = z[:, 0]
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + math.sqrt(1.0 - rho**2) * z[:, t]
    return x


def coverage(bounds: tuple[np.ndarray, np.ndarray], truth: float) -> float:
    low, high = bounds
    return float(np.mean((low <= truth) & (truth <= high)))


def values(returns: np.ndarray) -> pd.Series:
    dates = pd.bdate_range("2025-01-02", periods=len(returns) + 1)
    return pd.Series(10_000 * np.cumprod(np.r_[1.0, 1.0 + returns]), index=dates)


def test_a_months_intervals_cover_the_truth_95_percent_of_the_time() -> None:
    """1,000 iid normal series of 22 sessions (s.e. 0.7 points): cumulative return and Sharpe."""
    rng = np.random.default_rng(20)
    r = rng.normal(MU, SIGMA, (1000, 22))
    assert 0.925 <= coverage(cumulative_bounds(r), (1 + MU) ** 22 - 1) <= 0.975
    assert 0.925 <= coverage(sharpe_bounds(r), MU / SIGMA * math.sqrt(252)) <= 0.975


def test_a_high_sharpe_ratio_interval_errs_on_the_wide_side_at_most_a_little() -> None:
    """A Sharpe of 4.8 a year (0.3 % a day at 1 %), like the best of the original's October run:
    the SR^2 / 2 term, estimated from one month, widens the interval a little (about 96.8 %)."""
    rng = np.random.default_rng(23)
    r = rng.normal(0.003, 0.01, (1000, 22))
    assert 0.93 <= coverage(sharpe_bounds(r), 0.3 * math.sqrt(252)) <= 0.985


def test_positive_autocorrelation_keeps_coverage_from_60_sessions() -> None:
    """AR(1), rho = +0.3, 1,000 series of 60 sessions: the truth is E[prod(1 + r)] - 1, whose
    gap to (1 + mu)^n - 1 (the autocovariances, ~0.4 points) is 2 % of the interval's width."""
    rng = np.random.default_rng(21)
    r = MU + SIGMA * ar1(rng, 0.3, 1000, 60)
    truth = float(np.mean(np.prod(1 + MU + SIGMA * ar1(rng, 0.3, 100_000, 60), axis=1))) - 1
    assert 0.925 <= coverage(cumulative_bounds(r), truth) <= 0.975
    assert 0.925 <= coverage(sharpe_bounds(r), MU / SIGMA * math.sqrt(252)) <= 0.975


@pytest.mark.parametrize("n", [22, 60, 250])
def test_the_paired_test_rejects_a_true_null_at_most_about_5_percent(n: int) -> None:
    """2,000 pairs on a common market factor with unequal loadings (s.e. 0.5 points)."""
    rng = np.random.default_rng(n)
    market = rng.normal(0.0, 0.01, (2000, n))
    a = MU + 0.8 * market + rng.normal(0.0, 0.008, (2000, n))
    b = MU + 1.1 * market + rng.normal(0.0, 0.008, (2000, n))
    assert np.mean(paired_p_values(a - b) <= 0.05) <= 0.065
    # And it still finds an edge four standard errors wide (sd of a - b: 1.17 % a day) most of
    # the time; fewer degrees of freedom (4 at 22 sessions) cost power on short windows.
    edge = 4 * 0.0117 / math.sqrt(n)
    assert np.mean(paired_p_values(a - b + edge) <= 0.05) > {22: 0.6, 60: 0.8, 250: 0.9}[n]


def test_the_vectorised_bounds_are_what_the_public_functions_return() -> None:
    rng = np.random.default_rng(22)
    r = rng.normal(MU, SIGMA, (5, 60))
    cumulative, sharpe = cumulative_bounds(r), sharpe_bounds(r)
    for i in range(5):
        intervals = metric_intervals(values(r[i]), resamples=100)
        assert intervals["cumulative_return"].lower == pytest.approx(cumulative[0][i], rel=1e-9)
        assert intervals["cumulative_return"].upper == pytest.approx(cumulative[1][i], rel=1e-9)
        assert intervals["sharpe_ratio"].lower == pytest.approx(sharpe[0][i], rel=1e-9)
        assert intervals["sharpe_ratio"].upper == pytest.approx(sharpe[1][i], rel=1e-9)
        assert intervals["sharpe_ratio"].degrees_of_freedom == ewc_degrees(60) == 7
    (pair,) = pairwise_tests({"a": values(r[0]), "b": values(r[1])})
    expected = paired_p_values((values(r[0]).pct_change() - values(r[1]).pct_change()).dropna())
    assert pair.p_value_raw == pytest.approx(float(expected[0]), rel=1e-9)
    assert pair.degrees_of_freedom == 7
