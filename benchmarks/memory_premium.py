"""Coverage of the memory premium's interval (`analysis.contamination.memory_premium`).

    .venv/bin/python benchmarks/memory_premium.py [--series 2000] [--confidence 0.95]

Simulates one model's daily returns with no memory premium (the same process on both sides of its
cutoff, half the sessions each) for iid normal, Student-t(4) and AR(1) returns with rho = -0.3 and
+0.3, at 22, 60 and 250 sessions, and prints how often the interval contains 0, the truth. The
target: within 93-97 % for a 95 % interval in every cell. Exit status 1 if a cell is outside it.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.contamination import ModelCutoff, memory_premium
from analysis.curves import ModelCurve, RunCurves
from models.tables import Run

LENGTHS = (22, 60, 250)
PROCESSES = ("iid normal", "student-t(4)", "ar(1) -0.3", "ar(1) +0.3")
DAILY_SD = 0.01
DAILY_MEAN = 0.0005
TARGET = (0.93, 0.97)


def returns(process: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` daily returns of `process`, mean DAILY_MEAN."""
    if process == "iid normal":
        return rng.normal(DAILY_MEAN, DAILY_SD, n)
    if process == "student-t(4)":
        return DAILY_MEAN + DAILY_SD * rng.standard_t(4, n) / np.sqrt(2.0)
    rho = -0.3 if "-" in process else 0.3
    shocks = rng.normal(0.0, DAILY_SD, n)
    series = np.empty(n)
    series[0] = shocks[0]
    for t in range(1, n):
        series[t] = rho * series[t - 1] + shocks[t]
    return series + DAILY_MEAN


def coverage(process: str, n: int, series: int, confidence: float, seed: int = 0) -> float:
    """The share of `series` simulated runs whose interval contains 0."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-01-01", periods=n + 1)
    run = Run(name="coverage", models=["m"], start_date=days[0].date(), end_date=days[-1].date())
    cutoff = ModelCutoff(model="m", knowledge_cutoff=days[n // 2].date(), source="config")
    hits = 0
    for _ in range(series):
        values = pd.Series(10_000 * np.cumprod(1 + returns(process, n + 1, rng)), index=days)
        zero = values * 0.0
        curve = ModelCurve("m", 1, values, zero, zero, 0, n, 0, 0.0)
        interval = memory_premium(
            RunCurves(run=run, curves=[curve]), "m", cutoff, confidence=confidence
        )
        hits += interval.lower <= 0.0 <= interval.upper
    return hits / series


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=2000)
    parser.add_argument("--confidence", type=float, default=0.95)
    args = parser.parse_args()
    print(
        f"coverage of a {args.confidence:.0%} memory-premium interval, {args.series} series a cell"
    )
    print(f"{'process':<14}" + "".join(f"{n:>8}" for n in LENGTHS))
    failed = False
    for process in PROCESSES:
        cells = [coverage(process, n, args.series, args.confidence) for n in LENGTHS]
        failed |= any(not TARGET[0] <= c <= TARGET[1] for c in cells)
        print(f"{process:<14}" + "".join(f"{c:>8.1%}" for c in cells), flush=True)
    return 1 if failed and args.confidence == 0.95 else 0


if __name__ == "__main__":
    sys.exit(main())
