"""Per-call latency of the price tool as the agent calls it, next to every layer beneath it.

Rows, all measured in one run on the real NASDAQ-100 daily data (`../shared/data`):
the LangChain tool calling the fastmcp server in-process (the agent's path,
agent_tools/langchain_tools.py; target under 0.5 ms), the same tool over an in-memory MCP client
session (the agent's path before), the raw MCP session round trip, a direct `MarketView` /
`PriceBook` lookup, a SQL query of the store, and the original benchmark's approach:
`merged.jsonl` re-parsed on every lookup, plus a new MCP connection per call.

    .venv/bin/python benchmarks/price_tool_latency.py [--calls 2000] [--original-calls 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from the repo root, without installing

import fastmcp  # noqa: E402
from fastmcp import FastMCP  # noqa: E402
from langchain_mcp_adapters.tools import load_mcp_tools  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlmodel import Session  # noqa: E402

from agent_tools.context import SessionContext  # noqa: E402
from agent_tools.langchain_tools import langchain_tools  # noqa: E402
from agent_tools.servers import build_server  # noqa: E402
from configs.loader import load_universe  # noqa: E402
from market_data.aitrader_files import import_prices  # noqa: E402
from market_data.calendar import is_trading_day  # noqa: E402
from models.book import Portfolio  # noqa: E402
from models.engine import create_store_engine, upgrade  # noqa: E402
from models.prices import DAILY, REAL_MARKET, PriceBook  # noqa: E402
from models.tables import PriceBar  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data"
DAY = date(2025, 10, 15)
HISTORY_SESSIONS = 20
WARMUP = 20

Timed = Callable[[int], Awaitable[None]]


def write_merged_jsonl(daily_dir: Path, path: Path) -> int:
    """An AI-Trader-style merged.jsonl: one line per symbol, open/close renamed buy/sell price."""
    renamed = {"1. open": "1. buy price", "4. close": "4. sell price"}
    lines = []
    for file in sorted(daily_dir.glob("daily_prices_*.json")):
        payload = json.loads(file.read_text())
        series = {
            day: {renamed.get(k, k): v for k, v in bar.items()}
            for day, bar in payload["Time Series (Daily)"].items()
        }
        lines.append(json.dumps({"Meta Data": payload["Meta Data"], "Time Series (Daily)": series}))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def original_get_price(merged: Path, runtime_env: Path, symbol: str, day: str) -> dict[str, Any]:
    """The original lookup: read the runtime file for today, then scan and parse merged.jsonl."""
    today = json.loads(runtime_env.read_text())["TODAY_DATE"]
    with merged.open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            if doc["Meta Data"]["2. Symbol"] != symbol:
                continue
            bar = doc["Time Series (Daily)"].get(day)
            if bar is None:
                return {"error": f"no data for {symbol} on {day}"}
            if day == today:
                return {"symbol": symbol, "date": day, "open": bar["1. buy price"]}
            return {"symbol": symbol, "date": day, **bar}
    return {"error": f"unknown symbol {symbol}"}


def original_server(merged: Path, runtime_env: Path) -> FastMCP:
    server = FastMCP(name="original-local-prices")

    @server.tool
    def get_price_local(symbol: str, date: str) -> dict[str, Any]:
        """The original tool: a file scan per call."""
        return original_get_price(merged, runtime_env, symbol, date)

    return server


def summarize(samples_ns: list[int]) -> tuple[float, float]:
    """Median and p95 in microseconds."""
    ordered = sorted(samples_ns)
    median = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return median / 1e3, p95 / 1e3


async def measure(call: Timed, calls: int) -> list[int]:
    for number in range(min(WARMUP, calls)):
        await call(number)
    samples = []
    for number in range(calls):
        start = time.perf_counter_ns()
        await call(number)
        samples.append(time.perf_counter_ns() - start)
    return samples


# long: one benchmark script body that sets up both stores in one temporary folder and
# prints its table in the order it measures; splitting it would scatter the setup.
async def run(data: Path, calls: int, original_calls: int) -> None:
    logging.getLogger("fastmcp").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="price-latency-") as folder:
        tmp = Path(folder)
        engine = create_store_engine(f"sqlite:///{tmp / 'store.db'}")
        upgrade(engine)
        with Session(engine) as session:
            import_prices(session, data / "nasdaq100_daily")
            session.commit()
            prices = PriceBook.load(session)
        universe = load_universe("nasdaq100")
        context = SessionContext.create(
            run_id=1,
            model="bench",
            portfolio="bench",
            day=DAY,
            universe=universe.symbols,
            prices=prices,
            book=Portfolio(cash=10_000),
            is_session_day=is_trading_day,
        )
        past = [ts.date() for ts in prices.times() if ts.date() < DAY]
        rng = random.Random(7)
        lookups = [(rng.choice(universe.symbols), rng.choice(past)) for _ in range(4096)]

        def lookup(number: int) -> tuple[str, date]:
            return lookups[number % len(lookups)]

        merged, runtime_env = tmp / "merged.jsonl", tmp / "runtime_env.json"
        lines = write_merged_jsonl(data / "nasdaq100_daily", merged)
        merged_mb = merged.stat().st_size / 1e6
        runtime_env.write_text(json.dumps({"TODAY_DATE": str(DAY), "SIGNATURE": "bench"}))
        original = original_server(merged, runtime_env)

        server = build_server(context)
        view = context.market
        rows: list[tuple[str, list[int]]] = []
        with Session(engine) as store:
            async with fastmcp.Client(server) as client:
                over_session = {t.name: t for t in await load_mcp_tools(client.session)}
                in_process = {t.name: t for t in await langchain_tools(server, {})}

                def price(tools: dict[str, Any]) -> Timed:
                    async def call_price(n: int) -> None:
                        symbol, day = lookup(n)
                        args = {"symbol": symbol, "date": str(day)}
                        call = {"name": "get_price", "args": args, "id": "c1", "type": "tool_call"}
                        message = await tools["get_price"].ainvoke(call)
                        assert message.status != "error", message.content

                    return call_price

                def history(tools: dict[str, Any]) -> Timed:
                    async def call_history(n: int) -> None:
                        args = {"symbol": lookup(n)[0], "sessions": HISTORY_SESSIONS}
                        call = {"name": "get_price_history", "args": args, "id": "c1"}
                        message = await tools["get_price_history"].ainvoke(
                            call | {"type": "tool_call"}
                        )
                        assert message.status != "error", message.content

                    return call_history

                async def mcp_price(n: int) -> None:
                    symbol, day = lookup(n)
                    args = {"symbol": symbol, "date": str(day)}
                    result = await client.session.call_tool("get_price", args)
                    assert not result.isError

                async def mcp_history(n: int) -> None:
                    args = {"symbol": lookup(n)[0], "sessions": HISTORY_SESSIONS}
                    result = await client.session.call_tool("get_price_history", args)
                    assert not result.isError

                async def view_price(n: int) -> None:
                    assert view.bar_on(*lookup(n)) is not None

                async def view_history(n: int) -> None:
                    assert view.history(lookup(n)[0], HISTORY_SESSIONS)

                async def book_price(n: int) -> None:
                    assert prices.bar_on(*lookup(n)) is not None

                async def sql_price(n: int) -> None:
                    symbol, day = lookup(n)
                    query = select(PriceBar).where(
                        PriceBar.market == REAL_MARKET,
                        PriceBar.interval == DAILY,
                        PriceBar.symbol == symbol,
                        PriceBar.ts == datetime(day.year, day.month, day.day),
                    )
                    assert store.execute(query).scalars().first() is not None

                async def original_parse(n: int) -> None:
                    symbol, day = lookup(n)
                    assert "error" not in original_get_price(merged, runtime_env, symbol, str(day))

                async def original_connection(n: int) -> None:
                    symbol, day = lookup(n)
                    async with fastmcp.Client(original) as fresh:
                        args = {"symbol": symbol, "date": str(day)}
                        result = await fresh.session.call_tool("get_price_local", args)
                        assert not result.isError

                plan: list[tuple[str, Timed, int]] = [
                    ("agent: get_price (LangChain tool, in-process)", price(in_process), calls),
                    ("agent: get_price_history, 20 bars", history(in_process), calls),
                    ("before: get_price over an MCP client session", price(over_session), calls),
                    ("before: get_price_history, 20 bars", history(over_session), calls),
                    ("raw MCP session: get_price", mcp_price, calls),
                    ("raw MCP session: get_price_history, 20 bars", mcp_history, calls),
                    ("direct MarketView.bar_on", view_price, calls),
                    ("direct MarketView.history, 20 bars", view_history, calls),
                    ("direct PriceBook.bar_on", book_price, calls),
                    ("SQL: select the bar from pricebar (Session)", sql_price, calls),
                    ("original: re-parse merged.jsonl per lookup", original_parse, original_calls),
                    (
                        "original: + new MCP connection per call",
                        original_connection,
                        original_calls,
                    ),
                ]
                for label, call, count in plan:
                    rows.append((label, await measure(call, count)))
        engine.dispose()

    baseline = summarize(dict(rows)["SQL: select the bar from pricebar (Session)"])[0]
    print(
        f"price tool latency on {DAY}: {len(universe.symbols)} symbols, merged.jsonl of {lines} "
        f"lines ({merged_mb:.1f} MB); {calls} calls per row, {original_calls} for the original"
    )
    print(f"{'path':<52} {'median µs':>11} {'p95 µs':>11} {'vs SQL':>9}")
    for label, samples in rows:
        median, p95 = summarize(samples)
        print(f"{label:<52} {median:>11.1f} {p95:>11.1f} {median / baseline:>9.3f}")


def main() -> None:
    """Parse the arguments and print the latency table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per fast row")
    parser.add_argument("--original-calls", type=int, default=50, help="calls per original row")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(run(args.data, args.calls, args.original_calls))
    print(f"(measured in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
