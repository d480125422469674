"""Flow overhead per hourly session against per day of a daily run, measured in the same run.

    .venv/bin/python benchmarks/session_overhead.py [--days 5] [--pair nasdaq100|sse50]

Runs the real Prefect backtest flow twice, on the same trading days of the shared real data and
with the same built-in strategy models (equal-weight, momentum, random): once on a daily market
(`nasdaq100`, or `sse50`) and once on its hourly twin (`nasdaq100-hourly`, six sessions a day, or
`sse50-hourly`, four), each in a fresh SQLite store, against a local Prefect server that the script
starts unless PREFECT_API_URL points at one. A one-day warm-up run comes first.

Method. Every agent conversation (`agents.session.converse`, one per model-day of a daily market,
one per model-session of an hourly one) is timed in-process, and so is the flow's loop over its
trading-day subflows (`flows.backtest._simulate_days`). Models run one at a time
(`max_concurrent_models: 1`), so no conversation hides another's overhead and the time inside
conversations is the union of their intervals. The overhead is what the loop spends outside them:
subflow and task runs, claims, heartbeats, the session's context and server, persistence and
valuation. It prints the daily run's overhead per trading day, the hourly run's per session, and
their ratio (target: below 0.5), then the same from whole flow runs (plan, price load,
leaderboard and report included), amortised the same way.
"""

import argparse
import asyncio
import functools
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.flow_throughput import start_server  # noqa: E402
from deployments.prefect_settings import apply_local_defaults  # noqa: E402

SHARED_DATA = Path(os.environ.get("AITRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
MODELS = [
    {"name": "equal-weight", "strategy": "equal-weight"},
    {"name": "momentum", "strategy": "momentum", "params": {"top_k": 10, "lookback": 20}},
    {"name": "random", "strategy": "random", "params": {"seed": 1}},
]


@dataclass(frozen=True)
class Pair:
    """A daily market, its hourly twin, the shared files both need, and the last day to run."""

    daily: str
    hourly: str
    files: tuple[str, ...]
    last_day: date


PAIRS = {
    "nasdaq100": Pair(
        "nasdaq100",
        "nasdaq100-hourly",
        ("nasdaq100_daily", "nasdaq100_hourly/merged.jsonl"),
        date(2025, 10, 30),  # the daily files' last day
    ),
    "sse50": Pair(
        "sse50",
        "sse50-hourly",
        (
            "sse50_daily/merged.jsonl",
            "sse50_daily/index_daily_sse_50.json",
            "sse50_hourly/merged_hourly.jsonl",
        ),
        date(2025, 11, 18),  # the day before the newest, open-only bars
    ),
}


@dataclass
class Timings:
    """Intervals (perf_counter seconds) of the conversations and of the flow's day loop."""

    conversations: list[tuple[float, float]] = field(default_factory=list)
    day_loop: float = 0.0

    def inside(self) -> float:
        """Seconds inside at least one conversation (the union of their intervals)."""
        total, end = 0.0, float("-inf")
        for start, stop in sorted(self.conversations):
            if stop > end:
                total += stop - max(start, end)
                end = stop
        return total


TIMINGS = Timings()


def timed(func: Callable[..., Any], record: Callable[[float, float], None]) -> Callable[..., Any]:
    """The coroutine function `func`, also telling `record` when each call started and stopped."""

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await func(*args, **kwargs)
        finally:
            record(started, time.perf_counter())

    return wrapper


def instrument() -> None:
    """Time every conversation and the flow's loop over its trading days, in this process."""
    import agents.session
    import flows.backtest

    def conversation(started: float, stopped: float) -> None:
        TIMINGS.conversations.append((started, stopped))

    def day_loop(started: float, stopped: float) -> None:
        TIMINGS.day_loop += stopped - started

    agents.session.converse = timed(agents.session.converse, conversation)
    flows.backtest._simulate_days = timed(flows.backtest._simulate_days, day_loop)


def prepare_template(folder: Path, pair: Pair) -> Path:
    """A migrated store holding both markets' prices, copied for every run."""
    from sqlmodel import Session

    from market_data.aitrader_files import import_prices
    from models.engine import create_store_engine, upgrade

    path = folder / "template.db"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    with Session(engine) as session:
        for name in pair.files:
            import_prices(session, SHARED_DATA / name)
        session.commit()
    engine.dispose()
    return path


def write_config(folder: Path, market: str, name: str) -> Path:
    config = {
        "name": name,
        "market": {"name": market, "source": "files"},
        "agent": {"max_concurrent_models": 1, "max_steps": 30},
        "models": MODELS,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Measured:
    """One flow run: its wall time, its day loop's, and the time inside conversations."""

    wall: float
    day_loop: float
    inside: float
    conversations: int


def through_flow(folder: Path, template: Path, config: Path, days: list[date]) -> Measured:
    """Run the backtest flow over `days` in a fresh copy of the template store."""
    from flows.backtest import backtest

    store = folder / f"{config.stem}-{len(days)}-{time.monotonic_ns()}.db"
    shutil.copy(template, store)
    os.environ["DATABASE_URL"] = f"sqlite:///{store}"
    TIMINGS.conversations.clear()
    TIMINGS.day_loop = 0.0
    started = time.perf_counter()
    state = asyncio.run(
        backtest(start=days[0], end=days[-1], config=str(config), return_state=True)
    )
    wall = time.perf_counter() - started
    assert state.name == "Completed", (state.name, state.message)
    return Measured(wall, TIMINGS.day_loop, TIMINGS.inside(), len(TIMINGS.conversations))


def trading_days(market: str, last: date, count: int) -> list[date]:
    from configs.markets import load_market
    from market_data.calendar import calendar

    is_open = calendar(load_market(market).calendar).is_trading_day
    days, day = [], last
    while len(days) < count:
        if is_open(day):
            days.append(day)
        day = date.fromordinal(day.toordinal() - 1)
    return sorted(days)


def measure(folder: Path, pair: Pair, count: int) -> tuple[Measured, Measured, int]:
    """The daily and the hourly runs over the same days, after a warm-up; sessions a day."""
    from configs.markets import load_market

    template = prepare_template(folder, pair)
    daily = write_config(folder, pair.daily, f"overhead-{pair.daily}")
    hourly = write_config(folder, pair.hourly, f"overhead-{pair.hourly}")
    warm_up, *days = trading_days(pair.daily, pair.last_day, count + 1)
    # A warm-up pays the first imports and connections, on another day and under another name:
    # Prefect caches a model-day's result by its portfolio, day and starting book.
    through_flow(folder, template, write_config(folder, pair.daily, "warm-up"), [warm_up])
    return (
        through_flow(folder, template, daily, days),
        through_flow(folder, template, hourly, days),
        len(load_market(pair.hourly).sessions),
    )


def report(pair: Pair, days: int, daily: Measured, hourly: Measured, sessions: int) -> None:
    models = len(MODELS)
    print(
        f"{days} trading days x {models} built-in models, one at a time: {pair.daily} "
        f"({daily.conversations} conversations) against {pair.hourly} "
        f"({sessions} sessions a day, {hourly.conversations} conversations)"
    )
    print(f"{'run':<18} {'flow run':>9} {'day loop':>9} {'in conversations':>17}")
    for name, run in ((pair.daily, daily), (pair.hourly, hourly)):
        print(f"{name:<18} {run.wall:>8.2f}s {run.day_loop:>8.2f}s {run.inside:>16.2f}s")
    per_day = (daily.day_loop - daily.inside) / days
    per_session = (hourly.day_loop - hourly.inside) / (days * sessions)
    ratio = per_session / per_day
    verdict = "within" if ratio < 0.5 else "over"
    print(f"overhead per trading day, daily run      {1000 * per_day:7.0f} ms")
    print(f"overhead per session, hourly run         {1000 * per_session:7.0f} ms")
    print(f"ratio session / day                      {ratio:7.2f}  ({verdict} the target 0.5)")
    whole_day = (daily.wall - daily.inside) / days
    whole_session = (hourly.wall - hourly.inside) / (days * sessions)
    print(
        f"whole flow run, fixed costs included:    {1000 * whole_day:7.0f} ms a day, "
        f"{1000 * whole_session:.0f} ms a session, ratio {whole_session / whole_day:.2f}"
    )
    print(
        f"conversation per model-day (daily)      {1000 * daily.inside / (days * models):7.0f} ms"
        f";  per model-session (hourly) "
        f"{1000 * hourly.inside / (days * sessions * models):.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--pair", choices=sorted(PAIRS), default="nasdaq100")
    arguments = parser.parse_args()
    pair = PAIRS[arguments.pair]
    apply_local_defaults()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    instrument()
    with tempfile.TemporaryDirectory(prefix="aitrader-overhead-") as tmp:
        folder = Path(tmp)
        os.environ["PREFECT_HOME"] = str(folder / "client-home")
        server = None
        if not os.environ.get("PREFECT_API_URL"):
            server, os.environ["PREFECT_API_URL"] = start_server(folder, "sqlite")
        try:
            daily, hourly, sessions = measure(folder, pair, arguments.days)
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    report(pair, arguments.days, daily, hourly, sessions)


if __name__ == "__main__":
    main()
