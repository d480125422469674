"""Portfolio performance metrics from a daily value series and a benchmark series (pure functions).

Conventions (they hold for every function here):

* Input: a ``pandas.Series`` of portfolio values indexed by date, **one value per trading day**.
  Index labels are reduced to calendar dates (time of day dropped; a tz-aware index keeps its
  wall-clock date). An unsorted index is sorted; two values on the same date, a non-date index, NaN,
  infinite or non-positive values raise ``ValueError``.
* Returns are daily simple returns ``r_t = V_t / V_{t-1} - 1`` between consecutive trading days;
  ``n`` is the number of returns (values - 1).
* ``P = periods_per_year``, default 252. Standard deviations are sample ones (``ddof=1``).
* The risk-free rate ``rf`` is annual (default 0.0) and is converted per period as ``rf / P``.
* Every float result is finite or ``None`` (never NaN or inf): results go to JSON and tables.
  A dispersion (std, downside deviation, tracking error) at or below ``1e-12`` per period is treated
  as zero: it is rounding noise from recomputing returns as ratios of floats.

How this differs from the original benchmark (HKUDS/AI-Trader@761ea56
``tools/calculate_metrics.py``, see ``../shared/notes/ai-trader-semantics.md`` §5):

* The original takes one return per position *record* (every fill adds one); we take one per
  trading day, so the annualisation exponent ``P/n`` counts trading days.
* The original uses ``ddof=0``; we use ``ddof=1`` (as do its ``plot_metrics.py`` and the
  paper-era tool).
* Its Sharpe is 0 when std = 0; ours is ``None``. The paper-era tool subtracted 0.02 from the
  annualised mean; we subtract ``rf / P`` per period (``rf`` defaults to 0).
* Its "SR" (Sortino) divides by the std of the negative returns about their own mean and is +inf
  with no negative return; ours divides by the target downside deviation
  ``sqrt(mean(min(r - rf/P, 0)^2))`` over *all* periods and is ``None`` when that is 0.
* Its win rate counts zero returns as losses; ours ignores days with no change.
* Its "Number of Trades" counts value changes; ours is the number of fills the caller passes in.
* Its MDD is the same negative fraction (the paper-era tool reported it positive); we add the peak,
  trough and recovery dates.
* It reports only the benchmark's cumulative return; we add Jensen's alpha, beta and the
  information ratio against the benchmark (QQQ held close to close over the same window).
"""

from __future__ import annotations

import math
from datetime import date
from typing import NamedTuple

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

TRADING_DAYS_PER_YEAR = 252
ZERO_DISPERSION = 1e-12
"""A per-period std, downside deviation or tracking error at or below this is treated as zero."""


class Drawdown(BaseModel):
    """The maximum drawdown: ``depth`` = V_trough/V_peak - 1 (<= 0) and its dates.

    ``peak`` is the last date at the running maximum before the trough, ``trough`` the first date at
    the deepest point, ``recovery`` the first later date with V >= V_peak (None if not recovered).
    With no drawdown, ``depth`` is 0.0 and all dates are None.
    """

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    depth: float
    peak: date | None = None
    trough: date | None = None
    recovery: date | None = None


class BenchmarkStats(NamedTuple):
    """Jensen's alpha (annualised), beta and information ratio; each None when undefined."""

    alpha: float | None
    beta: float | None
    information_ratio: float | None


class PerformanceSummary(BaseModel):
    """Every metric of this module for one portfolio over one window (floats finite or None)."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    start_date: date
    end_date: date
    start_value: float
    end_value: float
    days: int
    """Number of values (trading days); the number of returns is ``days - 1``."""
    periods_per_year: float
    risk_free_rate: float
    cumulative_return: float
    annualized_return: float | None
    annualized_volatility: float | None
    sharpe_ratio: float | None
    sortino_ratio: float | None
    max_drawdown: float
    max_drawdown_peak: date | None
    max_drawdown_trough: date | None
    max_drawdown_recovery: date | None
    calmar_ratio: float | None
    win_rate: float | None
    trades: int
    turnover: float | None
    benchmark_cumulative_return: float | None
    alpha: float | None
    beta: float | None
    information_ratio: float | None


# --------------------------------------------------------------------------------------------------
# Validation and helpers


def _clean(series: pd.Series, name: str, *, positive: bool = True) -> pd.Series:
    """Return a float series on a sorted, tz-naive, date-normalised DatetimeIndex, or raise."""
    if not isinstance(series, pd.Series):
        raise TypeError(f"{name} must be a pandas Series, got {type(series).__name__}")
    if pd.api.types.is_bool_dtype(series.dtype):
        raise ValueError(f"{name} must be numeric, got booleans")
    try:
        data = series.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    if np.isnan(data).any():
        bad = list(series.index[np.isnan(data)][:3])
        raise ValueError(f"{name} contains NaN (first at {bad}); fill or drop those days first")
    if not np.isfinite(data).all():
        raise ValueError(f"{name} contains infinite values")
    if positive and (data <= 0).any():
        bad = list(series.index[data <= 0][:3])
        raise ValueError(f"{name} must be strictly positive (non-positive at {bad})")

    index = series.index
    if len(index) and index.inferred_type not in {"datetime64", "datetime", "date"}:
        raise ValueError(
            f"{name} must be indexed by date (DatetimeIndex or datetime.date labels), "
            f"got {index.inferred_type!r} labels"
        )
    index = pd.DatetimeIndex(pd.to_datetime(index))
    if index.tz is not None:
        index = index.tz_localize(None)
    index = index.normalize()
    if index.has_duplicates:
        dupes = sorted({d.date() for d in index[index.duplicated()]})[:3]
        raise ValueError(
            f"{name} has more than one value per date (e.g. {dupes}); daily series only"
        )
    return pd.Series(data, index=index, name=series.name).sort_index()


def _values(values: pd.Series) -> pd.Series:
    clean = _clean(values, "values")
    if clean.empty:
        raise ValueError("values is empty; need at least one portfolio value")
    return clean


def _check_params(risk_free_rate: float, periods_per_year: float) -> None:
    if not math.isfinite(periods_per_year) or periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    if not math.isfinite(risk_free_rate):
        raise ValueError(f"risk_free_rate must be finite, got {risk_free_rate!r}")


def _returns(clean: pd.Series) -> np.ndarray:
    v = clean.to_numpy()
    return v[1:] / v[:-1] - 1.0


def _finite(x: float | None) -> float | None:
    """``x`` as a Python float, or None when it is None, NaN or infinite."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _std(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1))


# --------------------------------------------------------------------------------------------------
# Metrics


def cumulative_return(values: pd.Series) -> float:
    """``V_last / V_first - 1``; 0.0 for a single value. Same as the original's CR."""
    v = _values(values).to_numpy()
    return float(v[-1] / v[0] - 1.0)


def annualized_return(
    values: pd.Series, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> float | None:
    """``(1 + CR)^(P/n) - 1`` with n = number of daily returns; None if n = 0 or it overflows.

    Same formula as the original, but n counts trading days, not position records.
    """
    _check_params(0.0, periods_per_year)
    clean = _values(values)
    n = len(clean) - 1
    if n < 1:
        return None
    v = clean.to_numpy()
    try:
        return _finite((float(v[-1]) / float(v[0])) ** (periods_per_year / n) - 1.0)
    except OverflowError:
        return None


def annualized_volatility(
    values: pd.Series, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> float | None:
    """``std(r, ddof=1) * sqrt(P)``; None with fewer than 2 returns (the original uses ddof=0)."""
    _check_params(0.0, periods_per_year)
    r = _returns(_values(values))
    if len(r) < 2:
        return None
    return _finite(_std(r) * math.sqrt(periods_per_year))


def sharpe_ratio(
    values: pd.Series,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """``mean(r - rf/P) / std(r, ddof=1) * sqrt(P)``; None if std is 0 or fewer than 2 returns.

    The original uses ddof=0 and returns 0 (not None) when std is 0.
    """
    _check_params(risk_free_rate, periods_per_year)
    r = _returns(_values(values))
    if len(r) < 2:
        return None
    std = _std(r)
    if std <= ZERO_DISPERSION:
        return None
    excess = r - risk_free_rate / periods_per_year
    return _finite(float(np.mean(excess)) / std * math.sqrt(periods_per_year))


def _downside_deviation(excess: np.ndarray) -> float:
    return math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))


def sortino_ratio(
    values: pd.Series,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> float | None:
    """``mean(r - rf/P) / DD * sqrt(P)``, DD = ``sqrt(mean(min(r - rf/P, 0)^2))`` over ALL periods.

    This is the standard target downside deviation, unlike the original's std of the negative
    returns about their own mean. None when DD is 0 (no period below rf/P) or there is no return.
    """
    _check_params(risk_free_rate, periods_per_year)
    r = _returns(_values(values))
    if len(r) < 1:
        return None
    excess = r - risk_free_rate / periods_per_year
    dd = _downside_deviation(excess)
    if dd <= ZERO_DISPERSION:
        return None
    return _finite(float(np.mean(excess)) / dd * math.sqrt(periods_per_year))


def max_drawdown(values: pd.Series) -> Drawdown:
    """The deepest fall from a running maximum, ``min(V / cummax(V) - 1)`` (<= 0), with its dates.

    Same depth as the original's MDD (computed from V rather than cumprod(1 + r)); dates are ours.
    """
    clean = _values(values)
    v = clean.to_numpy()
    running_max = np.maximum.accumulate(v)
    depths = v / running_max - 1.0
    trough = int(np.argmin(depths))
    depth = float(depths[trough])
    if depth >= 0.0:
        return Drawdown(depth=0.0)
    peak = int(np.flatnonzero(v[: trough + 1] == running_max[trough])[-1])
    later = np.flatnonzero(v[trough + 1 :] >= v[peak])
    dates = clean.index
    return Drawdown(
        depth=depth,
        peak=dates[peak].date(),
        trough=dates[trough].date(),
        recovery=dates[trough + 1 + int(later[0])].date() if len(later) else None,
    )


def calmar_ratio(
    values: pd.Series, periods_per_year: float = TRADING_DAYS_PER_YEAR
) -> float | None:
    """``annualized_return / |max drawdown|``; None when there is no drawdown or no return."""
    annual = annualized_return(values, periods_per_year)
    depth = max_drawdown(values).depth
    if annual is None or depth == 0.0:
        return None
    return _finite(annual / abs(depth))


def win_rate(values: pd.Series) -> float | None:
    """Share of returns > 0 among the non-zero returns; None if every return is 0 (or none).

    Days with no change in value do not count either way (the original counts them as losses).
    """
    r = _returns(_values(values))
    moved = r[r != 0.0]
    if len(moved) == 0:
        return None
    return float(np.count_nonzero(moved > 0.0) / len(moved))


def turnover(trade_notional_by_day: pd.Series, values: pd.Series) -> float:
    """``sum(|traded notional|) / mean(V)`` over the window: gross turnover, not annualised.

    Notional is summed in absolute value (buys and sells both count, signed input is fine); the
    denominator is the mean portfolio value over all days of ``values``. Trade dates must fall
    within the window of ``values`` (ValueError otherwise); an empty series gives 0.0.
    """
    clean = _values(values)
    notional = _clean(trade_notional_by_day, "trade_notional_by_day", positive=False)
    if len(notional):
        first, last = clean.index[0], clean.index[-1]
        outside = notional.index[(notional.index < first) | (notional.index > last)]
        if len(outside):
            raise ValueError(
                f"trade_notional_by_day has dates outside the values window {first.date()}.."
                f"{last.date()}: {[d.date() for d in outside[:3]]}"
            )
    total = float(np.abs(notional.to_numpy()).sum())
    return float(total / float(np.mean(clean.to_numpy())))


def benchmark_stats(
    values: pd.Series,
    benchmark: pd.Series,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> BenchmarkStats:
    """Jensen's alpha (annualised), beta and information ratio against ``benchmark``.

    Both series are aligned on their common dates, then returns are taken between consecutive
    common dates. ``beta = cov(r_p, r_b) / var(r_b)`` (ddof=1);
    ``alpha = (mean(r_p - rf/P) - beta * mean(r_b - rf/P)) * P``;
    ``IR = mean(r_p - r_b) / std(r_p - r_b, ddof=1) * sqrt(P)``. Each is None with fewer than
    2 common returns or a zero variance (of r_b for alpha and beta, of r_p - r_b for IR).
    The original has none of these; it reports only the benchmark's cumulative return.
    """
    _check_params(risk_free_rate, periods_per_year)
    port = _values(values)
    bench = _clean(benchmark, "benchmark")
    common = port.index.intersection(bench.index)
    if len(common) < 3:
        return BenchmarkStats(None, None, None)
    rp = _returns(port.loc[common])
    rb = _returns(bench.loc[common])

    alpha = beta = None
    if _std(rb) > ZERO_DISPERSION:
        beta_value = float(np.cov(rp, rb, ddof=1)[0, 1] / np.var(rb, ddof=1))
        rf = risk_free_rate / periods_per_year
        beta = _finite(beta_value)
        alpha = _finite(
            (float(np.mean(rp - rf)) - beta_value * float(np.mean(rb - rf))) * periods_per_year
        )

    information_ratio = None
    active = rp - rb
    tracking = _std(active)
    if tracking > ZERO_DISPERSION:
        information_ratio = _finite(float(np.mean(active)) / tracking * math.sqrt(periods_per_year))
    return BenchmarkStats(alpha, beta, information_ratio)


def _against_benchmark(
    clean: pd.Series, benchmark: pd.Series | None, risk_free_rate: float, periods_per_year: float
) -> tuple[float | None, BenchmarkStats]:
    """The benchmark's cumulative return over the portfolio's window, and alpha, beta, IR."""
    if benchmark is None:
        return None, BenchmarkStats(None, None, None)
    start, end = clean.index[0], clean.index[-1]
    bench = _clean(benchmark, "benchmark")
    missing = [d.date() for d in (start, end) if d not in bench.index]
    if missing:
        raise ValueError(
            f"benchmark has no value on {missing}: it must cover the portfolio window "
            f"{start.date()}..{end.date()}"
        )
    bench_cr = _finite(float(bench.loc[end] / bench.loc[start] - 1.0))
    return bench_cr, benchmark_stats(clean, bench, risk_free_rate, periods_per_year)


def summarize(
    values: pd.Series,
    benchmark: pd.Series | None = None,
    trades: int = 0,
    trade_notional: pd.Series | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: float = TRADING_DAYS_PER_YEAR,
) -> PerformanceSummary:
    """Every metric above for ``values``; benchmark fields None when ``benchmark`` is None.

    ``trades`` is the number of fills, passed through (not derived from value changes as in the
    original). ``turnover`` is None when ``trade_notional`` is None. The benchmark cumulative return
    is ``B(end) / B(start) - 1`` on the portfolio's first and last dates; the benchmark must have
    both (ValueError otherwise), so that both returns cover the same window.
    """
    _check_params(risk_free_rate, periods_per_year)
    if isinstance(trades, bool) or not isinstance(trades, int | np.integer) or trades < 0:
        raise ValueError(f"trades must be a non-negative integer, got {trades!r}")
    clean = _values(values)
    start, end = clean.index[0], clean.index[-1]

    bench_cr, stats = _against_benchmark(clean, benchmark, risk_free_rate, periods_per_year)

    drawdown = max_drawdown(clean)
    return PerformanceSummary(
        start_date=start.date(),
        end_date=end.date(),
        start_value=float(clean.iloc[0]),
        end_value=float(clean.iloc[-1]),
        days=len(clean),
        periods_per_year=float(periods_per_year),
        risk_free_rate=float(risk_free_rate),
        cumulative_return=cumulative_return(clean),
        annualized_return=annualized_return(clean, periods_per_year),
        annualized_volatility=annualized_volatility(clean, periods_per_year),
        sharpe_ratio=sharpe_ratio(clean, risk_free_rate, periods_per_year),
        sortino_ratio=sortino_ratio(clean, risk_free_rate, periods_per_year),
        max_drawdown=drawdown.depth,
        max_drawdown_peak=drawdown.peak,
        max_drawdown_trough=drawdown.trough,
        max_drawdown_recovery=drawdown.recovery,
        calmar_ratio=calmar_ratio(clean, periods_per_year),
        win_rate=win_rate(clean),
        trades=int(trades),
        turnover=None if trade_notional is None else _finite(turnover(trade_notional, clean)),
        benchmark_cumulative_return=bench_cr,
        alpha=stats.alpha,
        beta=stats.beta,
        information_ratio=stats.information_ratio,
    )
