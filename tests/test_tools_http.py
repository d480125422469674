"""`aitrader tools serve`: the tool server over MCP streamable HTTP, reached as the agent reaches it
(langchain-mcp-adapters' MultiServerMCPClient) from a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import ToolMessage
from langchain_mcp_adapters.client import MultiServerMCPClient
from sqlmodel import Session
from typer.testing import CliRunner

from configs.markets import load_market
from deployments.cli import app
from deployments.tool_server import build_manual_context
from market_data.aitrader_files import import_prices
from market_data.news_feed import import_news_file
from models.engine import create_store_engine, dispose_engines
from tests.conftest import store_copy

ROOT = Path(__file__).resolve().parents[1]
DAY = date(2025, 10, 15)
TOOLS = {
    "get_universe_snapshot",
    "get_price_history",
    "get_price",
    "get_recent_closes",
    "search_news",
    "get_portfolio",
    "buy",
    "sell",
    "calculate",
}


@pytest.fixture
def store(nasdaq100_daily_sqlite: Path, shared_data: Path, tmp_path: Path) -> str:
    """A SQLite store holding the shared daily prices and news sample."""
    url = store_copy(nasdaq100_daily_sqlite, tmp_path / "aitrader.db")
    engine = create_store_engine(url)
    with Session(engine) as session:
        import_news_file(session, shared_data / "alphavantage_news_sample.json")
        session.commit()
    engine.dispose()
    return url


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tools serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"tools serve did not listen on {port} within {timeout}s:\n{log.read_text()}")


@pytest.fixture
def served(store: str, tmp_path: Path) -> Iterator[int]:
    """`aitrader tools serve` in a subprocess on a free port; stopped by its own pid afterwards."""
    port = _free_port()
    log = tmp_path / "serve.log"
    command = [
        sys.executable,
        "-c",
        "from deployments.cli import app; app()",
        "tools",
        "serve",
        "--day",
        str(DAY),
        "--port",
        str(port),
        "--cash",
        "5000",
        "--universe",
        "AAPL,MSFT,NVDA",
        "--model",
        "by-hand",
    ]
    env = {**os.environ, "DATABASE_URL": store}
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    try:
        _wait_for_port(port, process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _daily_bar(shared_data: Path, symbol: str, day: date) -> dict[str, float]:
    path = shared_data / "nasdaq100_daily" / f"daily_prices_{symbol}.json"
    bar = json.loads(path.read_text())["Time Series (Daily)"][str(day)]
    return {key.split(". ")[1]: float(value) for key, value in bar.items()}


def _text(message: ToolMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "\n".join(block.get("text", "") for block in content if isinstance(block, dict))


async def _session(port: int) -> dict[str, ToolMessage]:
    client = MultiServerMCPClient(
        {"aitrader": {"transport": "streamable_http", "url": f"http://127.0.0.1:{port}/mcp"}}
    )
    tools = {tool.name: tool for tool in await client.get_tools()}
    assert set(tools) == TOOLS
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("today", "get_price", {"symbol": "aapl", "date": str(DAY)}),
        ("future", "get_price", {"symbol": "AAPL", "date": "2025-10-16"}),
        ("buy", "buy", {"symbol": "AAPL", "shares": 2}),
        ("portfolio", "get_portfolio", {}),
        ("snapshot", "get_universe_snapshot", {}),
        ("news", "search_news", {"limit": 50}),
    ]
    answers = {}
    for number, (label, name, args) in enumerate(calls):
        call = {"name": name, "args": args, "id": f"c{number}", "type": "tool_call"}
        answers[label] = await tools[name].ainvoke(call)
    return answers


def _data(message: Any) -> Any:
    """A tool answer's JSON text as data."""
    content = message.content
    text = content if isinstance(content, str) else "".join(b.get("text", "") for b in content)
    return json.loads(text)


@pytest.mark.slow  # `aitrader tools serve` in its own process
def test_tools_serve_answers_an_agent_over_http(
    served: int, shared_data: Path, tmp_path: Path
) -> None:
    answers = asyncio.run(_session(served))
    time.sleep(0.5)  # each session above ended with its client hanging up
    log = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in log and "Error in standalone SSE writer" not in log, log
    bar = _daily_bar(shared_data, "AAPL", DAY)

    today = answers["today"]
    assert today.status != "error"
    assert _data(today) == {
        "symbol": "AAPL",
        "date": str(DAY),
        "open": bar["open"],
    }
    for hidden in ("high", "low", "close", "volume"):
        assert str(bar[hidden]) not in _text(today)

    future = answers["future"]
    assert future.status == "error"
    assert "2025-10-16 is in the future" in _text(future)

    filled = _data(answers["buy"])["filled"]
    cost = 1.0 + 2 * bar["open"] * 5e-4  # the US broker's $1 minimum and 5 bp of slippage
    assert filled == {
        "side": "buy",
        "symbol": "AAPL",
        "shares": 2,
        "price": bar["open"],
        "cost": pytest.approx(cost),
        "cash_after": pytest.approx(5000 - 2 * bar["open"] - cost),
    }
    # Each call is a new MCP session; the book lives in the server, so the buy is still there.
    portfolio = _data(answers["portfolio"])
    assert portfolio["positions"] == {"AAPL": 2}
    assert portfolio["cash"] == pytest.approx(5000 - 2 * bar["open"] - cost)

    snapshot = _data(answers["snapshot"])
    assert [row["symbol"] for row in snapshot["symbols"]] == ["AAPL", "MSFT", "NVDA"]
    assert snapshot["symbols"][0]["previous_date"] == "2025-10-14"

    news = _data(answers["news"])
    assert news["published_before"] == "2025-10-15T13:30+00:00"
    assert len(news["items"]) == 20


def test_build_manual_context_holds_nothing_after_the_day(store: str) -> None:
    engine = create_store_engine(store)
    try:
        context = build_manual_context(engine, DAY, universe="aapl, msft,AAPL", cash=100.0)
    finally:
        engine.dispose()
    assert context.universe == ("AAPL", "MSFT") and context.benchmark == "QQQ"
    assert context.trading.portfolio.cash == 100.0 and context.model == "manual"
    assert context.trading.prices.times()[-1] == datetime(2025, 10, 15)
    assert context.news is not None


def test_build_manual_context_serves_an_hourly_market_under_its_rules(
    sqlite_url: str, shared_data: Path
) -> None:
    engine = create_store_engine(sqlite_url)
    try:
        with Session(engine) as session:
            import_prices(session, shared_data / "sse50_hourly" / "merged_hourly.jsonl")
            session.commit()
        market = load_market("sse50-hourly")
        context = build_manual_context(
            engine, DAY, universe="sse50", cash=100_000.0, rules_of=market, session=dt_time(14)
        )
        with pytest.raises(ValueError, match="12:00 is not a session of SSE 50 A-shares"):
            build_manual_context(
                engine, DAY, universe="sse50", rules_of=market, session=dt_time(12)
            )
        with pytest.raises(ValueError, match="2025-10-18 is not a trading day of SSE 50"):
            build_manual_context(engine, date(2025, 10, 18), universe="sse50", rules_of=market)
    finally:
        engine.dispose()
    assert context.label == "2025-10-15 14:00" and context.rules.lot == 100
    # The 14:00 bar is labelled by its end: it opens, and its orders fill, at 13:00 Shanghai.
    assert context.cutoff == datetime(2025, 10, 15, 5, tzinfo=UTC)
    assert context.trading.prices.times()[-1] == datetime(2025, 10, 15, 15)
    assert context.market.today("600519.SH").open == context.trading.open_price("600519.SH")


@pytest.mark.slow  # `aitrader tools serve` in its own process
def test_tools_serve_refuses_a_day_it_cannot_serve(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", store)
    monkeypatch.delenv("AITRADER_DEBUG", raising=False)
    runner = CliRunner()
    cases = {
        "2025-10-18": "2025-10-18 is not a trading day",
        "2025-11-03": "no real daily bar on 2025-11-03",
        "tomorrow": "Invalid value for '--day'",
    }
    try:
        for day, message in cases.items():
            result = runner.invoke(app, ["tools", "serve", "--day", day])
            assert result.exit_code == 1 and message in result.stderr, result.stderr
        result = runner.invoke(app, ["tools", "serve", "--day", str(DAY), "--universe", "nope"])
        assert result.exit_code == 1 and "unknown universe 'nope'" in result.stderr
    finally:
        dispose_engines()


# Calls the agent may make: answers, refusals, bad arguments, an unknown symbol, a future date.
CALLS = [
    ("get_price", {"symbol": "AAPL", "date": "2025-10-14"}),
    ("get_price", {"symbol": "NOPE", "date": "2025-10-14"}),
    ("get_price", {"symbol": "AAPL", "date": "2025-10-16"}),
    ("get_price_history", {"symbol": "MSFT", "sessions": 5}),
    ("get_price_history", {"symbol": "MSFT", "sessions": "many"}),
    ("search_news", {"query": "Apple"}),
    ("buy", {"symbol": "AAPL", "quantity": 3}),
    ("buy", {"symbol": "AAPL", "quantity": 10_000}),
    ("sell", {"symbol": "MSFT", "quantity": 1}),
    ("get_portfolio", {}),
    ("calculate", {"expression": "2 * (3 + 4)"}),
    ("calculate", {"expression": "__import__('os')"}),
]


def test_the_agent_sees_the_in_process_tools_as_it_would_over_an_mcp_session(store: str) -> None:
    """The agent loop calls its tool server in-process (agent_tools/langchain_tools.py); the
    model must see exactly what the MCP adapters give over a session, so recordings replay."""
    import fastmcp
    from langchain_core.utils.function_calling import convert_to_openai_tool
    from langchain_mcp_adapters.tools import load_mcp_tools

    from agent_tools.langchain_tools import langchain_tools
    from agent_tools.servers import build_server
    from agents.recording import canonical_message

    def seen(tools: list, answers: list[ToolMessage]) -> tuple[list, list]:
        schemas = sorted((convert_to_openai_tool(t) for t in tools), key=json.dumps)
        return schemas, [(canonical_message(m), m.status) for m in answers]

    async def through(direct: bool) -> tuple[list, list, dict, list]:
        engine = create_store_engine(store)
        server = build_server(build_manual_context(engine, DAY, cash=1_000))
        latencies: dict[str, list[float]] = {}
        traced = ToolRuns()
        if direct:
            tools = await langchain_tools(server, latencies)
            answers = [await _call(tools, n, a, i, traced) for i, (n, a) in enumerate(CALLS)]
            return *seen(tools, answers), latencies, traced.events
        async with fastmcp.Client(server) as client:
            tools = await load_mcp_tools(client.session)
            answers = [await _call(tools, n, a, i, traced) for i, (n, a) in enumerate(CALLS)]
            return *seen(tools, answers), latencies, traced.events

    direct_schemas, direct_answers, latencies, direct_runs = asyncio.run(through(direct=True))
    session_schemas, session_answers, _, session_runs = asyncio.run(through(direct=False))
    dispose_engines()
    assert direct_schemas == session_schemas and len(direct_schemas) == len(TOOLS)
    assert direct_answers == session_answers
    # LangChain traces each tool run (callbacks: tracing, LangSmith) as it does over a session.
    assert direct_runs == session_runs and len(direct_runs) == 2 * len(CALLS)
    statuses = [status for _, status in direct_answers]
    assert statuses.count("error") >= 3 and statuses.count("success") >= 5
    assert sorted(latencies) == sorted(f"call-{i}" for i in range(len(CALLS)))


class ToolRuns(AsyncCallbackHandler):
    """The tool runs LangChain reports to its callbacks: (event, tool or outcome) in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def on_tool_start(self, serialized: dict[str, Any], input_str: str, **kwargs) -> None:
        self.events.append(("start", serialized["name"]))

    async def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        self.events.append(("end", getattr(output, "status", "")))

    async def on_tool_error(self, error: BaseException, **kwargs: Any) -> None:
        self.events.append(("error", type(error).__name__))


async def _call(
    tools: list, name: str, arguments: dict[str, Any], number: int, traced: ToolRuns
) -> ToolMessage:
    (tool,) = [t for t in tools if t.name == name]
    call = {"name": name, "args": arguments, "id": f"call-{number}", "type": "tool_call"}
    return await tool.ainvoke(call, config={"callbacks": [traced]})
