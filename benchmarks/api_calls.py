"""The Prefect API calls a backtest makes, per trading day: which, how many, how long each took.

    .venv/bin/python benchmarks/api_calls.py [--days 20] [--server-db sqlite|postgres]

Runs the flow of `benchmarks/flow_throughput.py` (5 built-in models on the synthetic market, a
local Prefect server the script starts) with Prefect's HTTP client wrapped, and prints each
endpoint's calls per trading day, its mean latency and its share of the flow's API time. The run's
own calls (start, artifacts, finish) are counted in the total and show as fractions of a call a
day. It answers "where does a trading day's orchestration go" (docs/performance.md).
"""

import collections
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import flow_throughput  # noqa: E402

Call = tuple[str, str, float]  # method, path with ids blanked, milliseconds
IDENTIFIER = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def recording_calls(calls: list[Call]) -> None:
    """Wrap every async httpx client (Prefect's included) so each request is timed into `calls`."""
    send = httpx.AsyncClient.send

    async def timed_send(self, request, *args, **kwargs):
        started = time.perf_counter()
        try:
            return await send(self, request, *args, **kwargs)
        finally:
            path = IDENTIFIER.sub("{id}", request.url.path)
            calls.append((request.method, path, (time.perf_counter() - started) * 1000))

    httpx.AsyncClient.send = timed_send


def main() -> None:
    arguments = flow_throughput.server_benchmark_parser(__doc__).parse_args()
    flow_throughput.project_settings()
    calls: list[Call] = []
    with tempfile.TemporaryDirectory(prefix="aitrader-api-calls-") as tmp:
        folder = Path(tmp)
        os.environ["PREFECT_HOME"] = str(folder / "client-home")
        config_path = flow_throughput.write_config(folder)
        server, os.environ["PREFECT_API_URL"] = flow_throughput.start_server(
            folder, arguments.server_db
        )
        try:
            from configs.loader import load_config
            from market_data.calendar import trading_days

            market = load_config(config_path).market
            days = trading_days(market.start, market.end)[-arguments.days :]
            recording_calls(calls)
            url = f"sqlite:///{folder / 'flow.db'}"
            flow, span = flow_throughput.through_flow(url, config_path, days)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    report(calls, len(days), flow, span, arguments.server_db)


def report(calls: list[Call], days: int, flow: float, span: float, database: str) -> None:
    by_endpoint: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for method, path, elapsed in calls:
        by_endpoint[method, path].append(elapsed)
    total = sum(elapsed for _, _, elapsed in calls)
    print(
        f"{days} trading days x {len(flow_throughput.MODELS)} built-in models, Prefect server on "
        f"{database}: flow {flow:.2f} s, the days' span {span:.2f} s, {len(calls)} API calls "
        f"taking {total / 1000:.2f} s in all"
    )
    print(f"{'calls/day':>9} {'mean ms':>8} {'share':>6}  endpoint")
    ranked = sorted(by_endpoint.items(), key=lambda item: -sum(item[1]))
    for (method, path), times in ranked:
        share = sum(times) / total
        print(
            f"{len(times) / days:9.2f} {sum(times) / len(times):8.1f} {share:6.1%}  {method} {path}"
        )
    print(f"{len(calls) / days:9.2f} calls and {total / days:.0f} ms of API time per trading day")


if __name__ == "__main__":
    main()
