"""Model-days per second through the backtest flow, against a plain loop measured in the same run.

    .venv/bin/python benchmarks/flow_throughput.py [--days 20] [--server-db sqlite|postgres]

Runs 20 trading days x 5 built-in strategy models (the synthetic market, offline) twice from
fresh stores: once as a plain asyncio loop over `run_model_day` (no Prefect), once through the
Prefect flow (one subflow per day, one task per model-day) against a local Prefect server, which
the script starts unless PREFECT_API_URL points at one. It prints both rates, their ratio, the
orchestration overhead per trading day, and the start-up time of the ephemeral server that
`aitrader backtest` uses when no server is configured.
"""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployments.prefect_settings import apply_local_defaults  # noqa: E402

MODELS = [
    {"name": "equal-weight", "strategy": "equal-weight"},
    {"name": "momentum", "strategy": "momentum"},
    {"name": "momentum-fast", "strategy": "momentum", "params": {"top_k": 5, "lookback": 5}},
    {"name": "random-1", "strategy": "random", "params": {"seed": 1}},
    {"name": "random-2", "strategy": "random", "params": {"seed": 2}},
]


def write_config(folder: Path) -> Path:
    config = {
        "name": "bench",
        "universe": "nasdaq100",
        "market": {"source": "synthetic", "seed": 7, "start": "2024-10-01", "end": "2025-06-30"},
        "agent": {"max_concurrent_models": 5},
        "models": MODELS,
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_server(folder: Path, database: str) -> tuple[subprocess.Popen, str]:
    """`aitrader server` on a free port (Prefect on SQLite, or on the local PostgreSQL)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PREFECT_HOME": str(folder / "server-home")}
    if database == "postgres":
        name = f"prefect_bench_{os.getpid()}"
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
            check=True,
        )
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        )
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments", "server", "--port", str(port), "--no-ui"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the Prefect server did not start")


def prepare_store(url: str, config_path: Path):
    """A fresh store with the synthetic market in it, and the plan of the benchmark's days."""
    from sqlmodel import Session

    from configs.loader import load_config
    from market_data.provision import ensure_market
    from models.engine import get_engine

    config = load_config(config_path)
    engine = get_engine(url)
    with Session(engine) as session:
        ensure_market(session, config)
    return engine, config


async def plain_loop(url: str, config_path: Path, days: list) -> float:
    """The same model-days with no Prefect at all: a loop over days, models concurrent."""
    from sqlmodel import Session

    from agents.session import run_model_day
    from agents.types import ModelDayRequest
    from flows.plan import plan_backtest
    from models.prices import PriceBook
    from models.tables import Run

    engine, config = prepare_store(url, config_path)
    with Session(engine, expire_on_commit=False) as session:
        plan = plan_backtest(session, config, days[0], days[-1])
        run = Run(name="plain", models=[m.model.name for m in plan.models])
        session.add(run)
        session.commit()
        prices = PriceBook.load(session, market=plan.market)
    started = time.perf_counter()
    for day in days:
        requests = [
            ModelDayRequest(
                run_id=run.id,
                model=m.model,
                day=day,
                portfolio=m.portfolio,
                universe=plan.universe.symbols,
            )
            for m in plan.models
        ]
        results = await asyncio.gather(*(run_model_day(engine, r, prices) for r in requests))
        assert all(r.status == "completed" for r in results), results
    return time.perf_counter() - started


def through_flow(url: str, config_path: Path, days: list) -> tuple[float, float]:
    """Seconds for the whole flow run, and for its trading days alone (as Prefect saw them)."""
    from flows.backtest import backtest

    os.environ["DATABASE_URL"] = url
    prepare_store(url, config_path)
    started = time.perf_counter()
    state = asyncio.run(
        backtest(start=days[0], end=days[-1], config=str(config_path), return_state=True)
    )
    elapsed = time.perf_counter() - started
    assert state.name == "Completed", state
    return elapsed, asyncio.run(day_loop_seconds(state.state_details.flow_run_id))


async def day_loop_seconds(flow_run_id) -> float:
    """From the first trading-day subflow's start to the last one's end, read over the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    async with get_client() as client:
        days = await client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])
            )
        )
    return (max(d.end_time for d in days) - min(d.start_time for d in days)).total_seconds()


def ephemeral_startup(folder: Path) -> tuple[float, float]:
    """Seconds to start the ephemeral server: on a fresh Prefect home, then on a migrated one."""
    code = (
        "import time\n"
        "from prefect.server.api.server import SubprocessASGIServer\n"
        "t = time.perf_counter(); s = SubprocessASGIServer(); s.start(timeout=180)\n"
        "print(time.perf_counter() - t); s.stop()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(folder / "ephemeral-home")
    timings = []
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        timings.append(float(out.stdout.strip().splitlines()[-1]))
    return timings[0], timings[1]


def server_benchmark_parser(doc: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that run flows against a server: `--days`, `--server-db`."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--server-db", choices=["sqlite", "postgres"], default="sqlite")
    return parser


def project_settings() -> None:
    """The project's Prefect settings, its run logs quiet (before Prefect is imported)."""
    apply_local_defaults()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def main() -> None:
    parser = server_benchmark_parser(__doc__)
    parser.add_argument("--skip-ephemeral", action="store_true")
    arguments = parser.parse_args()
    project_settings()
    with tempfile.TemporaryDirectory(prefix="aitrader-bench-") as tmp:
        folder = Path(tmp)
        os.environ["PREFECT_HOME"] = str(folder / "client-home")
        config_path = write_config(folder)
        server = None
        if not os.environ.get("PREFECT_API_URL"):
            server, os.environ["PREFECT_API_URL"] = start_server(folder, arguments.server_db)
        try:
            from configs.loader import load_config
            from market_data.calendar import trading_days

            market = load_config(config_path).market
            days = trading_days(market.start, market.end)[-arguments.days :]
            models = len(MODELS)
            plain = asyncio.run(plain_loop(f"sqlite:///{folder / 'plain.db'}", config_path, days))
            flow, day_loop = through_flow(f"sqlite:///{folder / 'flow.db'}", config_path, days)
            startup = None if arguments.skip_ephemeral else ephemeral_startup(folder)
        finally:
            if server is not None:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
    count = len(days) * models
    print(
        f"{len(days)} trading days x {models} built-in models = {count} model-days; "
        f"Prefect server on {arguments.server_db}"
    )
    print(f"plain loop (no Prefect)    {plain:7.2f} s   {count / plain:6.1f} model-days/s")
    print(f"backtest flow              {flow:7.2f} s   {count / flow:6.1f} model-days/s")
    print(f"ratio flow / plain         {(count / flow) / (count / plain):7.2f}")
    per_day = (day_loop - plain) / len(days)
    print(
        f"orchestration per day      {1000 * per_day:7.0f} ms  (the days' span in Prefect "
        "minus the plain loop, per day)"
    )
    fixed = flow - day_loop
    print(f"fixed per run              {fixed:7.2f} s   (plan, price load, leaderboard, report)")
    if startup:
        print(
            f"ephemeral server start-up  {startup[0]:7.2f} s cold (migrations), "
            f"{startup[1]:.2f} s warm"
        )


if __name__ == "__main__":
    main()
