"""Uncertainty for the leaderboard: calibrated intervals, the PSR, paired tests, tiers (pure).

Everything here is a pure function of numpy arrays and pandas series (no store, no Prefect).
Value series follow the conventions of :mod:`analysis.metrics` (one value per trading day, dates
normalised, strictly positive; its validation is reused), and every metric is defined as there:
daily simple returns ``r_t = V_t / V_{t-1} - 1``, ``P = 252`` periods a year, sample std
(``ddof=1``), an annual risk-free rate ``rf`` taken as ``rf / P`` per period. Point estimates come
from the same vectorised code as the resampled metrics (:func:`path_metrics`), which the tests hold
equal to :mod:`analysis.metrics` to 1e-12.

**Intervals** (:func:`metric_intervals`), chosen by measurement (``benchmarks/calibration.py``,
issue 20): 95 % intervals that cover 93-97 % of the time at 22, 60 and 250 sessions for iid
normal, Student-t(4) and GARCH(1,1) returns and for AR(1) with rho = +-0.3, where the percentile
stationary bootstrap used before covered 82-91 % at 22 sessions and 87-94 % at 60.

* *The return metrics and Sharpe* get Student-t intervals on a long-run variance: the *EWC*
  (equal-weighted cosine) estimator of Lazarus, Lewis, Stock & Watson (2018, "HAR inference:
  recommendations for practice", JBES 36(4):541-559), ``LRV = (1/B) sum_{j=1..B} L_j^2`` with
  ``L_j = sqrt(2/n) sum_t cos(pi j (t - 1/2) / n) x_t`` and ``B = ceil(0.4 n^(2/3))`` (4 at 22
  sessions, 7 at 60, 16 at 250). Under fixed-b asymptotics ``sqrt(n) (mean - mu) / sqrt(LRV)`` is
  Student-t with ``B`` degrees of freedom (exactly so for iid normal returns), so the interval
  ``mean +- t_B sqrt(LRV / n)`` accounts both for serial dependence and for how little a month
  says about it. The mean daily return gets that interval; the cumulative return's is the mean's
  compounded, ``(1 + bound)^n - 1``: an interval of the *expected* cumulative return over the
  window, ``(1 + mu)^n - 1``; the annualised return's is that compounded to a year; the Sharpe
  ratio's has the variance ``(LRV(z) + SR^2 / 2) / n`` with ``z_t = (r_t - mean) / std`` (Lo's
  2002 formula for normal returns with the long-run variance in place of 1; the delta method's
  sample skewness term made it cover 94 % under Student-t(4)); the excess return over the benchmark
  is ``(1 + mu_p)^n - (1 + mu_b)^n`` by the delta method on the two series' common sessions. The
  point estimates stay the realised figures of :mod:`analysis.metrics`.
* *Sortino and max drawdown* (no claim of calibration: nothing above applies to a ratio to the
  downside or to a path's worst fall) keep the percentile stationary bootstrap of Politis &
  Romano (1994): a resample is a concatenation of blocks of consecutive sessions (wrapping around
  the end) whose starts are uniform and whose lengths are geometric with mean ``b``; each resample
  is turned back into a path (``V*_t = V_0 * prod(1 + r*)``) and the metric recomputed on it,
  vectorised over the resamples (:func:`path_metrics`). The interval is the ``(1 - confidence) /
  2`` and ``(1 + confidence) / 2`` empirical quantiles (order statistics, no interpolation, so an
  infinite resample cannot smear into a bound). A resample where a metric is undefined (NaN) is
  left out; a Sortino resample with no downside and a positive mean counts as +inf.

A bound that is not finite, or any bound of a metric whose point estimate is undefined, is None;
fewer than 2 returns give no bounds.

**Block length rule.** ``b`` is the automatic block length of Politis & White (2004, "Automatic
block-length selection for the dependent bootstrap", Econometric Reviews 23(1):53-70) for the
stationary bootstrap, with the correction of Patton, Politis & White (2009, Econometric Reviews
28(4):372-375: ``D_SB = 2 * g(0)^2``)::

    b = (2 G^2 / D_SB)^(1/3) * n^(1/3),   G = sum_{|k|<=M} h(k/M) |k| R(k),
    D_SB = 2 (sum_{|k|<=M} h(k/M) R(k))^2,  h(x) = min(1, 2 (1 - |x|))  (flat-top kernel),

with ``R(k)`` the sample autocovariances (divisor n) and ``M = min(2 * max(m_hat, 1), m_max)``,
where ``m_hat`` is the first lag ``m`` at which the ``K_n = max(5, floor(log10 n))`` absolute
autocorrelations of lags ``m .. m + K_n - 1`` all lie inside ``2 sqrt(log10(n) / n)``, and
``m_max = ceil(sqrt n) + K_n`` (also ``M`` when no such ``m`` exists). The estimate is capped at
``ceil(min(3 sqrt n, n / 3))`` as in Patton's reference code, and floored at 1 (a mean block
shorter than one session is the iid bootstrap). :func:`optimal_block_length` reproduces
``arch.bootstrap.optimal_block_length`` (arch 8, its column ``stationary``) number for number, and
the tests check that it does. Series shorter than 10 returns get ``b = 1``: the rule needs more
lags than they have.

**Why the resampling is written here rather than taken from arch.** ``arch.bootstrap`` has the same
stationary bootstrap (``StationaryBootstrap``) and block-length rule and installs beside the pinned
set, but (1) it yields one resample per Python-level iteration: the all-bootstrap workload used
before issue 20 (10 models x 2,000 resamples for the metrics, as many for the excess return, 45
pairs x 2,000) is 130,000 iterations, which ``benchmarks/ranking_statistics.py`` measured at
2.8-3.5 s of CPU with the metrics computed by numpy in the loop (over the 2 s budget), 3-5x the
vectorised code here; and (2) importing ``arch.bootstrap``
imports ``arch.univariate``, statsmodels, scipy.stats and matplotlib, 3 s or more of start-up on
this machine for every leaderboard call. Here all resamples of a series are drawn as one
``(resamples, n)`` index matrix. The sampler is arch's algorithm (a new block starts where a
uniform draw is ``<= 1/b``, else the previous index + 1, wrapping), and the tests feed both the
same draws and check the indices are identical. arch is a development dependency only: the test
oracle and the benchmark's baseline.

**Probabilistic Sharpe ratio** (:func:`probabilistic_sharpe`), Bailey & López de Prado (2012,
"The Sharpe ratio efficient frontier", Journal of Risk 15(2)): the probability that the true
Sharpe exceeds a benchmark Sharpe ``SR*`` given the sample's length, skewness and kurtosis::

    PSR = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )

with ``SR`` the per-period Sharpe of :func:`analysis.metrics.sharpe_ratio` (not annualised),
``g3`` the sample skewness and ``g4`` the sample (non-excess) kurtosis, both moment estimators.

**Paired tests between models** (:func:`pairwise_tests`). For two models over their common
sessions, ``d_t = r_a,t - r_b,t``; the null is equal mean daily returns, ``E[d] = 0``, and the
test is the EWC t-test: ``t = mean(d) / sqrt(LRV(d) / n)`` against Student's t with ``B``
degrees of freedom, two-sided (1 exactly when the returns are identical). It rejects a true null
at most 5.7 % of the time at 5 % in every cell of the calibration benchmark, where the centred
stationary-bootstrap p-value used before rejected 9-18 % at 22 sessions; the price is power at
long windows (against 0.1 % a day at 250 sessions: 23 % instead of 28 % with iid returns). A sign
flip or permutation test was not taken: it assumes no serial dependence. Nothing is drawn, so the
result does not depend on ``seed``, on the other models or on their order. Holm's (1979)
step-down correction (:func:`holm`) adjusts the p-values over all pairs, controlling the
family-wise error rate; a pair is significant when its adjusted p-value is ``<= 1 - confidence``.

**Tiers** (:func:`tiers`), from the caller's ranking (best first) and the adjusted tests: tier 1 is
the best model and every model *not* significantly different from it; tier 2 is the best model not
yet placed and every unplaced model not significantly different from *it*; and so on until every
model is placed. A pair that was not tested (no common sessions, or missing from ``pairs``) counts
as "cannot be told apart". Membership is decided only against each tier's leader, so a model can
sit in a better tier than one ranked above it (when it is indistinguishable from a leader that
model is distinguishable from); tiers are numbered 1, 2, ... without gaps.

**Across trials** (:func:`trial_interval`): when a run repeats a model several times, the Student-t
interval of the mean of a metric over the trials, ``mean +- t_{k-1} s / sqrt(k)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import combinations
from statistics import NormalDist
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from analysis.metrics import (
    TRADING_DAYS_PER_YEAR,
    ZERO_DISPERSION,
    _clean,  # the metrics' own validation: the same series are accepted and rejected
    sharpe_ratio,
)

PATH_METRICS = (
    "cumulative_return",
    "annualized_return",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "mean_return",
)
"""The metrics of one value series, as :func:`path_metrics` computes them."""
METRICS = (*PATH_METRICS, "excess_return")
"""The metrics :func:`metric_intervals` returns (``excess_return`` only with a benchmark)."""

MIN_RETURNS_FOR_RULE = 10
"""Below this many returns the block-length rule is not applied and ``b = 1``."""


class Interval(BaseModel):
    """A point estimate and its interval; bounds None when undefined or not finite."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    estimate: float | None
    lower: float | None
    upper: float | None
    confidence: float
    method: Literal["stationary-bootstrap", "student-t", "ewc-t"]
    samples: int
    """Bootstrap resamples for ``stationary-bootstrap``, trials for ``student-t``, daily returns
    for ``ewc-t``."""
    block_length: float | None = None
    """The mean block length ``b`` of the stationary bootstrap (None otherwise)."""
    degrees_of_freedom: int | None = None
    """The Student-t degrees of freedom ``B`` of an ``ewc-t`` interval (None otherwise)."""


class PairTest(BaseModel):
    """A paired test (EWC t-test) of equal mean daily return between two models."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    model_a: str
    model_b: str
    sessions: int
    """Number of daily returns over the two models' common dates."""
    block_length: float
    """Politis-White block length of the differences: how far their dependence reaches (shown
    for information; the test's reference distribution is ``degrees_of_freedom``)."""
    mean_difference: float
    """``mean(r_a - r_b)`` over the common sessions (0.0 with none)."""
    p_value_raw: float
    p_value: float
    """Holm-adjusted over every pair of the call."""
    significant: bool
    degrees_of_freedom: int | None = None
    """``B`` of the t-test (None when untested)."""


class ModelStatistics(BaseModel):
    """One model's intervals and probabilistic Sharpe ratios."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    intervals: dict[str, Interval]
    psr: float | None
    """P(true Sharpe > 0)."""
    psr_vs_benchmark: float | None
    """P(true Sharpe > the benchmark's Sharpe); None without a benchmark or its Sharpe."""


class RankingStatistics(BaseModel):
    """Every model's statistics, every pairwise test, and the tiers."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    models: dict[str, ModelStatistics]
    pairs: list[PairTest]
    tiers: dict[str, int]


# --------------------------------------------------------------------------------------------------
# Helpers


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def _check_resamples(resamples: int) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise ValueError(f"resamples must be a positive integer, got {resamples!r}")


def _finite(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def _returns(values: np.ndarray) -> np.ndarray:
    return values[1:] / values[:-1] - 1.0


def _percentile_bounds(samples: np.ndarray, confidence: float) -> tuple[float | None, float | None]:
    """Lower and upper percentile bounds over the defined (non-NaN) resamples."""
    defined = samples[~np.isnan(samples)]
    if len(defined) == 0:
        return None, None
    tail = (1.0 - confidence) / 2.0
    # Order statistics (inverted_cdf) rather than interpolation: +inf resamples (a Sortino with
    # no downside) then only reach a bound when more than the tail of resamples is infinite.
    low, high = np.quantile(defined, [tail, 1.0 - tail], method="inverted_cdf")
    return _finite(float(low)), _finite(float(high))


# --------------------------------------------------------------------------------------------------
# Block length and resampling


def optimal_block_length(x: np.ndarray | pd.Series | Sequence[float]) -> float:
    """Politis-White (2004, corrected 2009) mean block length for the stationary bootstrap, >= 1.

    Same numbers as ``arch.bootstrap.optimal_block_length(x)["stationary"]``, floored at 1.
    """
    data = np.asarray(x, dtype=float)
    n = len(data)
    if n < MIN_RETURNS_FOR_RULE:
        return 1.0
    eps = data - data.mean()
    b_max = math.ceil(min(3 * math.sqrt(n), n / 3))
    kn = max(5, int(math.log10(n)))
    m_max = math.ceil(math.sqrt(n)) + kn
    critical = 2 * math.sqrt(math.log10(n) / n)
    acv = np.zeros(m_max + 1)
    abs_acorr = np.zeros(m_max + 1)
    first_m: int | None = None
    for i in range(m_max + 1):
        # arch's normalisation, kept so that the two agree exactly.
        v1 = eps[i + 1 :] @ eps[i + 1 :]
        v2 = eps[: -(i + 1)] @ eps[: -(i + 1)]
        cross = eps[i:] @ eps[: n - i]
        acv[i] = cross / n
        abs_acorr[i] = abs(cross) / math.sqrt(v1 * v2) if v1 * v2 > 0 else 0.0
        if first_m is None and i >= kn and np.all(abs_acorr[i - kn : i] < critical):
            first_m = i - kn
    if math.sqrt(acv[0]) <= ZERO_DISPERSION:
        return 1.0  # a constant series (up to rounding): nothing to preserve
    m = min(2 * max(first_m, 1) if first_m is not None else m_max, m_max)
    k = np.arange(1, m + 1)
    weights = np.where(k / m <= 0.5, 1.0, 2.0 * (1.0 - k / m))
    g = float(np.sum(2.0 * weights * k * acv[1 : m + 1]))
    long_run = float(acv[0] + np.sum(2.0 * weights * acv[1 : m + 1]))
    if long_run == 0.0:
        return float(b_max)
    b = ((2.0 * g**2) / (2.0 * long_run**2)) ** (1.0 / 3.0) * n ** (1.0 / 3.0)
    return float(min(max(b, 1.0), b_max))


def indices_from_draws(starts: np.ndarray, uniforms: np.ndarray, block_length: float) -> np.ndarray:
    """Stationary-bootstrap indices from given draws (rows = resamples), as arch's sampler.

    Position 0 and every position whose uniform is ``<= 1/b`` start a block at ``starts``; the
    others continue the previous index + 1, wrapping to 0 after ``n - 1``.
    """
    resamples, n = starts.shape
    # int32 where it fits: half the memory traffic of int64 on these (resamples, n) arrays.
    kind = np.int32 if resamples * n < 2**31 else np.int64
    positions = np.arange(n, dtype=kind)
    new_block = uniforms <= 1.0 / block_length
    new_block[:, 0] = True
    # The position where the current block began, carried forward by a running maximum.
    began = new_block * positions
    np.maximum.accumulate(began, axis=1, out=began)
    row_offsets = np.arange(resamples, dtype=kind)[:, None] * n
    indices = starts.ravel()[began + row_offsets]  # a flat gather: faster than take_along_axis
    indices += positions - began
    # start < n and offset < n: one subtraction wraps (cheaper than a modulo).
    np.subtract(indices, n, out=indices, where=indices >= n)
    return indices


def stationary_indices(
    n: int, resamples: int, block_length: float, rng: np.random.Generator
) -> np.ndarray:
    """A ``(resamples, n)`` matrix of stationary-bootstrap indices with mean block length ``b``."""
    starts = rng.integers(0, n, size=(resamples, n), dtype=np.int32)
    uniforms = rng.random((resamples, n))
    return indices_from_draws(starts, uniforms, block_length)


# --------------------------------------------------------------------------------------------------
# Long-run variance and Student-t intervals (EWC)

EWC_COEFFICIENT = 0.4
"""``B = ceil(0.4 n^(2/3))``: Lazarus, Lewis, Stock & Watson's (2018) rule for the EWC estimator."""


def ewc_degrees(n: int) -> int:
    """The EWC estimator's ``B`` (its t degrees of freedom) for ``n`` returns, within [1, n - 1]."""
    return max(1, min(math.ceil(EWC_COEFFICIENT * n ** (2.0 / 3.0)), n - 1))


@lru_cache(maxsize=64)
def _cosine_basis(n: int, degrees: int) -> np.ndarray:
    """``sqrt(2/n) cos(pi j (t + 1/2) / n)`` for t < n (rows), j = 1..B (columns)."""
    t = (np.arange(n) + 0.5) / n
    basis = math.sqrt(2.0 / n) * np.cos(np.pi * np.outer(t, np.arange(1, degrees + 1)))
    basis.flags.writeable = False  # shared by every caller through the cache
    return basis


def long_run_variance(x: np.ndarray, degrees: int | None = None) -> np.ndarray:
    """EWC long-run variance of each row of ``x`` (time last): the mean of ``B`` squared cosine
    projections; ``B`` defaults to :func:`ewc_degrees`."""
    data = np.asarray(x, dtype=float)
    n = data.shape[-1]
    # The cosines are orthogonal to a constant: no need to remove the mean first.
    projections = data @ _cosine_basis(n, degrees or ewc_degrees(n))
    return np.mean(projections**2, axis=-1)


def _t_quantile(degrees: int, probability: float) -> float:
    # Imported here: scipy.special costs ~0.3 s to import and only the t distribution needs it.
    from scipy.special import stdtrit

    return float(stdtrit(degrees, probability))


def _half_width(x: np.ndarray, confidence: float) -> np.ndarray:
    """``t_B((1 + confidence) / 2) sqrt(LRV / n)`` of each row: the t interval's half-width."""
    n = x.shape[-1]
    degrees = ewc_degrees(n)
    quantile = _t_quantile(degrees, (1.0 + confidence) / 2.0)
    return quantile * np.sqrt(long_run_variance(x, degrees) / n)


def mean_bounds(returns: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """EWC t interval ``mean +- t_B sqrt(LRV / n)`` of the mean of each row of daily returns."""
    r = np.atleast_2d(np.asarray(returns, dtype=float))
    mean, half = r.mean(axis=1), _half_width(r, confidence)
    return mean - half, mean + half


def cumulative_bounds(
    returns: np.ndarray, confidence: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Interval of each row's expected cumulative return ``(1 + mu)^n - 1``: the mean's bounds
    compounded over the row's ``n`` sessions (a mean below -100 % counts as -100 %)."""
    low, high = mean_bounds(returns, confidence)
    n = np.atleast_2d(returns).shape[1]
    return np.maximum(1.0 + low, 0.0) ** n - 1.0, np.maximum(1.0 + high, 0.0) ** n - 1.0


def sharpe_bounds(
    returns: np.ndarray,
    confidence: float = 0.95,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> tuple[np.ndarray, np.ndarray]:
    """EWC t interval of each row's annualised Sharpe ratio (NaN if no dispersion): variance
    ``(LRV(z) + SR^2 / 2) / n``, ``z_t = (r_t - mean) / std``, Lo's (2002) with the LRV for 1."""
    r = np.atleast_2d(np.asarray(returns, dtype=float))
    n = r.shape[1]
    std = r.std(axis=1, ddof=1)
    defined = std > ZERO_DISPERSION
    scale = np.where(defined, std, 1.0)
    sharpe = (r.mean(axis=1) - risk_free_rate / periods_per_year) / scale
    degrees = ewc_degrees(n)
    # The cosines ignore the mean, so the LRV of z is the returns' over the variance. The sample
    # skewness and kurtosis terms of the delta method are left out: over a month they are mostly
    # noise, and with them a Student-t(4) interval covered 94 % instead of 95 %.
    variance = long_run_variance(r, degrees) / scale**2 + sharpe**2 / 2.0
    half = _t_quantile(degrees, (1.0 + confidence) / 2.0) * np.sqrt(variance / n)
    root = math.sqrt(periods_per_year)
    low = np.where(defined, (sharpe - half) * root, np.nan)
    return low, np.where(defined, (sharpe + half) * root, np.nan)


def paired_p_values(differences: np.ndarray) -> np.ndarray:
    """Two-sided p-value of ``mean = 0`` for each row: ``t = mean / sqrt(LRV / n)`` against
    Student's t with ``B`` degrees of freedom (EWC, fixed-b)."""
    from scipy.special import stdtr  # see _t_quantile

    d = np.atleast_2d(np.asarray(differences, dtype=float))
    degrees = ewc_degrees(d.shape[1])
    spread = np.sqrt(long_run_variance(d, degrees) / d.shape[1])
    mean = d.mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(spread > 0.0, np.abs(mean) / spread, np.where(mean != 0.0, np.inf, 0.0))
    return np.minimum(2.0 * stdtr(degrees, -t), 1.0)


# --------------------------------------------------------------------------------------------------
# Metrics on resampled returns


def path_metrics(
    returns: np.ndarray,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> dict[str, np.ndarray]:
    """Every metric of each row of a ``(resamples, n)`` matrix of daily returns, NaN if undefined.

    The definitions of :mod:`analysis.metrics`, on the path ``V_0 * cumprod(1 + r)``.
    """
    n = returns.shape[1]
    growth = np.cumprod(1.0 + returns, axis=1)  # V_t / V_0: the path, rebuilt from the start value
    cumulative = growth[:, -1] - 1.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        annualized = growth[:, -1] ** (periods_per_year / n) - 1.0
    annualized[~np.isfinite(annualized)] = np.nan

    excess = returns - risk_free_rate / periods_per_year
    mean_excess = excess.mean(axis=1)
    std = returns.std(axis=1, ddof=1) if n >= 2 else np.full(len(returns), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = np.where(std > ZERO_DISPERSION, mean_excess / std, np.nan)
        downside = np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2, axis=1))
        # No downside: +inf with a positive mean (the resample is all gain), NaN otherwise.
        sortino = np.where(
            downside > ZERO_DISPERSION,
            mean_excess / downside,
            np.where(mean_excess > 0, np.inf, np.nan),
        )
    root = math.sqrt(periods_per_year)
    # The starting value (growth 1) is a point of the path: the running maximum starts there.
    peaks = np.maximum(np.maximum.accumulate(growth, axis=1), 1.0)
    drawdown = np.minimum((growth / peaks - 1.0).min(axis=1), 0.0)
    return {
        "cumulative_return": cumulative,
        "annualized_return": annualized,
        "sharpe_ratio": sharpe * root,
        "sortino_ratio": sortino * root,
        "max_drawdown": drawdown,
        "mean_return": returns.mean(axis=1),
    }


def _bootstrap_interval(
    estimate: float | None, samples: np.ndarray, confidence: float, block: float | None
) -> Interval:
    """The percentile interval of ``samples`` around ``estimate`` (no bounds without estimate)."""
    lower, upper = _percentile_bounds(samples, confidence) if estimate is not None else (None, None)
    return Interval(
        estimate=_finite(estimate),
        lower=lower,
        upper=upper,
        confidence=confidence,
        method="stationary-bootstrap",
        samples=len(samples),
        block_length=block,
    )


def _ewc_interval(
    estimate: float | None, bounds: tuple[np.ndarray, np.ndarray], confidence: float, n: int
) -> Interval:
    """An ``ewc-t`` interval from the first row of ``bounds`` (no bounds without estimate)."""
    defined = estimate is not None and n >= 2
    return Interval(
        estimate=_finite(estimate),
        lower=_finite(float(bounds[0][0])) if defined else None,
        upper=_finite(float(bounds[1][0])) if defined else None,
        confidence=confidence,
        method="ewc-t",
        samples=n,
        degrees_of_freedom=ewc_degrees(n) if n >= 2 else None,
    )


def _excess_interval(values: pd.Series, benchmark: pd.Series, confidence: float) -> Interval:
    """Cumulative return minus the benchmark's over their common dates: a delta-method EWC t
    interval of ``(1 + mu_p)^n - (1 + mu_b)^n``."""
    bench = _clean(benchmark, "benchmark")
    common = values.index.intersection(bench.index)
    if len(common) < 2:
        return _ewc_interval(None, (np.empty(1), np.empty(1)), confidence, 0)
    rp = _returns(values.loc[common].to_numpy())
    rb = _returns(bench.loc[common].to_numpy())
    n = len(rp)
    estimate = float(np.prod(1.0 + rp) - np.prod(1.0 + rb))
    if n < 2:
        return _ewc_interval(estimate, (np.empty(1), np.empty(1)), confidence, n)
    growth_p, growth_b = (1.0 + rp.mean()) ** (n - 1), (1.0 + rb.mean()) ** (n - 1)
    centre = growth_p * (1.0 + rp.mean()) - growth_b * (1.0 + rb.mean())
    # d/dmu of (1 + mu)^n is n (1 + mu)^(n - 1): each day's influence on the excess.
    half = float(_half_width((n * growth_p * rp - n * growth_b * rb)[None, :], confidence)[0])
    bounds = (np.array([centre - half]), np.array([centre + half]))
    return _ewc_interval(estimate, bounds, confidence, n)


def _point_estimates(
    r: np.ndarray, risk_free_rate: float, periods_per_year: float
) -> dict[str, float | None]:
    """The metrics of the observed returns, by the code that computes the resampled ones."""
    if len(r) == 0:  # a single value: no return, no drawdown
        return {
            name: 0.0 if name in {"cumulative_return", "max_drawdown"} else None
            for name in PATH_METRICS
        }
    observed = path_metrics(r[None, :], risk_free_rate, periods_per_year)
    return {name: _finite(float(column[0])) for name, column in observed.items()}


def metric_intervals(
    values: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> dict[str, Interval]:
    """Intervals of every metric in :data:`METRICS` of ``values``: EWC t intervals for the return
    metrics and Sharpe, stationary-bootstrap percentiles for Sortino and max drawdown.

    ``excess_return`` only with ``benchmark``. Bounds are None with fewer than 2 returns.
    """
    _check_confidence(confidence)
    _check_resamples(resamples)
    clean = _clean(values, "values")
    if clean.empty:
        raise ValueError("values is empty; need at least one portfolio value")
    r = _returns(clean.to_numpy())
    n = len(r)
    estimates = _point_estimates(r, risk_free_rate, periods_per_year)
    rng = np.random.default_rng(seed)
    block = optimal_block_length(r)
    if n >= 2:
        samples = path_metrics(
            r[stationary_indices(n, resamples, block, rng)], risk_free_rate, periods_per_year
        )
    else:
        samples = {name: np.full(resamples, np.nan) for name in estimates}
    intervals = {
        name: _bootstrap_interval(estimates[name], samples[name], confidence, block)
        for name in ("sortino_ratio", "max_drawdown")
    }
    intervals.update(_ewc_intervals(r, estimates, confidence, risk_free_rate, periods_per_year))
    intervals = {name: intervals[name] for name in PATH_METRICS}
    if benchmark is not None:
        intervals["excess_return"] = _excess_interval(clean, benchmark, confidence)
    return intervals


def _ewc_intervals(
    r: np.ndarray,
    estimates: dict[str, float | None],
    confidence: float,
    risk_free_rate: float,
    periods_per_year: float,
) -> dict[str, Interval]:
    """The ``ewc-t`` intervals of the mean, cumulative and annualised return and the Sharpe."""
    n = len(r)
    if n < 2:
        nothing = (np.empty(1), np.empty(1))
        names = ("mean_return", "cumulative_return", "annualized_return", "sharpe_ratio")
        return {name: _ewc_interval(estimates[name], nothing, confidence, n) for name in names}
    cumulative = cumulative_bounds(r[None, :], confidence)
    # Annualising is monotone: the cumulative bounds, compounded to a year.
    annual = tuple((1.0 + bound) ** (periods_per_year / n) - 1.0 for bound in cumulative)
    bounds = {
        "mean_return": mean_bounds(r[None, :], confidence),
        "cumulative_return": cumulative,
        "annualized_return": annual,
        "sharpe_ratio": sharpe_bounds(r[None, :], confidence, risk_free_rate, periods_per_year),
    }
    return {
        name: _ewc_interval(estimates[name], pair, confidence, n) for name, pair in bounds.items()
    }


# --------------------------------------------------------------------------------------------------
# Probabilistic Sharpe ratio


def probabilistic_sharpe(
    returns: np.ndarray | pd.Series | Sequence[float],
    benchmark_sharpe: float = 0.0,
    *,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """P(true Sharpe > ``benchmark_sharpe``) from daily returns (Bailey & López de Prado, 2012).

    ``benchmark_sharpe`` is annualised like :func:`analysis.metrics.sharpe_ratio`; None when the
    returns have fewer than 3 values or no dispersion.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1 or not np.isfinite(r).all():
        raise ValueError("returns must be a one-dimensional array of finite numbers")
    if not math.isfinite(benchmark_sharpe):
        raise ValueError(f"benchmark_sharpe must be finite, got {benchmark_sharpe!r}")
    n = len(r)
    if n < 3 or float(np.std(r, ddof=1)) <= ZERO_DISPERSION:
        return None
    sr = float(np.mean(r - risk_free_rate / periods_per_year) / np.std(r, ddof=1))
    target = benchmark_sharpe / math.sqrt(periods_per_year)  # per period, like sr
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    skew = float(np.mean(centred**3)) / m2**1.5
    kurtosis = float(np.mean(centred**4)) / m2**2
    variance = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr**2
    if variance <= 0.0:
        return None
    return NormalDist().cdf((sr - target) * math.sqrt(n - 1) / math.sqrt(variance))


def model_statistics(
    values: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> ModelStatistics:
    """:func:`metric_intervals` plus the PSR against 0 and against the benchmark's Sharpe.

    The benchmark's Sharpe is taken over the model's window (its first to last date).
    """
    intervals = metric_intervals(
        values,
        benchmark,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        risk_free_rate=risk_free_rate,
        periods_per_year=periods_per_year,
    )
    clean = _clean(values, "values")
    r = _returns(clean.to_numpy())
    settings = {"risk_free_rate": risk_free_rate, "periods_per_year": periods_per_year}
    psr = probabilistic_sharpe(r, 0.0, **settings)
    psr_bench = None
    if benchmark is not None:
        bench = _clean(benchmark, "benchmark")
        window = bench[(bench.index >= clean.index[0]) & (bench.index <= clean.index[-1])]
        bench_sharpe = sharpe_ratio(window, **settings) if len(window) else None
        if bench_sharpe is not None:
            psr_bench = probabilistic_sharpe(r, bench_sharpe, **settings)
    return ModelStatistics(intervals=intervals, psr=psr, psr_vs_benchmark=psr_bench)


# --------------------------------------------------------------------------------------------------
# Pairwise tests, Holm, tiers


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm (1979) step-down adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or ((p < 0) | (p > 1) | np.isnan(p)).any():
        raise ValueError("p_values must be a flat sequence of numbers in [0, 1]")
    m = len(p)
    order = np.argsort(p, kind="stable")
    # p_(i) * (m - i + 1), made monotone by a running maximum, capped at 1.
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted.tolist()


MIN_TEST_SESSIONS = 5  # fewer common daily returns than this: p = 1, never significant


def _pair_differences(a: pd.Series, b: pd.Series) -> np.ndarray:
    """The daily return differences of two models over their common sessions."""
    common = a.index.intersection(b.index)
    if len(common) < 2:
        return np.empty(0)
    return _returns(a.loc[common].to_numpy()) - _returns(b.loc[common].to_numpy())


def _pair_test(
    differences: Sequence[np.ndarray],
) -> list[tuple[int, float, float, float, int | None]]:
    """(sessions, block length, mean difference, raw two-sided p-value, degrees of freedom) of
    one pair in each scenario; the block length is the first scenario's."""
    first = differences[0]
    testable = len(first) >= MIN_TEST_SESSIONS and not np.all(np.abs(first) <= ZERO_DISPERSION)
    # Fewer differences than MIN_TEST_SESSIONS: too few to estimate their variance, no evidence.
    block = optimal_block_length(first) if testable else 1.0
    results = []
    for d in differences:
        observed = float(d.mean()) if len(d) else 0.0
        if not testable or len(d) != len(first) or np.all(np.abs(d) <= ZERO_DISPERSION):
            results.append((len(d), block, observed, 1.0, None))
            continue
        p_value = float(paired_p_values(d[None, :])[0])
        results.append((len(d), block, observed, p_value, ewc_degrees(len(d))))
    return results


def pairwise_tests(
    values_by_model: Mapping[str, pd.Series], *, confidence: float = 0.95
) -> list[PairTest]:
    """Paired EWC t-tests of equal mean daily return for every pair, Holm-adjusted.

    Pairs come in the order of ``combinations(values_by_model)``; significant at ``1-confidence``.
    """
    (pairs,) = scenario_pairwise_tests([values_by_model], confidence=confidence)
    return pairs


def scenario_pairwise_tests(
    scenarios: Sequence[Mapping[str, pd.Series]],
    *,
    confidence: float = 0.95,
) -> list[list[PairTest]]:
    """:func:`pairwise_tests` of each scenario (the same models, their values changed, as by a
    cost multiplier); each pair's reported block length is the first scenario's.
    """
    _check_confidence(confidence)
    cleaned = [
        {name: _clean(series, f"values of {name!r}") for name, series in values.items()}
        for values in scenarios
    ]
    names = list(cleaned[0]) if cleaned else []
    raw: list[list[tuple[str, str, int, float, float, float, int | None]]] = [[] for _ in cleaned]
    for a, b in combinations(names, 2):
        differences = [_pair_differences(values[a], values[b]) for values in cleaned]
        tested = _pair_test(differences)
        for rows, result in zip(raw, tested, strict=True):
            rows.append((a, b, *result))
    return [_holm_adjusted(rows, confidence) for rows in raw]


def _holm_adjusted(
    raw: list[tuple[str, str, int, float, float, float, int | None]], confidence: float
) -> list[PairTest]:
    adjusted = holm([row[5] for row in raw]) if raw else []
    alpha = 1.0 - confidence
    return [
        PairTest(
            model_a=a,
            model_b=b,
            sessions=sessions,
            block_length=block,
            mean_difference=diff,
            p_value_raw=p_raw,
            p_value=p_adj,
            significant=p_adj <= alpha,
            degrees_of_freedom=degrees,
        )
        for (a, b, sessions, block, diff, p_raw, degrees), p_adj in zip(raw, adjusted, strict=True)
    ]


def tiers(ranked_models: Sequence[str], pairs: Sequence[PairTest]) -> dict[str, int]:
    """Tier of each model (1 = best): each tier is its leader plus the unplaced models like it.

    ``ranked_models`` is best first; see the module docstring for the exact rule.
    """
    if len(set(ranked_models)) != len(ranked_models):
        raise ValueError("ranked_models has duplicates")
    different = {frozenset((p.model_a, p.model_b)) for p in pairs if p.significant}
    unplaced = list(ranked_models)
    result: dict[str, int] = {}
    tier = 0
    while unplaced:
        tier += 1
        leader = unplaced[0]
        members = [m for m in unplaced if frozenset((leader, m)) not in different]
        for member in members:
            result[member] = tier
        unplaced = [m for m in unplaced if m not in result]
    return result


def ranking_statistics(
    values_by_model: Mapping[str, pd.Series],
    ranked_models: Sequence[str],
    benchmark: pd.Series | None = None,
    *,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
    pairs: Sequence[PairTest] | None = None,
) -> RankingStatistics:
    """Every model's :func:`model_statistics`, every :func:`pairwise_tests` pair (unless given),
    the tiers."""
    models = {
        name: model_statistics(
            values,
            benchmark,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
            risk_free_rate=risk_free_rate,
            periods_per_year=periods_per_year,
        )
        for name, values in values_by_model.items()
    }
    if pairs is None:
        pairs = pairwise_tests(values_by_model, confidence=confidence)
    return RankingStatistics(models=models, pairs=list(pairs), tiers=tiers(ranked_models, pairs))


# --------------------------------------------------------------------------------------------------
# Repeated trials


def trial_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean of one metric over repeated trials (bounds None if < 2)."""
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError("values must be a non-empty flat sequence of finite numbers")
    k = len(x)
    mean = float(x.mean())
    lower: float | None = None  # one trial: no spread to measure
    upper: float | None = None
    if k >= 2:
        # Imported here: scipy.special costs ~0.3 s to import and only this function needs it.
        from scipy.special import stdtrit

        t = float(stdtrit(k - 1, (1.0 + confidence) / 2.0))
        half = t * float(x.std(ddof=1)) / math.sqrt(k)
        lower, upper = mean - half, mean + half
    return Interval(
        estimate=mean,
        lower=lower,
        upper=upper,
        confidence=confidence,
        method="student-t",
        samples=k,
    )
