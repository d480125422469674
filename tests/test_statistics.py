"""Tests for analysis.statistics on known data-generating processes and hand computations."""

from __future__ import annotations

import json
import math
import statistics
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from analysis import metrics
from analysis.statistics import (
    METRICS,
    Interval,
    PairTest,
    holm,
    indices_from_draws,
    mean_bounds,
    metric_intervals,
    model_statistics,
    optimal_block_length,
    pairwise_tests,
    path_metrics,
    probabilistic_sharpe,
    ranking_statistics,
    stationary_indices,
    tiers,
    trial_interval,
)

P = 252


def values_from_returns(returns: np.ndarray, start: float = 10_000.0) -> pd.Series:
    """A value series on consecutive business days whose daily returns are ``returns``."""
    dates = pd.bdate_range("2025-01-02", periods=len(returns) + 1)
    return pd.Series(start * np.cumprod(np.r_[1.0, 1.0 + np.asarray(returns)]), index=dates)


def ar1(rng: np.random.Generator, phi: float, n: int, sd: float = 0.01) -> np.ndarray:
    """A stationary AR(1) series with marginal std ``sd`` (after a burn-in of 200)."""
    shocks = rng.normal(0.0, sd * math.sqrt(1.0 - phi**2), n + 200)
    x = np.zeros(n + 200)
    for t in range(1, n + 200):
        x[t] = phi * x[t - 1] + shocks[t]
    return x[200:]


def pair(a: str, b: str, significant: bool) -> PairTest:
    """A hand-made test result for the tier rule."""
    p = 0.001 if significant else 0.5
    return PairTest(
        model_a=a,
        model_b=b,
        sessions=250,
        block_length=1.0,
        mean_difference=0.0,
        p_value_raw=p,
        p_value=p,
        significant=significant,
    )


# --------------------------------------------------------------------------------------------------
# Acceptance: coverage on a known process


def test_mean_return_interval_covers_the_true_mean_95_percent_of_the_time() -> None:
    """1,000 iid normal series of 250 sessions: the 95% interval holds the true mean 93-97%
    (computed for all at once by `mean_bounds`, which is what `metric_intervals` reports)."""
    true_mean, sd, n, series = 0.0005, 0.01, 250, 1000
    rng = np.random.default_rng(2024)
    returns = rng.normal(true_mean, sd, size=(series, n))
    lower, upper = mean_bounds(returns)
    covered = np.mean((lower <= true_mean) & (true_mean <= upper))
    assert 0.93 <= covered <= 0.97, covered
    for i in (0, 1, 2):  # the leaderboard's interval is this one
        shown = metric_intervals(values_from_returns(returns[i]), resamples=200, seed=i)
        assert (shown["mean_return"].lower, shown["mean_return"].upper) == pytest.approx(
            (lower[i], upper[i]), rel=1e-6
        )


def test_blocks_keep_coverage_on_autocorrelated_returns_where_iid_resampling_fails() -> None:
    """AR(1), phi = 0.5: the automatic block length recovers most of the coverage iid loses."""
    rng = np.random.default_rng(5)
    n, series = 250, 300
    covered = {"iid": 0, "blocks": 0}
    for i in range(series):
        r = ar1(rng, 0.5, n)
        for kind, block in (("iid", 1.0), ("blocks", optimal_block_length(r))):
            means = r[stationary_indices(n, 500, block, np.random.default_rng(i))].mean(axis=1)
            low, high = np.quantile(means, [0.025, 0.975])
            covered[kind] += low <= 0.0 <= high
    assert covered["iid"] / series < 0.8  # ~70%: iid resampling ignores the dependence
    assert covered["blocks"] / series > 0.85  # ~89%
    assert covered["blocks"] - covered["iid"] > 0.1 * series


# --------------------------------------------------------------------------------------------------
# Block length and sampler


def test_block_length_is_about_one_for_iid_and_larger_for_autocorrelated_series() -> None:
    rng = np.random.default_rng(1)
    iid = [optimal_block_length(rng.normal(0, 0.01, 250)) for _ in range(50)]
    strong = [optimal_block_length(ar1(rng, 0.8, 250)) for _ in range(50)]
    assert 1.0 <= float(np.median(iid)) < 2.0
    assert min(iid) >= 1.0
    assert float(np.median(strong)) > 8.0
    assert max(iid + strong) <= math.ceil(min(3 * math.sqrt(250), 250 / 3))  # the cap


def test_block_length_edge_cases() -> None:
    assert optimal_block_length(np.full(100, 0.001)) == 1.0  # constant: nothing to preserve
    assert optimal_block_length(np.arange(9, dtype=float)) == 1.0  # too short for the rule
    assert optimal_block_length([]) == 1.0


def test_block_length_matches_arch() -> None:
    arch = pytest.importorskip("arch.bootstrap")
    rng = np.random.default_rng(3)
    for n in (12, 60, 250, 1000):
        for phi in (0.0, 0.3, 0.7, 0.95, -0.4):
            x = ar1(rng, phi, n)
            reference = float(arch.optimal_block_length(x)["stationary"].iloc[0])
            assert optimal_block_length(x) == pytest.approx(max(reference, 1.0), rel=1e-12)


def test_sampler_gives_arch_indices_for_the_same_draws() -> None:
    samplers = pytest.importorskip("arch.bootstrap._samplers")
    rng = np.random.default_rng(4)
    n, resamples = 250, 40
    starts = rng.integers(0, n, size=(resamples, n))
    uniforms = rng.random((resamples, n))
    for block in (1.0, 1.6, 7.3, 80.0):
        ours = indices_from_draws(starts, uniforms.copy(), block)
        for row in range(resamples):
            expected = samplers.stationary_bootstrap_sample(
                starts[row].astype(np.int64), uniforms[row].copy(), 1.0 / block
            )
            np.testing.assert_array_equal(ours[row], expected)


def test_sampler_blocks_have_the_requested_mean_length() -> None:
    idx = stationary_indices(250, 4000, 5.0, np.random.default_rng(0))
    assert idx.min() >= 0 and idx.max() < 250
    # A block continues where the next index is the previous + 1 (mod n).
    continues = (idx[:, 1:] - idx[:, :-1]) % 250 == 1
    new_blocks = idx.shape[0] + np.count_nonzero(~continues)
    assert idx.size / new_blocks == pytest.approx(5.0, rel=0.03)


# --------------------------------------------------------------------------------------------------
# Same definitions as analysis.metrics


def test_path_metrics_of_the_sample_itself_match_the_metrics_module() -> None:
    rng = np.random.default_rng(8)
    values = values_from_returns(rng.normal(0.0004, 0.012, 120))
    r = values.to_numpy()[1:] / values.to_numpy()[:-1] - 1.0
    for rf in (0.0, 0.04):
        got = {k: float(v[0]) for k, v in path_metrics(r[None, :], rf, P).items()}
        assert got["cumulative_return"] == pytest.approx(metrics.cumulative_return(values))
        assert got["annualized_return"] == pytest.approx(metrics.annualized_return(values))
        assert got["sharpe_ratio"] == pytest.approx(metrics.sharpe_ratio(values, rf))
        assert got["sortino_ratio"] == pytest.approx(metrics.sortino_ratio(values, rf))
        assert got["max_drawdown"] == pytest.approx(metrics.max_drawdown(values).depth)
        assert got["mean_return"] == pytest.approx(float(np.mean(r)))


def test_estimates_are_the_metrics_module_values_and_inside_their_intervals() -> None:
    rng = np.random.default_rng(9)
    values = values_from_returns(rng.normal(0.001, 0.01, 250))
    bench = values_from_returns(rng.normal(0.0004, 0.01, 250), start=400.0)
    intervals = metric_intervals(values, bench, resamples=1000, risk_free_rate=0.03)
    assert set(intervals) == set(METRICS)
    summary = metrics.summarize(values, bench, risk_free_rate=0.03)
    for name in ("cumulative_return", "annualized_return", "sharpe_ratio", "sortino_ratio"):
        assert intervals[name].estimate == pytest.approx(getattr(summary, name), rel=1e-12)
    assert intervals["max_drawdown"].estimate == pytest.approx(summary.max_drawdown, rel=1e-12)
    expected_excess = summary.cumulative_return - summary.benchmark_cumulative_return
    assert intervals["excess_return"].estimate == pytest.approx(expected_excess, rel=1e-12)
    for name, interval in intervals.items():
        assert interval.lower <= interval.estimate <= interval.upper
        assert interval.confidence == 0.95
        if name in ("sortino_ratio", "max_drawdown"):
            assert interval.method == "stationary-bootstrap" and interval.samples == 1000
            assert interval.block_length is not None and interval.block_length >= 1.0
        else:  # the calibrated t intervals: one sample of 250 returns, B = ceil(0.4 250^(2/3))
            assert interval.method == "ewc-t" and interval.samples == 250
            assert interval.degrees_of_freedom == 16 and interval.block_length is None
    assert intervals["max_drawdown"].upper <= 0.0


def test_excess_return_against_itself_is_exactly_zero() -> None:
    values = values_from_returns(np.random.default_rng(2).normal(0.0, 0.01, 100))
    excess = metric_intervals(values, values * 3.0, resamples=200)["excess_return"]
    assert (excess.estimate, excess.lower, excess.upper) == pytest.approx((0.0, 0.0, 0.0))


def test_higher_confidence_gives_a_wider_interval() -> None:
    values = values_from_returns(np.random.default_rng(6).normal(0.0005, 0.01, 250))
    narrow = metric_intervals(values, confidence=0.8, resamples=1000)["sharpe_ratio"]
    wide = metric_intervals(values, confidence=0.99, resamples=1000)["sharpe_ratio"]
    assert wide.lower < narrow.lower < narrow.upper < wide.upper


def test_short_and_degenerate_series_have_no_bounds_but_stay_json_safe() -> None:
    one = metric_intervals(values_from_returns(np.array([])))
    assert one["cumulative_return"].estimate == 0.0 and one["cumulative_return"].lower is None
    assert one["sharpe_ratio"].estimate is None
    two = metric_intervals(values_from_returns(np.array([0.01])))
    assert two["cumulative_return"].estimate == pytest.approx(0.01)
    assert two["cumulative_return"].lower is None
    # Never a loss: Sortino undefined, so it gets no bounds; the rest still do.
    gains = metric_intervals(values_from_returns(np.linspace(0.001, 0.01, 50)), resamples=300)
    assert gains["sortino_ratio"].estimate is None and gains["sortino_ratio"].upper is None
    assert gains["sharpe_ratio"].lower is not None
    for intervals in (one, two, gains):
        json.dumps({k: v.model_dump(mode="json") for k, v in intervals.items()})


def test_bad_inputs_are_rejected() -> None:
    values = values_from_returns(np.full(20, 0.001))
    with pytest.raises(ValueError, match="confidence"):
        metric_intervals(values, confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        metric_intervals(values, resamples=0)
    with pytest.raises(ValueError, match="NaN"):
        metric_intervals(values.where(values.index != values.index[3]))
    with pytest.raises(ValueError, match="finite"):
        probabilistic_sharpe([0.01, math.nan, 0.02])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.2, 1.5])
    with pytest.raises(ValueError, match="duplicates"):
        tiers(["a", "a"], [])


# --------------------------------------------------------------------------------------------------
# Reproducibility


def test_same_seed_same_results_other_seed_other_results() -> None:
    rng = np.random.default_rng(12)
    values = values_from_returns(rng.normal(0.0005, 0.01, 250))
    bench = values_from_returns(rng.normal(0.0003, 0.01, 250))
    first = metric_intervals(values, bench, resamples=500, seed=42)
    assert first == metric_intervals(values, bench, resamples=500, seed=42)
    other = metric_intervals(values, bench, resamples=500, seed=43)
    assert first["sortino_ratio"].lower != other["sortino_ratio"].lower  # resampled
    assert first["sharpe_ratio"] == other["sharpe_ratio"]  # a t interval: nothing drawn

    models = {name: values_from_returns(rng.normal(0.0, 0.01, 250)) for name in "abc"}
    tests = pairwise_tests(models)
    assert tests == pairwise_tests(models)
    # A pair's raw p-value depends on its two models only, not on the others or their order.
    alone = pairwise_tests({"b": models["b"], "a": models["a"]})[0]
    assert alone.p_value_raw == tests[0].p_value_raw
    assert alone.mean_difference == pytest.approx(-tests[0].mean_difference, abs=1e-15)


# --------------------------------------------------------------------------------------------------
# Pairwise tests, Holm, tiers


def test_identical_models_are_never_significant_and_share_a_tier() -> None:
    r = np.random.default_rng(13).normal(0.001, 0.01, 250)
    models = {
        "x": values_from_returns(r),
        "x-twice-as-rich": values_from_returns(r, start=20_000.0),  # same returns, other scale
        "y": values_from_returns(r + 0.01),  # far better: makes the Holm family non-trivial
    }
    tests = pairwise_tests(models)
    same = next(t for t in tests if {t.model_a, t.model_b} == {"x", "x-twice-as-rich"})
    assert same.p_value_raw == 1.0 and same.p_value == 1.0 and not same.significant
    assert same.mean_difference == pytest.approx(0.0, abs=1e-15)
    assert tiers(["y", "x", "x-twice-as-rich"], tests) == {"y": 1, "x": 2, "x-twice-as-rich": 2}


def test_a_planted_edge_is_significant_against_every_model_and_alone_in_tier_one() -> None:
    rng = np.random.default_rng(21)
    n = 250
    market = rng.normal(0.0003, 0.01, n)
    returns = {f"model-{i}": market + rng.normal(0.0, 0.005, n) for i in range(5)}
    returns["edge"] = market + rng.normal(0.0, 0.005, n) + 0.004  # +0.4% a day
    values = {name: values_from_returns(r) for name, r in returns.items()}
    tests = pairwise_tests(values)
    assert len(tests) == 15
    for test in tests:
        if "edge" in (test.model_a, test.model_b):
            assert test.significant and test.p_value <= 0.05, test
    ranked = sorted(values, key=lambda m: values[m].iloc[-1], reverse=True)
    assert ranked[0] == "edge"
    result = tiers(ranked, tests)
    assert [m for m, tier in result.items() if tier == 1] == ["edge"]
    assert all(tier >= 2 for m, tier in result.items() if m != "edge")


def test_holm_on_a_hand_computed_example() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == pytest.approx([0.02])  # one test: unadjusted
    assert holm([]) == []


def test_pairwise_p_values_are_holm_adjusted_raw_ones() -> None:
    rng = np.random.default_rng(17)
    models = {
        name: values_from_returns(rng.normal(mu, 0.01, 250))
        for name, mu in (("a", 0.0), ("b", 0.001), ("c", 0.002), ("d", 0.003))
    }
    tests = pairwise_tests(models, confidence=0.9)
    assert [(t.model_a, t.model_b) for t in tests][:3] == [("a", "b"), ("a", "c"), ("a", "d")]
    assert [t.p_value for t in tests] == pytest.approx(holm([t.p_value_raw for t in tests]))
    assert all(t.significant == (t.p_value <= 0.1) for t in tests)
    assert all(t.p_value >= t.p_value_raw and t.sessions == 250 for t in tests)


def test_pairs_use_only_common_sessions() -> None:
    rng = np.random.default_rng(19)
    a = values_from_returns(rng.normal(0.0, 0.01, 100))
    b = values_from_returns(rng.normal(0.0, 0.01, 100)).iloc[40:]
    c = values_from_returns(rng.normal(0.0, 0.01, 100)).iloc[:1]  # one day: nothing in common
    tests = {(t.model_a, t.model_b): t for t in pairwise_tests({"a": a, "b": b, "c": c})}
    assert tests["a", "b"].sessions == 60
    expected = (a.iloc[40:].pct_change() - b.pct_change()).dropna().mean()
    assert tests["a", "b"].mean_difference == pytest.approx(expected)
    assert tests["a", "c"].sessions == 0 and tests["a", "c"].p_value_raw == 1.0


def test_tier_rule() -> None:
    # a ~ b, a != c, a != d, c ~ d: tier 1 = {a, b}, tier 2 = {c, d}.
    pairs = [
        pair("a", "b", False),
        pair("a", "c", True),
        pair("a", "d", True),
        pair("b", "c", True),
        pair("c", "d", False),
    ]
    assert tiers(["a", "b", "c", "d"], pairs) == {"a": 1, "b": 1, "c": 2, "d": 2}
    # Only the leader decides: b is distinguishable from a, c is not, so c outranks b's tier.
    assert tiers(["a", "b", "c"], [pair("a", "b", True), pair("b", "c", True)]) == {
        "a": 1,
        "b": 2,
        "c": 1,
    }
    # Every pair distinguishable: one model per tier, in rank order.
    chain = [pair(x, y, True) for x, y in (("a", "b"), ("a", "c"), ("b", "c"))]
    assert tiers(["c", "a", "b"], chain) == {"c": 1, "a": 2, "b": 3}
    assert tiers([], []) == {}


# --------------------------------------------------------------------------------------------------
# Probabilistic Sharpe ratio


def test_psr_matches_a_hand_computation() -> None:
    r = [0.012, -0.004, 0.007, 0.015, -0.011, 0.003, 0.009, -0.002, 0.001, 0.006]
    n = len(r)
    mean = sum(r) / n
    sr = mean / statistics.stdev(r)  # per-period Sharpe, sample std as in analysis.metrics
    m2 = sum((x - mean) ** 2 for x in r) / n
    skew = sum((x - mean) ** 3 for x in r) / n / m2**1.5
    kurt = sum((x - mean) ** 4 for x in r) / n / m2**2
    denominator = math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    against_zero = NormalDist().cdf(sr * math.sqrt(n - 1) / denominator)
    annual_benchmark = 1.5
    target = annual_benchmark / math.sqrt(P)
    against_benchmark = NormalDist().cdf((sr - target) * math.sqrt(n - 1) / denominator)

    assert probabilistic_sharpe(r) == pytest.approx(against_zero, rel=1e-12)
    assert probabilistic_sharpe(np.array(r), annual_benchmark) == pytest.approx(
        against_benchmark, rel=1e-12
    )
    assert 0.5 < against_benchmark < against_zero < 1.0
    # Against its own Sharpe the probability is one half.
    own = sr * math.sqrt(P)
    assert probabilistic_sharpe(pd.Series(r), own) == pytest.approx(0.5)
    assert probabilistic_sharpe([0.01, 0.01, 0.01, 0.01]) is None  # no dispersion
    assert probabilistic_sharpe([0.01, 0.02]) is None  # too short


def test_psr_uses_the_risk_free_rate_like_the_sharpe_ratio() -> None:
    r = np.random.default_rng(23).normal(0.0008, 0.01, 250)
    values = values_from_returns(r)
    sharpe = metrics.sharpe_ratio(values, risk_free_rate=0.05)
    assert probabilistic_sharpe(r, sharpe, risk_free_rate=0.05) == pytest.approx(0.5)


def test_psr_against_the_benchmark_takes_the_benchmark_sharpe_over_the_model_window() -> None:
    rng = np.random.default_rng(31)
    values = values_from_returns(rng.normal(0.001, 0.01, 120))
    bench = values_from_returns(rng.normal(0.0005, 0.01, 200), start=400.0)  # runs on after
    r = values.to_numpy()[1:] / values.to_numpy()[:-1] - 1.0
    stats = model_statistics(values, bench, resamples=100)
    bench_sharpe = metrics.sharpe_ratio(bench.iloc[:121])
    assert stats.psr_vs_benchmark == pytest.approx(probabilistic_sharpe(r, bench_sharpe))
    assert stats.psr == pytest.approx(probabilistic_sharpe(r))
    assert model_statistics(values, resamples=100).psr_vs_benchmark is None


# --------------------------------------------------------------------------------------------------
# Trials and the whole ranking


def test_trial_interval_is_the_student_t_interval() -> None:
    interval = trial_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.7764451051977987 * statistics.stdev([1, 2, 3, 4, 5]) / math.sqrt(5)  # t(4, 0.975)
    assert interval.estimate == 3.0 and interval.method == "student-t" and interval.samples == 5
    assert (interval.lower, interval.upper) == pytest.approx((3.0 - half, 3.0 + half))
    single = trial_interval([0.2], confidence=0.9)
    assert (single.estimate, single.lower, single.upper) == (0.2, None, None)
    assert trial_interval([0.1, 0.1, 0.1]).lower == pytest.approx(0.1)
    with pytest.raises(ValueError):
        trial_interval([])


def test_ranking_statistics_puts_everything_together() -> None:
    rng = np.random.default_rng(29)
    values = {f"m{i}": values_from_returns(rng.normal(0.0005 * i, 0.01, 120)) for i in range(3)}
    bench = values_from_returns(rng.normal(0.0003, 0.01, 120), start=400.0)
    ranked = sorted(values, key=lambda m: values[m].iloc[-1], reverse=True)
    result = ranking_statistics(values, ranked, bench, resamples=300, seed=1)
    assert set(result.models) == set(values) and len(result.pairs) == 3
    assert set(result.tiers) == set(values) and result.tiers[ranked[0]] == 1
    for name, stats in result.models.items():
        assert stats.intervals == metric_intervals(values[name], bench, resamples=300, seed=1)
        assert stats == model_statistics(values[name], bench, resamples=300, seed=1)
        assert stats.psr is not None and stats.psr_vs_benchmark is not None
        assert isinstance(stats.intervals["excess_return"], Interval)
    json.loads(result.model_dump_json())


def test_a_handful_of_sessions_is_never_significant() -> None:
    days = pd.bdate_range("2025-01-02", periods=4)
    rising = pd.Series([100.0, 110.0, 121.0, 133.1], index=days)
    falling = pd.Series([100.0, 90.0, 81.0, 72.9], index=days)
    (pair,) = pairwise_tests({"up": rising, "down": falling})
    assert pair.p_value == 1.0 and not pair.significant
    assert tiers(["up", "down"], [pair]) == {"up": 1, "down": 1}
