"""Time of the leaderboard's statistics, against arch's per-resample loop measured in the same run.

    .venv/bin/python benchmarks/ranking_statistics.py [--models 10] [--sessions 250]
        [--resamples 2000] [--repeats 3] [--skip-baseline]

Simulates ``--models`` value series over ``--sessions`` sessions (a common market factor plus
noise and a small edge per model) and a benchmark, then times
``analysis.statistics.ranking_statistics``: every metric's interval for every model (EWC t
intervals of the return metrics, Sharpe and excess return; stationary-bootstrap intervals of
Sortino and max drawdown), the PSR against 0 and against the benchmark, every pairwise EWC t-test
with Holm's correction, and the tiers. Threads are pinned to one (before numpy is imported), and
the time is CPU time of this process (wall time is printed too): the target is under 2 s on one
core. The baseline is the all-bootstrap method used before issue 20, done with
``arch.bootstrap.StationaryBootstrap`` (same block-length rule, one resample per Python iteration,
the metrics computed per resample with numpy, every metric and pair resampled); its Sortino and
max-drawdown intervals, still bootstrapped here, are compared with ours as a sanity check. Exit
status 1 if over the target.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy loads its BLAS

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from itertools import combinations  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.statistics import (  # noqa: E402
    RankingStatistics,
    holm,
    optimal_block_length,
    ranking_statistics,
)

TARGET_SECONDS = 2.0
P = 252


def simulate(models: int, sessions: int, seed: int = 7) -> tuple[dict[str, pd.Series], pd.Series]:
    """Value series of ``models`` models and a benchmark over ``sessions`` daily returns."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2025-01-02", periods=sessions + 1)
    market = rng.normal(0.0004, 0.012, sessions)
    edges = np.linspace(0.003, -0.001, models)  # model-0 best: enough spread for several tiers
    values = {}
    for i, edge in enumerate(edges):
        beta = 0.6 + 0.08 * i
        r = edge + beta * market + rng.normal(0.0, 0.008, sessions)
        values[f"model-{i}"] = pd.Series(10_000 * np.cumprod(np.r_[1.0, 1.0 + r]), index=dates)
    bench = pd.Series(400 * np.cumprod(np.r_[1.0, 1.0 + market]), index=dates)
    return values, bench


def time_it(function: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """Median CPU seconds, median wall seconds, and the last result of ``repeats`` calls."""
    cpu, wall, result = [], [], None
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        result = function()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return statistics.median(cpu), statistics.median(wall), result


def _metrics_1d(r: np.ndarray) -> dict[str, float]:
    """The metrics of one resample, as a per-resample loop would compute them (rf = 0)."""
    growth = np.cumprod(1.0 + r)
    std = r.std(ddof=1)
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    peaks = np.maximum(np.maximum.accumulate(growth), 1.0)
    return {
        "cumulative_return": growth[-1] - 1.0,
        "annualized_return": growth[-1] ** (P / len(r)) - 1.0,
        "sharpe_ratio": r.mean() / std * math.sqrt(P) if std > 1e-12 else math.nan,
        "sortino_ratio": r.mean() / downside * math.sqrt(P) if downside > 1e-12 else math.nan,
        "max_drawdown": min(float((growth / peaks - 1.0).min()), 0.0),
        "mean_return": r.mean(),
    }


def baseline(
    values: dict[str, pd.Series], bench: pd.Series, resamples: int
) -> dict[str, dict[str, tuple[float, float]]]:
    """The same statistics with arch's StationaryBootstrap: one Python iteration per resample."""
    from arch.bootstrap import StationaryBootstrap

    bounds: dict[str, dict[str, tuple[float, float]]] = {}
    rb = bench.to_numpy()[1:] / bench.to_numpy()[:-1] - 1.0
    returns = {name: v.to_numpy()[1:] / v.to_numpy()[:-1] - 1.0 for name, v in values.items()}
    for seed, (name, r) in enumerate(returns.items()):
        samples: dict[str, list[float]] = {}
        bs = StationaryBootstrap(optimal_block_length(r), r, seed=seed)
        for (data,), _ in bs.bootstrap(resamples):
            for key, value in _metrics_1d(data).items():
                samples.setdefault(key, []).append(value)
        bs = StationaryBootstrap(optimal_block_length(r - rb), r, rb, seed=seed)
        samples["excess_return"] = [
            float(np.prod(1 + a) - np.prod(1 + b)) for (a, b), _ in bs.bootstrap(resamples)
        ]
        bounds[name] = {k: tuple(np.nanquantile(v, [0.025, 0.975])) for k, v in samples.items()}
    raw = []
    for seed, (a, b) in enumerate(combinations(returns, 2)):
        d = returns[a] - returns[b]
        bs = StationaryBootstrap(optimal_block_length(d), d, seed=seed)
        means = np.array([data[0].mean() for (data,), _ in bs.bootstrap(resamples)])
        raw.append((1 + np.sum(np.abs(means - d.mean()) >= abs(d.mean()))) / (1 + resamples))
    holm(raw)
    return bounds


def compare(ours: RankingStatistics, theirs: dict[str, dict[str, tuple[float, float]]]) -> float:
    """The largest gap between our bootstrap bounds and the baseline's, as a share of our
    interval's width (the t intervals are another method: not compared)."""
    worst = 0.0
    for name, stats in ours.models.items():
        for metric, (low, high) in theirs[name].items():
            interval = stats.intervals[metric]
            if interval.method != "stationary-bootstrap":
                continue
            width = interval.upper - interval.lower
            gap = max(abs(interval.lower - low), abs(interval.upper - high))
            worst = max(worst, gap / width)
    return worst


def main() -> int:
    """Run the benchmark and print the times, the ratio and the tiers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()

    values, bench = simulate(args.models, args.sessions)
    ranked = sorted(values, key=lambda m: values[m].iloc[-1] / values[m].iloc[0], reverse=True)
    pairs = args.models * (args.models - 1) // 2
    print(
        f"{args.models} models x {args.sessions} sessions x {args.resamples} resamples: "
        f"{args.models * 7} intervals, {args.models * 2} PSRs, {pairs} pairwise tests, tiers"
    )
    cpu, wall, result = time_it(
        lambda: ranking_statistics(values, ranked, bench, resamples=args.resamples, seed=0),
        args.repeats,
    )
    assert isinstance(result, RankingStatistics)
    verdict = "PASS" if cpu < TARGET_SECONDS else "FAIL"
    print(f"analysis.statistics: {cpu:.3f} s CPU ({wall:.3f} s wall), median of {args.repeats}")
    print(f"  target < {TARGET_SECONDS:.1f} s on one core: {verdict}")
    print(f"  tiers: {dict(sorted(result.tiers.items(), key=lambda kv: (kv[1], kv[0])))}")
    if not args.skip_baseline:
        base_cpu, base_wall, bounds = time_it(lambda: baseline(values, bench, args.resamples), 1)
        assert isinstance(bounds, dict)
        print(f"arch StationaryBootstrap loop: {base_cpu:.3f} s CPU ({base_wall:.3f} s wall)")
        print(f"  speed-up: {base_cpu / cpu:.1f}x CPU, {base_wall / wall:.1f}x wall")
        gap = compare(result, bounds)
        print(f"  largest Sortino/drawdown bound gap vs ours: {gap:.1%} of the interval width")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
