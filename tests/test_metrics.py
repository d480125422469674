"""Tests for analysis.metrics: hand-computed series, an independent reference, and edge cases."""

from __future__ import annotations

import json
import math
import statistics
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.metrics import (
    BenchmarkStats,
    Drawdown,
    PerformanceSummary,
    annualized_return,
    annualized_volatility,
    benchmark_stats,
    calmar_ratio,
    cumulative_return,
    max_drawdown,
    sharpe_ratio,
    sortino_ratio,
    summarize,
    turnover,
    win_rate,
)

P = 252
TOL = {"rel": 1e-12, "abs": 1e-12}


def series(values: list[float], start: str = "2025-01-02") -> pd.Series:
    """Values on consecutive business days from `start`."""
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


def approx(x: float) -> object:
    return pytest.approx(x, **TOL)


# --------------------------------------------------------------------------------------------------
# Hand-computed: values [100, 110, 99, 108.9]
#   r = [110/100 - 1, 99/110 - 1, 108.9/99 - 1] = [0.1, -0.1, 0.1], n = 3
#   CR = 108.9/100 - 1 = 0.089
#   annualized = 1.089^(252/3) - 1 = 1.089^84 - 1
#   mean r = 0.1/3; deviations 0.2/3, -0.4/3, 0.2/3; sum of squares = 0.24/9 = 0.08/3
#   var(ddof=1) = 0.08/3/2 = 0.04/3, std = 0.2/sqrt(3)
#   vol = 0.2/sqrt(3) * sqrt(252) = 0.2 * sqrt(84)
#   Sharpe = (0.1/3) / (0.2/sqrt(3)) * sqrt(252) = sqrt(3)/6 * sqrt(252) = sqrt(756)/6 = sqrt(21)
#   downside: min(r, 0)^2 = [0, 0.01, 0], DD = sqrt(0.01/3) = 0.1/sqrt(3)
#   Sortino = (0.1/3) / (0.1/sqrt(3)) * sqrt(252) = sqrt(252/3) = sqrt(84)
#   MDD: peak 110 (day 2), trough 99 (day 3), 99/110 - 1 = -0.1, never back to 110 -> no recovery
#   Calmar = (1.089^84 - 1) / 0.1
#   win rate: 2 of 3 non-zero returns are positive = 2/3
# With rf = 0.0252 a year, rf/P = 0.0001:
#   Sharpe = (0.1/3 - 0.0001) / (0.2/sqrt(3)) * sqrt(252)
#   excess = [0.0999, -0.1001, 0.0999], DD = 0.1001/sqrt(3)
#   Sortino = (0.1/3 - 0.0001) / (0.1001/sqrt(3)) * sqrt(252)
HAND = [100.0, 110.0, 99.0, 108.9]


def test_hand_computed_series() -> None:
    v = series(HAND)
    assert cumulative_return(v) == approx(0.089)
    assert annualized_return(v) == approx(1.089**84 - 1)
    assert annualized_volatility(v) == approx(0.2 * math.sqrt(84))
    assert sharpe_ratio(v) == approx(math.sqrt(21))
    assert sortino_ratio(v) == approx(math.sqrt(84))
    dd = max_drawdown(v)
    assert dd.depth == approx(-0.1)
    assert (dd.peak, dd.trough, dd.recovery) == (date(2025, 1, 3), date(2025, 1, 6), None)
    assert calmar_ratio(v) == approx((1.089**84 - 1) / 0.1)
    assert win_rate(v) == approx(2 / 3)


def test_hand_computed_with_risk_free_rate() -> None:
    v = series(HAND)
    assert sharpe_ratio(v, risk_free_rate=0.0252) == approx(
        (0.1 / 3 - 0.0001) / (0.2 / math.sqrt(3)) * math.sqrt(252)
    )
    assert sortino_ratio(v, risk_free_rate=0.0252) == approx(
        (0.1 / 3 - 0.0001) / (0.1001 / math.sqrt(3)) * math.sqrt(252)
    )


def test_periods_per_year_parameter() -> None:
    # P = 12, n = 3: annualized = 1.089^4 - 1; vol = 0.2/sqrt(3) * sqrt(12) = 0.4;
    # Sharpe = sqrt(3)/6 * sqrt(12) = 1; Sortino = sqrt(12/3) = 2.
    v = series(HAND)
    assert annualized_return(v, periods_per_year=12) == approx(1.089**4 - 1)
    assert annualized_volatility(v, periods_per_year=12) == approx(0.4)
    assert sharpe_ratio(v, periods_per_year=12) == approx(1.0)
    assert sortino_ratio(v, periods_per_year=12) == approx(2.0)


def test_hand_computed_summary() -> None:
    s = summarize(series(HAND), trades=5)
    assert isinstance(s, PerformanceSummary)
    assert (s.start_date, s.end_date, s.days) == (date(2025, 1, 2), date(2025, 1, 7), 4)
    assert (s.start_value, s.end_value, s.trades) == (100.0, 108.9, 5)
    assert s.sharpe_ratio == approx(math.sqrt(21))
    assert s.sortino_ratio == approx(math.sqrt(84))
    assert s.max_drawdown == approx(-0.1)
    assert s.max_drawdown_peak == date(2025, 1, 3)
    assert s.max_drawdown_trough == date(2025, 1, 6)
    assert s.max_drawdown_recovery is None
    assert s.win_rate == approx(2 / 3)
    assert s.turnover is None
    assert s.benchmark_cumulative_return is s.alpha is s.beta is s.information_ratio is None


# --------------------------------------------------------------------------------------------------
# Independent reference: plain Python loops and the statistics module (no numpy, no pandas)


def reference(values: list[float], rf: float = 0.0, p: float = P) -> dict[str, object]:
    r = [values[i] / values[i - 1] - 1 for i in range(1, len(values))]
    n = len(r)
    out: dict[str, object] = {"cumulative": values[-1] / values[0] - 1}
    out["annualized"] = (values[-1] / values[0]) ** (p / n) - 1 if n else None
    excess = [x - rf / p for x in r]
    if n >= 2:
        sd = statistics.stdev(r)
        out["vol"] = sd * math.sqrt(p)
        out["sharpe"] = statistics.fmean(excess) / sd * math.sqrt(p) if sd > 1e-12 else None
    else:
        out["vol"] = out["sharpe"] = None
    if n:
        dd = math.sqrt(sum(min(e, 0.0) ** 2 for e in excess) / n)
        out["sortino"] = statistics.fmean(excess) / dd * math.sqrt(p) if dd > 1e-12 else None
    else:
        out["sortino"] = None
    # Drawdown: the running peak moves to the latest date at the maximum (>=); the trough is the
    # first date at the deepest point (strict <).
    peak_i, depth, best = 0, 0.0, (0.0, None, None)
    for i, x in enumerate(values):
        if x >= values[peak_i]:
            peak_i = i
        d = x / values[peak_i] - 1
        if d < depth:
            depth, best = d, (d, peak_i, i)
    recovery = None
    if best[1] is not None:
        for j in range(best[2] + 1, len(values)):
            if values[j] >= values[best[1]]:
                recovery = j
                break
    out["drawdown"] = (best[0], best[1], best[2], recovery)
    moved = [x for x in r if x != 0]
    out["win_rate"] = sum(1 for x in moved if x > 0) / len(moved) if moved else None
    return out


def close(actual: float | None, expected: object) -> bool:
    if expected is None or actual is None:
        return actual is expected
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)


def check_against_reference(values: list[float], rf: float) -> None:
    v = series(values)
    ref = reference(values, rf)
    assert close(cumulative_return(v), ref["cumulative"])
    assert close(annualized_return(v), ref["annualized"])
    assert close(annualized_volatility(v), ref["vol"])
    assert close(sharpe_ratio(v, rf), ref["sharpe"])
    assert close(sortino_ratio(v, rf), ref["sortino"])
    depth, peak, trough, recovery = ref["drawdown"]
    dd = max_drawdown(v)
    assert close(dd.depth, depth)
    dates = [d.date() for d in v.index]
    assert dd.peak == (dates[peak] if peak is not None else None)
    assert dd.trough == (dates[trough] if trough is not None else None)
    assert dd.recovery == (dates[recovery] if recovery is not None else None)
    annual = ref["annualized"]
    expected_calmar = annual / abs(depth) if depth < 0 and annual is not None else None
    assert close(calmar_ratio(v), expected_calmar)
    assert close(win_rate(v), ref["win_rate"])


def path(start: float, returns_bp: list[int]) -> list[float]:
    values = [start]
    for bp in returns_bp:
        values.append(values[-1] * (1 + bp / 10_000))
    return values


@settings(max_examples=300, deadline=None)
@given(
    start=st.floats(min_value=1.0, max_value=1e7),
    # Returns on a basis-point grid: distinct returns differ by >= 1e-4, so a zero dispersion is
    # exactly "all returns equal", never a borderline case around the 1e-12 threshold.
    returns_bp=st.lists(st.integers(min_value=-1500, max_value=1500), max_size=60),
    rf=st.sampled_from([0.0, 0.02, 0.05]),
)
def test_matches_reference_hypothesis(start: float, returns_bp: list[int], rf: float) -> None:
    check_against_reference(path(start, returns_bp), rf)


@pytest.mark.parametrize("seed", range(5))
def test_matches_reference_random_walk(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = (10_000 * np.cumprod(1 + rng.normal(0.0004, 0.015, 500))).tolist()
    check_against_reference(values, rf=0.03)


# --------------------------------------------------------------------------------------------------
# Drawdown dates on known paths


def test_drawdown_dates_known_path() -> None:
    # idx: 0    1    2   3    4    5    6    7
    #      100  120  90  120  130  110  125  140
    # 120 -> 90 is -25% (recovered at idx 3); 130 -> 110 is -15.4% (recovered at idx 7).
    v = series([100, 120, 90, 120, 130, 110, 125, 140], start="2025-03-03")  # a Monday
    assert max_drawdown(v) == Drawdown(
        depth=90 / 120 - 1,
        peak=date(2025, 3, 4),
        trough=date(2025, 3, 5),
        recovery=date(2025, 3, 6),
    )


def test_drawdown_peak_is_last_date_at_the_maximum() -> None:
    # 100, 90, 100, 80, 85: the fall to 80 starts from the second 100 (idx 2); not recovered.
    dd = max_drawdown(series([100, 90, 100, 80, 85], start="2025-03-03"))
    assert (dd.depth, dd.peak, dd.trough, dd.recovery) == (
        80 / 100 - 1,
        date(2025, 3, 5),
        date(2025, 3, 6),
        None,
    )


def test_drawdown_trough_is_first_of_equal_depths() -> None:
    # 100, 80, 100, 80, 100: two -20% episodes; the first one is reported.
    dd = max_drawdown(series([100, 80, 100, 80, 100], start="2025-03-03"))
    assert (dd.peak, dd.trough, dd.recovery) == (
        date(2025, 3, 3),
        date(2025, 3, 4),
        date(2025, 3, 5),
    )


def test_no_drawdown_on_rising_series() -> None:
    v = series([100, 101, 102, 103])
    assert max_drawdown(v) == Drawdown(depth=0.0)
    assert calmar_ratio(v) is None


# --------------------------------------------------------------------------------------------------
# Benchmark


def constructed_pair(seed: int = 7, n: int = 250) -> tuple[pd.Series, pd.Series, list[float]]:
    """Portfolio and benchmark values with r_p = 0.001 + 1.5 * r_b exactly."""
    rng = np.random.default_rng(seed)
    rb = rng.normal(0.0005, 0.01, n).tolist()
    vb, vp = [400.0], [10_000.0]
    for x in rb:
        vb.append(vb[-1] * (1 + x))
        vp.append(vp[-1] * (1 + 0.001 + 1.5 * x))
    return series(vp), series(vb), rb


def test_benchmark_constructed_beta_alpha_tracking() -> None:
    portfolio, bench, rb = constructed_pair()
    alpha, beta, ir = benchmark_stats(portfolio, bench)
    assert beta == pytest.approx(1.5, rel=1e-9)
    # alpha = (mean(r_p) - 1.5 * mean(r_b)) * 252 = 0.001 * 252
    assert alpha == pytest.approx(0.001 * 252, rel=1e-9)
    # active = r_p - r_b = 0.001 + 0.5 * r_b: IR = (0.001 + 0.5 mean) / (0.5 std) * sqrt(252)
    expected_ir = (0.001 + 0.5 * statistics.fmean(rb)) / (0.5 * statistics.stdev(rb)) * math.sqrt(P)
    assert ir == pytest.approx(expected_ir, rel=1e-9)
    # With rf: alpha = (mean(r_p) - rf/P - 1.5 (mean(r_b) - rf/P)) * P = 0.252 + 0.5 rf
    with_rf = benchmark_stats(portfolio, bench, risk_free_rate=0.04)
    assert with_rf.alpha == pytest.approx(0.252 + 0.02, rel=1e-9)
    assert with_rf.beta == pytest.approx(1.5, rel=1e-9)
    assert with_rf.information_ratio == pytest.approx(expected_ir, rel=1e-9)


def reference_benchmark(vp: list[float], vb: list[float], rf: float = 0.0) -> BenchmarkStats:
    rp = [vp[i] / vp[i - 1] - 1 for i in range(1, len(vp))]
    rb = [vb[i] / vb[i - 1] - 1 for i in range(1, len(vb))]
    beta = statistics.covariance(rp, rb) / statistics.variance(rb)
    alpha = (statistics.fmean(rp) - rf / P - beta * (statistics.fmean(rb) - rf / P)) * P
    active = [a - b for a, b in zip(rp, rb, strict=True)]
    ir = statistics.fmean(active) / statistics.stdev(active) * math.sqrt(P)
    return BenchmarkStats(alpha, beta, ir)


def test_benchmark_aligns_on_common_dates() -> None:
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2025-01-02", periods=60)
    vp = pd.Series(1e4 * np.cumprod(1 + rng.normal(0.001, 0.02, 60)), index=dates)
    vb = pd.Series(500 * np.cumprod(1 + rng.normal(0.0005, 0.01, 60)), index=dates)
    # The benchmark has extra earlier days and misses two; the portfolio misses one other day.
    extra = pd.Series([480.0, 490.0], index=pd.bdate_range("2024-12-30", periods=2))
    bench = pd.concat([extra, vb.drop(dates[[10, 30]])])
    portfolio = vp.drop(dates[20])
    common = [d for d in dates if d not in {dates[10], dates[20], dates[30]}]
    expected = reference_benchmark(vp[common].tolist(), vb[common].tolist(), rf=0.01)
    actual = benchmark_stats(portfolio, bench, risk_free_rate=0.01)
    for a, e in zip(actual, expected, strict=True):
        assert a == pytest.approx(e, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(-800, 800), st.integers(-800, 800)), min_size=2, max_size=40
    ).filter(lambda ps: len({b for _, b in ps}) > 1 and len({a - b for a, b in ps}) > 1),
)
def test_benchmark_matches_reference_hypothesis(pairs: list[tuple[int, int]]) -> None:
    vp = path(1000.0, [a for a, _ in pairs])
    vb = path(50.0, [b for _, b in pairs])
    expected = reference_benchmark(vp, vb, rf=0.02)
    actual = benchmark_stats(series(vp), series(vb), risk_free_rate=0.02)
    for a, e in zip(actual, expected, strict=True):
        assert a == pytest.approx(e, rel=1e-9, abs=1e-9)


def test_benchmark_degenerate_cases() -> None:
    v = series([100, 101, 99, 102])
    # Fewer than 2 common returns.
    assert benchmark_stats(v, series([1, 2])) == BenchmarkStats(None, None, None)
    assert benchmark_stats(v, series([1, 2, 3], start="2026-01-02")) == (None, None, None)
    # A constant benchmark has zero variance: no beta or alpha, but a tracking error.
    alpha, beta, ir = benchmark_stats(v, series([50, 50, 50, 50]))
    assert alpha is None and beta is None
    assert ir == pytest.approx(sharpe_ratio(v))
    # The portfolio is its own benchmark: beta 1, alpha 0, no tracking error.
    alpha, beta, ir = benchmark_stats(v, v * 3)
    assert beta == pytest.approx(1.0) and alpha == pytest.approx(0.0, abs=1e-12) and ir is None


def test_summary_with_benchmark_and_turnover() -> None:
    portfolio, bench, _ = constructed_pair(n=20)
    # The benchmark starts earlier than the portfolio window: only the window counts.
    bench = pd.concat([pd.Series([300.0], index=[pd.Timestamp("2024-12-31")]), bench])
    notional = pd.Series([5_000.0, -2_500.0], index=portfolio.index[[0, 5]])
    s = summarize(portfolio, bench, trades=3, trade_notional=notional, risk_free_rate=0.01)
    assert s.benchmark_cumulative_return == approx(bench.iloc[-1] / bench.iloc[1] - 1)
    assert (s.alpha, s.beta, s.information_ratio) == benchmark_stats(portfolio, bench, 0.01)
    assert s.beta == pytest.approx(1.5, rel=1e-9)
    assert s.turnover == approx(7_500.0 / statistics.fmean(portfolio.tolist()))
    assert s.trades == 3
    assert json.loads(s.model_dump_json())["start_date"] == "2025-01-02"


def test_summary_requires_benchmark_on_window_ends() -> None:
    portfolio, bench, _ = constructed_pair(n=10)
    with pytest.raises(ValueError, match="must cover the portfolio window"):
        summarize(portfolio, bench.iloc[1:])
    with pytest.raises(ValueError, match="must cover the portfolio window"):
        summarize(portfolio, bench.iloc[:-1])


# --------------------------------------------------------------------------------------------------
# Turnover and win rate


def test_turnover() -> None:
    v = series([100, 200, 300])  # mean value 200
    notional = pd.Series([150.0, -50.0], index=v.index[[0, 2]])
    assert turnover(notional, v) == approx(200 / 200)
    assert turnover(pd.Series([], dtype=float), v) == 0.0
    outside = pd.Series([10.0], index=[pd.Timestamp("2024-06-03")])
    with pytest.raises(ValueError, match="outside the values window"):
        turnover(outside, v)
    with pytest.raises(ValueError, match="NaN"):
        turnover(pd.Series([np.nan], index=v.index[:1]), v)


def test_win_rate_ignores_unchanged_days() -> None:
    # r = [0, +1%, 0, -0.99%]: one win among two non-zero returns.
    assert win_rate(series([100, 100, 101, 101, 100])) == 0.5
    assert win_rate(series([100, 100, 100])) is None


# --------------------------------------------------------------------------------------------------
# Edge cases


def test_single_value() -> None:
    v = series([100.0])
    assert cumulative_return(v) == 0.0
    assert annualized_return(v) is None
    assert annualized_volatility(v) is None
    assert sharpe_ratio(v) is None and sortino_ratio(v) is None
    assert max_drawdown(v) == Drawdown(depth=0.0)
    assert calmar_ratio(v) is None and win_rate(v) is None
    assert benchmark_stats(v, v) == (None, None, None)
    s = summarize(v, benchmark=series([400.0]))
    assert (s.days, s.cumulative_return, s.benchmark_cumulative_return) == (1, 0.0, 0.0)
    assert s.start_date == s.end_date == date(2025, 1, 2)


def test_two_values() -> None:
    # One return of -10%: no sample std, but the downside deviation is 0.1 -> Sortino = -sqrt(252).
    v = series([100.0, 90.0])
    assert annualized_volatility(v) is None and sharpe_ratio(v) is None
    assert sortino_ratio(v) == approx(-math.sqrt(P))
    assert annualized_return(v) == approx(0.9**252 - 1)


def test_constant_series() -> None:
    v = series([100.0] * 10)
    assert cumulative_return(v) == 0.0
    assert annualized_return(v) == 0.0
    assert annualized_volatility(v) == 0.0
    assert sharpe_ratio(v) is None
    assert sortino_ratio(v) is None
    assert max_drawdown(v) == Drawdown(depth=0.0)
    assert calmar_ratio(v) is None and win_rate(v) is None
    # With rf > 0 every period misses the target by rf/P: DD = rf/P, Sortino = -sqrt(P).
    assert sortino_ratio(v, risk_free_rate=0.05) == approx(-math.sqrt(P))
    assert sharpe_ratio(v, risk_free_rate=0.05) is None


def test_constant_growth_rounding_noise_is_zero_dispersion() -> None:
    # 1% a day in exact arithmetic; recomputed returns differ only by float rounding.
    v = series([100 * 1.01**i for i in range(30)])
    assert annualized_volatility(v) == pytest.approx(0.0, abs=1e-12)
    assert sharpe_ratio(v) is None and sortino_ratio(v) is None
    assert win_rate(v) == 1.0


def test_overflowing_annualized_return_is_none() -> None:
    # 1000^252 overflows a float: None, never inf, and the summary stays JSON-safe.
    v = series([1.0, 1000.0])
    assert annualized_return(v) is None
    s = summarize(v)
    assert s.annualized_return is None and s.calmar_ratio is None
    assert "Infinity" not in s.model_dump_json() and "NaN" not in s.model_dump_json()


def test_all_summary_floats_finite_or_none() -> None:
    for values in ([100.0], [100.0] * 5, HAND, [1.0, 1000.0], [100, 50, 25, 100]):
        dumped = summarize(series(values), benchmark=series(values) * 2).model_dump()
        for key, x in dumped.items():
            if isinstance(x, float):
                assert math.isfinite(x), key


def test_unsorted_index_is_sorted() -> None:
    v = series(HAND)
    shuffled = v.iloc[[2, 0, 3, 1]]
    assert summarize(shuffled) == summarize(v)
    assert max_drawdown(shuffled) == max_drawdown(v)


def test_date_labels_and_tz_aware_index() -> None:
    v = series(HAND)
    as_dates = pd.Series(HAND, index=[d.date() for d in v.index])
    assert summarize(as_dates) == summarize(v)
    aware = pd.Series(HAND, index=v.index.tz_localize("America/New_York") + pd.Timedelta(hours=16))
    assert summarize(aware) == summarize(v)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([100.0, np.nan, 101.0], "NaN"),
        ([100.0, np.inf], "infinite"),
        ([100.0, 0.0, 101.0], "strictly positive"),
        ([100.0, -5.0], "strictly positive"),
        ([], "empty"),
    ],
)
def test_invalid_values_raise(values: list[float], message: str) -> None:
    v = series(values)
    for fn in (cumulative_return, annualized_return, sharpe_ratio, max_drawdown, summarize):
        with pytest.raises(ValueError, match=message):
            fn(v)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(TypeError, match="pandas Series"):
        cumulative_return([100.0, 101.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="indexed by date"):
        cumulative_return(pd.Series([100.0, 101.0]))
    with pytest.raises(ValueError, match="one value per date"):
        cumulative_return(pd.Series([100.0, 101.0], index=pd.to_datetime(["2025-01-02"] * 2)))
    intraday = pd.Series(
        [100.0, 101.0], index=pd.to_datetime(["2025-01-02 10:00", "2025-01-02 11:00"])
    )
    with pytest.raises(ValueError, match="one value per date"):
        sharpe_ratio(intraday)
    with pytest.raises(ValueError, match="benchmark"):
        benchmark_stats(series(HAND), series([100.0, np.nan, 100.0, 100.0]))
    with pytest.raises(ValueError, match="periods_per_year"):
        sharpe_ratio(series(HAND), periods_per_year=0)
    with pytest.raises(ValueError, match="risk_free_rate"):
        sortino_ratio(series(HAND), risk_free_rate=float("nan"))
    with pytest.raises(ValueError, match="trades"):
        summarize(series(HAND), trades=-1)
