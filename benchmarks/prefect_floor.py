"""What Prefect itself costs a trading day: day subflows that do nothing, against the same server.

    .venv/bin/python benchmarks/prefect_floor.py [--days 20] [--server-db sqlite|postgres]

A parent flow runs `--days` subflows in turn, as the backtest flow runs its trading days; each
subflow is named after its day (as the backtest's are) and fans out 5 tasks that return at once
(the backtest's model-days, minus their work). The script starts a local Prefect server with
this project's settings (`aitrader server`, as benchmarks/flow_throughput.py does) unless
PREFECT_API_URL points at one, and prints the milliseconds per day subflow with no task, with 5,
and with 5 cached as the model-day task is (a cache key each, the result kept for the cache): the
floor under the backtest's "orchestration per day" that no change of ours can cross while each
trading day is a subflow with a task run per model-day.
"""

import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import flow_throughput  # noqa: E402

MODELS = 5
# What each day subflow fans out: (tasks, whether they are cached as the model-day task is).
KINDS = {
    "no task": (0, False),
    f"{MODELS} tasks": (MODELS, False),
    f"{MODELS} cached tasks": (MODELS, True),
}
RUN = os.getpid()  # fresh cache keys for each run of the script


def floor_flows():
    """The parent flow and its day subflow, defined after the settings are in place."""
    from prefect import flow, task

    @task
    async def model_day(number: int, index: int) -> int:
        return index

    # As the backtest's model-day task: a cache key of its own, its result kept for the cache.
    @task(cache_key_fn=lambda _, p: f"floor-{RUN}-{p['number']}-{p['index']}")
    async def cached_model_day(number: int, index: int) -> int:
        return index

    @flow(flow_run_name="day {number}")
    async def day(number: int, tasks: int, cached: bool) -> int:
        one = cached_model_day if cached else model_day
        return sum(await asyncio.gather(*(one(number, i) for i in range(tasks))))

    @flow
    async def days(count: int, tasks: int, cached: bool) -> list[float]:
        spans = []
        for number in range(count):
            started = time.perf_counter()
            await day(number, tasks, cached)
            spans.append(time.perf_counter() - started)
        return spans

    return days


def main() -> None:
    arguments = flow_throughput.server_benchmark_parser(__doc__).parse_args()
    flow_throughput.project_settings()
    with tempfile.TemporaryDirectory(prefix="aitrader-floor-") as tmp:
        os.environ["PREFECT_HOME"] = str(Path(tmp) / "client-home")
        server = None
        if not os.environ.get("PREFECT_API_URL"):
            server, os.environ["PREFECT_API_URL"] = flow_throughput.start_server(
                Path(tmp), arguments.server_db
            )
        try:
            days = floor_flows()
            results: dict[str, list[float]] = {kind: [] for kind in KINDS}
            for _ in range(2):  # in turns, so every kind sees the same server
                for kind, (tasks, cached) in KINDS.items():
                    results[kind] += asyncio.run(days(arguments.days, tasks, cached))
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    print(
        f"2 x {arguments.days} day subflows of each kind, Prefect server on {arguments.server_db}"
    )
    for kind, spans in results.items():
        print(
            f"day subflow, {kind:<20} median {1000 * statistics.median(spans):5.0f} ms, "
            f"mean {1000 * statistics.mean(spans):5.0f} ms"
        )


if __name__ == "__main__":
    main()
