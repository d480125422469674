"""What repeated trials cost: one trial against three through the backtest flow, in one run.

    .venv/bin/python benchmarks/trial_scaling.py [--days 20] [--trials 3] [--repeat 1]

Runs 20 trading days x 5 built-in strategy models (the offline default's three plus a faster
momentum and a second random trader, on the synthetic market) through the Prefect flow against a
local Prefect server, which the script starts unless PREFECT_API_URL points at one: once with one
trial, once with `--trials` trials (5 x 3 model-day tasks a day under the default concurrency
bound), each in a fresh store. A short warm-up run comes first, so neither measured run pays the
process's first imports and connections. With `--repeat N` the pair runs N times, alternating,
and the medians are shown. It prints each run's wall time, the span of its trading days as
Prefect saw them, the fixed rest (plan, price load, leaderboard, report), and the ratios; the
target is a ratio of at most 3.3 for 3 trials (the model-day work alone is 3 times as much).
"""

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.flow_throughput import day_loop_seconds, start_server  # noqa: E402
from deployments.prefect_settings import apply_local_defaults  # noqa: E402

MODELS = [
    {"name": "equal-weight", "strategy": "equal-weight"},
    {"name": "momentum", "strategy": "momentum", "params": {"top_k": 10, "lookback": 20}},
    {"name": "random", "strategy": "random", "params": {"seed": 1}},
    {"name": "momentum-fast", "strategy": "momentum", "params": {"top_k": 5, "lookback": 5}},
    {"name": "random-2", "strategy": "random", "params": {"seed": 2}},
]


def write_config(folder: Path) -> Path:
    config = {
        "name": "trial-bench",
        "universe": "nasdaq100",
        "market": {"source": "synthetic", "seed": 7, "start": "2024-10-01", "end": "2025-06-30"},
        "models": MODELS,
    }
    path = folder / "trial-bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def through_flow(url: str, config_path: Path, days: list, trials: int) -> tuple[float, float]:
    """Seconds for the whole flow run and for its trading days alone, in a fresh store `url`."""
    from sqlmodel import Session

    from configs.loader import load_config
    from flows.backtest import backtest
    from market_data.provision import ensure_market
    from models.engine import get_engine

    os.environ["DATABASE_URL"] = url
    with Session(get_engine(url)) as session:  # the market is provided before the clock starts
        ensure_market(session, load_config(config_path))
    started = time.perf_counter()
    state = asyncio.run(
        backtest(
            start=days[0], end=days[-1], config=str(config_path), trials=trials, return_state=True
        )
    )
    elapsed = time.perf_counter() - started
    assert state.name == "Completed", state
    expected = f"{len(days) * len(MODELS) * trials} model-day(s)"
    assert expected in (state.message or ""), state.message
    return elapsed, asyncio.run(day_loop_seconds(state.state_details.flow_run_id))


def measure(folder: Path, config_path: Path, days: list, trials: int, repeat: int) -> dict:
    """Wall and day-loop seconds of each trial count, `repeat` times, alternating."""
    through_flow(f"sqlite:///{folder / 'warm-up.db'}", config_path, days[:2], 1)
    timings: dict[int, list[tuple[float, float]]] = {1: [], trials: []}
    for round_number in range(repeat):
        for count in (1, trials):
            store = f"sqlite:///{folder / f'trials-{count}-{round_number}.db'}"
            timings[count].append(through_flow(store, config_path, days, count))
    return {
        count: (
            statistics.median(wall for wall, _ in runs),
            statistics.median(loop for _, loop in runs),
        )
        for count, runs in timings.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=1)
    arguments = parser.parse_args()
    apply_local_defaults()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="aitrader-trials-") as tmp:
        folder = Path(tmp)
        os.environ["PREFECT_HOME"] = str(folder / "client-home")
        config_path = write_config(folder)
        server = None
        if not os.environ.get("PREFECT_API_URL"):
            server, os.environ["PREFECT_API_URL"] = start_server(folder, "sqlite")
        try:
            from configs.loader import load_config
            from market_data.calendar import trading_days

            market = load_config(config_path).market
            days = trading_days(market.start, market.end)[-arguments.days :]
            results = measure(folder, config_path, days, arguments.trials, arguments.repeat)
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    report(results, len(days), arguments.trials, arguments.repeat)


def report(results: dict, days: int, trials: int, repeat: int) -> None:
    models = len(MODELS)
    shown = "" if repeat == 1 else f" (medians of {repeat})"
    print(f"{days} trading days x {models} built-in models, 1 trial against {trials}{shown}")
    print(f"{'trials':>6}  {'model-days':>10}  {'flow run':>9}  {'trading days':>12}  {'fixed':>7}")
    for count, (wall, loop) in results.items():
        print(
            f"{count:>6}  {days * models * count:>10}  {wall:>8.2f}s  {loop:>11.2f}s  "
            f"{wall - loop:>6.2f}s"
        )
    (wall_1, loop_1), (wall_n, loop_n) = results[1], results[trials]
    target = 1.1 * trials
    verdict = "within" if wall_n / wall_1 <= target else "over"
    print(f"ratio, flow run      {wall_n / wall_1:5.2f}  ({verdict} the target {target:.1f})")
    print(f"ratio, trading days  {loop_n / loop_1:5.2f}")


if __name__ == "__main__":
    main()
