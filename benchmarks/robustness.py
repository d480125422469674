"""CPU time of the robustness statistics beside the leaderboard's, measured in the same run.

    .venv/bin/python benchmarks/robustness.py [--models 10] [--sessions 250] [--window 20]
        [--repeats 3]

Simulates the value series of ``benchmarks/ranking_statistics.py`` (``--models`` models over
``--sessions`` sessions, a common market factor, a small edge each) and times, on one core (threads
pinned before numpy loads):

1. the leaderboard's statistics (``analysis.statistics.ranking_statistics``; 2,000 resamples
   for the Sortino and max drawdown intervals): the baseline;
2. ``analysis.robustness.window_robustness`` with its defaults: the point-estimate ranking of
   every rolling window (every start date), regimes, tiers of the non-overlapping windows and of
   the first N sessions (analytic EWC t-tests, nothing drawn), the deflated Sharpe;
3. what tiers at *every* start date would cost instead, timed on a sample of windows and scaled.

The target (issue 20): 1 and 2 together under 2 s of CPU. Exit status 1 if over it.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core: set before numpy loads its BLAS

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ranking_statistics import simulate, time_it  # noqa: E402

from analysis.robustness import (  # noqa: E402
    Robustness,
    RobustnessOptions,
    _tiers_of,
    window_robustness,
)
from analysis.statistics import ranking_statistics  # noqa: E402

TARGET_SECONDS = 2.0
SAMPLED_WINDOWS = 12


def every_start_tiers(values: dict, sessions: int, options: RobustnessOptions) -> float:
    """CPU seconds that tiers at every start date would take: ``SAMPLED_WINDOWS`` windows
    spread over the run, timed, scaled to all of them."""
    import pandas as pd

    frame = pd.DataFrame(values)
    starts = np.linspace(0, sessions - options.window, SAMPLED_WINDOWS).astype(int)
    began = time.process_time()
    for start in starts:
        window = frame.iloc[start : start + options.window + 1]
        order = list(window.iloc[-1].div(window.iloc[0]).sort_values(ascending=False).index)
        _tiers_of(frame, order, int(start), options.window, options)
    per_window = (time.process_time() - began) / SAMPLED_WINDOWS
    return per_window * (sessions - options.window + 1)


def main() -> int:
    """Run the benchmark and print the times, their sum against the target, and the shares."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=250)
    parser.add_argument("--window", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    values, bench = simulate(args.models, args.sessions)
    ranked = sorted(values, key=lambda m: values[m].iloc[-1] / values[m].iloc[0], reverse=True)
    options = RobustnessOptions(window=args.window)
    board_cpu, board_wall, _ = time_it(
        lambda: ranking_statistics(values, ranked, bench, resamples=2000, seed=0), args.repeats
    )
    robust_cpu, robust_wall, result = time_it(
        lambda: window_robustness(values, bench, options), args.repeats
    )
    assert isinstance(result, Robustness)
    total = board_cpu + robust_cpu
    verdict = "PASS" if total < TARGET_SECONDS else "FAIL"
    print(
        f"{args.models} models x {args.sessions} sessions, windows of {args.window}: "
        f"{result.windows} rolling windows, {result.tier_windows} tier windows, "
        f"{len(result.rows[0].first_sessions)} first-N "
        f"rankings, deflated Sharpe over {result.trials} trials (median of {args.repeats})"
    )
    print(f"leaderboard statistics (baseline): {board_cpu:.3f} s CPU ({board_wall:.3f} s wall)")
    print(
        f"robustness: {robust_cpu:.3f} s CPU ({robust_wall:.3f} s wall), "
        f"{robust_cpu / board_cpu:.2f}x the leaderboard's"
    )
    print(f"  together: {total:.3f} s CPU; target < {TARGET_SECONDS:.1f} s on one core: {verdict}")
    every = every_start_tiers(values, args.sessions, options)
    print(
        f"tiers at every start date instead: ~{every:.1f} s CPU (from {SAMPLED_WINDOWS} timed "
        f"windows), {every / robust_cpu:.1f}x all of the robustness statistics"
    )
    for row in result.rows:
        print(
            f"  {row.model}: rank {row.rank}, first in {row.share_first:.0%} of windows, "
            f"tier 1 in {row.share_tier1:.0%}, deflated Sharpe {row.deflated_sharpe:.3f}"
        )
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    raise SystemExit(main())
