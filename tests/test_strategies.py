"""Built-in strategy models: whole model-days through the real MCP tools on real NASDAQ-100 data.

Each model-day runs LangChain's `create_agent` over the fastmcp tools of a `SessionContext`, as a
session does, and the trades (`context.trading.fills`) are checked against each strategy's rule,
recomputed independently from the raw Alpha Vantage files.
"""

from __future__ import annotations

import asyncio
import json
import math
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import fastmcp
import numpy as np
import pytest
from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import StructuredTool
from langchain_mcp_adapters.tools import load_mcp_tools
from sqlmodel import Session

from agent_tools.context import SessionContext
from agent_tools.servers import build_server
from agents.strategies import (
    FINISH_SIGNAL,
    STRATEGIES,
    EqualWeightBuyAndHold,
    Momentum,
    RandomTrader,
    build_strategy,
    is_rebalance_day,
    weekday_ordinal,
)
from agents.strategies.builtin import trades_on_weekends
from agents.strategies.observations import read_day
from configs.loader import load_universe
from market_data.aitrader_files import import_prices
from market_data.calendar import is_trading_day
from models.book import Fill, Portfolio
from models.engine import create_store_engine
from models.prices import PriceBook
from tests.conftest import store_copy

UNIVERSE = tuple(load_universe("nasdaq100").symbols)
CASH = 10_000.0
ZERO_USAGE = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}


# --- fixtures: the store, and the raw files read independently ---------------------------------


@pytest.fixture(scope="module")
def prices(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    """The real daily prices, imported into a migrated SQLite store and loaded once."""
    path = tmp_path_factory.mktemp("strategies") / "aitrader.db"
    engine = create_store_engine(store_copy(sqlite_template, path))
    try:
        with Session(engine) as session:
            import_prices(session, shared_data / "nasdaq100_daily")
            session.commit()
            return PriceBook.load(session)
    finally:
        engine.dispose()


@dataclass(frozen=True)
class RawBar:
    open: float
    close: float


@pytest.fixture(scope="module")
def raw(shared_data: Path) -> dict[str, dict[date, RawBar]]:
    """Every symbol's daily bars straight from `daily_prices_<SYM>.json`."""
    bars: dict[str, dict[date, RawBar]] = {}
    for file in sorted((shared_data / "nasdaq100_daily").glob("daily_prices_*.json")):
        series = json.loads(file.read_text())["Time Series (Daily)"]
        bars[file.stem.removeprefix("daily_prices_")] = {
            date.fromisoformat(day): RawBar(float(bar["1. open"]), float(bar["4. close"]))
            for day, bar in series.items()
        }
    return bars


@pytest.fixture(scope="module")
def sessions(raw) -> list[date]:
    return sorted(raw["QQQ"])


def days_from(sessions: list[date], first: date, count: int) -> list[date]:
    start = sessions.index(first)
    return sessions[start : start + count]


# --- running model-days -------------------------------------------------------------------------


@dataclass
class ModelDay:
    day: date
    start: Portfolio
    context: SessionContext
    messages: list

    @property
    def fills(self) -> list[Fill]:
        return self.context.trading.fills

    @property
    def end(self) -> Portfolio:
        return self.context.trading.portfolio

    @property
    def final(self) -> AIMessage:
        return self.messages[-1]

    @property
    def errors(self) -> list[ToolMessage]:
        return [m for m in self.messages if isinstance(m, ToolMessage) and m.status == "error"]


async def _run_day(model, day, book, prices, universe, patch_tools) -> ModelDay:
    context = SessionContext.create(
        run_id=1,
        model="strategy-test",
        portfolio="strategy-test",
        day=day,
        universe=universe,
        prices=prices,
        book=book,
        is_session_day=is_trading_day,
    )
    async with fastmcp.Client(build_server(context)) as client:
        tools = await load_mcp_tools(client.session)
        if patch_tools:
            tools = patch_tools(tools)
        agent = create_agent(model, tools, system_prompt="You trade NASDAQ-100 stocks.")
        result = await agent.ainvoke(
            {"messages": [HumanMessage("Trade today")]}, {"recursion_limit": 60}
        )
    return ModelDay(day, book, context, result["messages"])


def run_days(
    model: BaseChatModel,
    days: list[date],
    prices: PriceBook,
    universe=UNIVERSE,
    patch_tools=None,
) -> list[ModelDay]:
    """Consecutive model-days, each starting from the book the previous one ended with."""

    async def chain() -> list[ModelDay]:
        book, done = Portfolio(cash=CASH), []
        for day in days:
            model_day = await _run_day(model, day, book, prices, universe, patch_tools)
            done.append(model_day)
            book = model_day.end
        return done

    model_days = asyncio.run(chain())
    for model_day in model_days:
        final = model_day.final
        assert isinstance(final, AIMessage) and not final.tool_calls
        assert FINISH_SIGNAL in final.text, final.text
        assert model_day.end.cash >= 0
        ai_messages = [m for m in model_day.messages if isinstance(m, AIMessage)]
        assert all(m.usage_metadata == ZERO_USAGE for m in ai_messages)
        assert len(ai_messages) <= 4
        sides = [fill.side for fill in model_day.fills]
        assert sides == sorted(sides, key=lambda side: side == "buy"), "sells come before buys"
    return model_days


def positions_after(fills: list[Fill], start: dict[str, int] | None = None) -> dict[str, int]:
    positions = dict(start or {})
    for fill in fills:
        positions[fill.symbol] = positions.get(fill.symbol, 0) + (
            fill.shares if fill.side == "buy" else -fill.shares
        )
    return {s: n for s, n in positions.items() if n}


# --- building the strategies --------------------------------------------------------------------


def test_build_strategy_makes_each_known_strategy():
    assert set(STRATEGIES) == {"equal-weight", "index-weight", "momentum", "random"}
    for name, cls in STRATEGIES.items():
        params = {"weights": {"AAPL": 2, "MSFT": 1}} if name == "index-weight" else {}
        model = build_strategy(name, f"{name}-model", params)
        assert isinstance(model, cls) and isinstance(model, BaseChatModel)
        assert model.model_name == f"{name}-model"
        assert model._llm_type.endswith(name)
    momentum = build_strategy("momentum", "m", {"top_k": 3, "lookback": 5, "rebalance_every": 2})
    assert (momentum.params.top_k, momentum.params.lookback, momentum.params.rebalance_every) == (
        3,
        5,
        2,
    )
    assert build_strategy("equal-weight", "e", {"symbols": ["aapl"]}).params.symbols == ["AAPL"]


def test_build_strategy_rejects_unknown_names_and_bad_params():
    with pytest.raises(ValueError, match="unknown strategy 'buy-the-dip'") as info:
        build_strategy("buy-the-dip", "m", {})
    for name in STRATEGIES:
        assert name in str(info.value)
    bad = [
        ("momentum", {"top_k": 0}, "top_k"),
        ("momentum", {"lookback": 1}, "lookback"),
        ("momentum", {"rebalance_every": 0}, "rebalance_every"),
        ("momentum", {"topk": 5}, "topk"),
        ("equal-weight", {"cash_buffer": 1.0}, "cash_buffer"),
        ("equal-weight", {"symbols": []}, "symbols"),
        ("index-weight", {}, "weights"),
        ("index-weight", {"weights": {"AAPL": 0}}, "weights"),
        ("random", {"trade_probability": 1.5}, "trade_probability"),
        ("random", {"max_orders": 0}, "max_orders"),
    ]
    for name, params, field in bad:
        with pytest.raises(ValueError, match=f"invalid params for strategy '{name}'.*{field}"):
            build_strategy(name, "m", params)


# --- the protocol, offline ------------------------------------------------------------------------


def test_first_answer_observes_with_deterministic_ids_and_no_tokens():
    conversation = [HumanMessage("Trade today")]
    model = Momentum(model_name="m", params={"lookback": 7}).bind_tools([])
    # bound to no tools: it cannot see the market, so it says so and finishes
    assert FINISH_SIGNAL in model.invoke(conversation).text
    model = build_strategy("momentum", "m", {"lookback": 7})
    first, again = model.invoke(conversation), asyncio.run(model.ainvoke(conversation))
    calls = [(c["name"], c["args"], c["id"]) for c in first.tool_calls]
    assert calls == [
        ("get_portfolio", {}, "get_portfolio-0-0"),
        ("get_universe_snapshot", {}, "get_universe_snapshot-0-1"),
        ("get_recent_closes", {"sessions": 7}, "get_recent_closes-0-2"),
    ]
    assert again.tool_calls == first.tool_calls and again.text == first.text
    assert first.usage_metadata == ZERO_USAGE
    observe = build_strategy("equal-weight", "e", {}).invoke(conversation).tool_calls
    assert [c["name"] for c in observe] == ["get_portfolio", "get_universe_snapshot"]


def _tool_answer(call: dict[str, Any], payload: Any, *, blocks: bool = False, error: bool = False):
    text = payload if isinstance(payload, str) else json.dumps(payload)
    content = [{"type": "text", "text": text, "id": "lc_x"}] if blocks else text
    return ToolMessage(
        content=content,
        tool_call_id=call["id"],
        name=call["name"],
        status="error" if error else "success",
    )


def test_reads_string_and_block_answers_and_moves_on_after_a_rejection():
    model = EqualWeightBuyAndHold(model_name="e")
    conversation: list = [HumanMessage("Trade today")]
    observe = model.invoke(conversation)
    portfolio = {"date": "2025-10-02", "cash": 1000.0, "positions": {}, "value_at_open": 1000.0}
    snapshot = {
        "date": "2025-10-02",
        "benchmark": "QQQ",
        "symbols": [
            {"symbol": "AAA", "previous_close": 10, "previous_date": "2025-10-01", "open": 30.0},
            {"symbol": "BBB", "previous_close": 10, "previous_date": "2025-10-01", "open": 7.0},
            {"symbol": "CCC", "previous_close": 10, "previous_date": "2025-10-01", "open": None},
        ],
    }
    conversation += [
        observe,
        _tool_answer(observe.tool_calls[0], portfolio),  # content as a string
        _tool_answer(observe.tool_calls[1], snapshot, blocks=True),  # content as blocks
    ]
    buys = model.invoke(conversation)
    # 1000 / 2 tradable symbols (CCC has no open) -> floor(500 / 30) = 16 AAA, floor(500 / 7) =
    # 71 BBB; the 23 left buy 3 more BBB (AAA's 30 does not fit), leaving 2 in cash.
    assert [(c["name"], c["args"], c["id"]) for c in buys.tool_calls] == [
        ("buy", {"symbol": "AAA", "shares": 16}, "buy-1-0"),
        ("buy", {"symbol": "BBB", "shares": 74}, "buy-1-1"),
    ]
    assert model.invoke(conversation).tool_calls == buys.tool_calls  # deterministic
    filled = {"filled": {}, "date": "2025-10-02", "cash": 520.0, "positions": {"AAA": 16}}
    conversation += [
        buys,
        _tool_answer(buys.tool_calls[0], filled, blocks=True),
        _tool_answer(buys.tool_calls[1], "buy rejected: no price for BBB", error=True),
    ]
    final = model.invoke(conversation)
    assert not final.tool_calls
    assert final.text.endswith(FINISH_SIGNAL)
    assert "buy 16 AAA" in final.text and "no price for BBB" in final.text

    # An observation that failed: no trade, and the day still finishes.
    failed = [
        HumanMessage("Trade today"),
        observe,
        _tool_answer(observe.tool_calls[0], "database is down", error=True),
        _tool_answer(observe.tool_calls[1], snapshot),
    ]
    final = model.invoke(failed)
    assert not final.tool_calls and FINISH_SIGNAL in final.text and "database is down" in final.text


def test_momentum_rebalance_rule():
    assert weekday_ordinal(date(1970, 1, 5)) == 0
    assert weekday_ordinal(date(1970, 1, 12)) == 5
    for day in (date(2025, 9, 29), date(2025, 10, 1), date(2025, 10, 3)):
        assert weekday_ordinal(day) == np.busday_count(date(1970, 1, 5), day)
    friday, monday, tuesday = date(2025, 8, 29), date(2025, 9, 1), date(2025, 9, 2)
    assert is_rebalance_day(date(2025, 10, 2), date(2025, 10, 1), holds_nothing=True, every=5)
    assert not is_rebalance_day(date(2025, 10, 2), date(2025, 10, 1), holds_nothing=False, every=5)
    assert is_rebalance_day(monday, friday, holds_nothing=False, every=5)
    # Labor Day (Monday 2025-09-01) is a holiday: the week's first session rebalances instead.
    assert is_rebalance_day(tuesday, friday, holds_nothing=False, every=5)
    assert is_rebalance_day(date(2025, 10, 2), date(2025, 10, 1), holds_nothing=False, every=1)


# --- whole model-days on the real data ------------------------------------------------------------


def test_equal_weight_buys_once_at_the_open_then_holds(prices, raw, sessions):
    days = days_from(sessions, date(2025, 10, 1), 4)
    model_days = run_days(build_strategy("equal-weight", "ew", {}), days, prices)
    first = model_days[0]
    tradable = [s for s in UNIVERSE if days[0] in raw[s]]
    opens = {s: raw[s][days[0]].open for s in tradable}
    bought = {f.symbol: f.shares for f in first.fills}
    # Each name its equal share rounded down, then the rest: less cash left than any one share.
    assert all(bought.get(s, 0) >= math.floor(CASH / len(tradable) / opens[s]) for s in opens)
    assert first.end.cash < min(opens.values()) and first.end.cash < 0.05 * CASH
    assert len(first.fills) == len(bought) and all(f.side == "buy" for f in first.fills)
    assert all(f.price == opens[f.symbol] for f in first.fills)
    assert first.end.positions == bought
    assert not first.errors
    assert "equal dollar weights" in first.final.text
    for later in model_days[1:]:
        assert later.fills == []
        assert later.end == first.end
        assert "never trades again" in later.final.text


def test_equal_weight_subset_and_cash_buffer(prices, raw):
    day = date(2025, 10, 2)
    params = {"symbols": ["nvda", "AAPL", "MSFT"], "cash_buffer": 0.1}
    (model_day,) = run_days(build_strategy("equal-weight", "ew", params), [day], prices)
    opens = {s: raw[s][day].open for s in ("NVDA", "AAPL", "MSFT")}
    bought = {f.symbol: f.shares for f in model_day.fills}
    assert set(bought) == set(opens)
    assert all(bought[s] >= math.floor(CASH * 0.9 / 3 / opens[s]) for s in opens)
    kept = model_day.end.cash - CASH * 0.1  # the buffer stays; of the rest, less than a share
    assert 0 <= kept < min(opens.values())


def trailing_top(raw, day: date, lookback: int, top_k: int) -> tuple[list[str], dict[str, float]]:
    """The top_k universe symbols by `close[-1] / close[0] - 1` over the `lookback` closes before
    `day`, among those with an open on `day` and a full lookback, straight from the raw files."""
    returns = {}
    for symbol in UNIVERSE:
        bars = raw.get(symbol, {})
        if day not in bars:
            continue
        closes = [bars[d].close for d in sorted(d for d in bars if d < day)][-lookback:]
        if len(closes) == lookback:
            returns[symbol] = closes[-1] / closes[0] - 1
    return sorted(returns, key=lambda s: (-returns[s], s))[:top_k], returns


@pytest.mark.parametrize(
    ("first", "count", "params", "rebalance_days"),
    [
        # Default (weekly): the first day, then the first session of each week; Labor Day moves
        # that week's rebalance to Tuesday 2025-09-02.
        (date(2025, 8, 28), 8, {}, {date(2025, 8, 28), date(2025, 9, 2), date(2025, 9, 8)}),
        (
            date(2025, 10, 1),
            6,
            {"top_k": 5, "lookback": 10, "rebalance_every": 2},
            # blocks of two weekdays from Monday 1970-01-05: ... | Wed Thu | Fri Mon | Tue Wed
            {date(2025, 10, 1), date(2025, 10, 3), date(2025, 10, 7)},
        ),
    ],
)
def test_momentum_holds_the_top_k_and_rebalances_on_schedule(
    prices, raw, sessions, first, count, params, rebalance_days
):
    top_k, lookback = params.get("top_k", 10), params.get("lookback", 20)
    every = params.get("rebalance_every", 5)
    days = days_from(sessions, first, count)
    model_days = run_days(build_strategy("momentum", "mom", params), days, prices)
    previous_session = {d: sessions[sessions.index(d) - 1] for d in days}
    predicted = {
        d
        for d, md in zip(days, model_days, strict=True)
        if not md.start.positions
        or np.busday_count(date(1970, 1, 5), d) // every
        != np.busday_count(date(1970, 1, 5), previous_session[d]) // every
    }
    assert predicted == rebalance_days
    sold_any = False
    for model_day in model_days:
        day, start, end = model_day.day, model_day.start, model_day.end
        assert not model_day.errors
        assert end.positions == positions_after(model_day.fills, start.positions)
        if day not in rebalance_days:
            assert model_day.fills == [] and end == start
            assert "not a rebalance day" in model_day.final.text
            continue
        top, _ = trailing_top(raw, day, lookback, top_k)
        opens = {s: raw[s][day].open for s in top}
        value = start.cash + sum(n * raw[s][day].open for s, n in start.positions.items())
        target = value / len(top)
        sells = {f.symbol: f.shares for f in model_day.fills if f.side == "sell"}
        buys = {f.symbol: f.shares for f in model_day.fills if f.side == "buy"}
        # every holding outside the top is sold completely, nothing else is sold
        assert sells == {s: n for s, n in start.positions.items() if s not in top}
        sold_any |= bool(sells)
        assert set(buys) <= set(top)
        assert set(end.positions) <= set(top)
        for symbol in top:
            held, most = end.positions.get(symbol, 0), math.floor(target / opens[symbol])
            if symbol in buys:
                assert held <= most, f"{symbol} bought beyond its equal weight"
            elif held < most:  # not topped up: only because the cash ran out
                assert end.cash < opens[symbol]
        if not start.positions:  # first day: exactly the equal weights of the top names
            assert end.positions == {
                s: math.floor(CASH / len(top) / opens[s])
                for s in top
                if CASH / len(top) >= opens[s]
            }
        assert all(s in model_day.final.text for s in top)
    if every == 2:
        assert sold_any, "the fast schedule should have replaced some names"


def test_random_trader_is_reproducible_and_follows_the_rules(prices, sessions):
    days = days_from(sessions, date(2025, 10, 1), 4)
    params = {"seed": 7, "trade_probability": 1.0, "max_orders": 4}

    def fills_of(model_days):
        return [[f.model_dump() for f in md.fills] for md in model_days]

    runs = [run_days(build_strategy("random", "rnd", params), days, prices) for _ in range(2)]
    assert fills_of(runs[0]) == fills_of(runs[1])
    assert [md.final.text for md in runs[0]] == [md.final.text for md in runs[1]]
    assert sum(len(md.fills) for md in runs[0]) > 0
    other = run_days(build_strategy("random", "rnd", {**params, "seed": 8}), days, prices)
    assert fills_of(other) != fills_of(runs[0])
    for model_day in [*runs[0], *other]:
        assert not model_day.errors
        cash = model_day.start.cash
        for fill in model_day.fills:
            if fill.side == "buy":  # costs at most max_cash_fraction (0.25) of the cash left
                assert fill.notional <= 0.25 * (fill.cash_after + fill.notional) + 1e-6
            cash = fill.cash_after
            assert cash >= 0
    quiet = run_days(
        RandomTrader(model_name="rnd", params={"trade_probability": 0.0}), days, prices
    )
    assert all(md.fills == [] for md in quiet)


def test_a_rejected_order_is_reported_and_the_day_still_finishes(prices, raw):
    # FB's data ends on 2025-10-16: on 2025-10-20 it is in the universe but has no open.
    day, universe = date(2025, 10, 20), (*UNIVERSE, "FB")
    params = {"symbols": ["AAPL", "FB", "MSFT"]}
    (honest,) = run_days(build_strategy("equal-weight", "ew", params), [day], prices, universe)
    assert {f.symbol for f in honest.fills} == {"AAPL", "MSFT"}  # no open: never traded
    assert not honest.errors

    def lying_snapshot(tools):
        """A snapshot that shows FB an open, so the buy reaches the trading rules and fails."""
        real = next(t for t in tools if t.name == "get_universe_snapshot")

        async def get_universe_snapshot() -> str:
            content = await real.ainvoke({})
            text = content if isinstance(content, str) else "".join(b["text"] for b in content)
            answer = json.loads(text)
            for row in answer["symbols"]:
                if row["symbol"] == "FB":
                    row["open"] = row["previous_close"]
            return json.dumps(answer)

        fake = StructuredTool.from_function(
            coroutine=get_universe_snapshot,
            name="get_universe_snapshot",
            description=real.description,
        )
        return [fake if t.name == fake.name else t for t in tools]

    (model_day,) = run_days(
        build_strategy("equal-weight", "ew", params), [day], prices, universe, lying_snapshot
    )
    (error,) = model_day.errors
    assert "no price for FB" in error.text
    fb_orders = [c for m in model_day.messages if isinstance(m, AIMessage) for c in m.tool_calls]
    assert [c["args"]["symbol"] for c in fb_orders if c["name"] == "buy"].count("FB") == 1
    assert {f.symbol: f.shares for f in model_day.fills} == {
        s: math.floor(CASH / 3 / raw[s][day].open) for s in ("AAPL", "MSFT")
    }
    assert "Rejected" in model_day.final.text and "FB" in model_day.final.text


# --- other markets: the rules in get_portfolio's answer size the orders, offline ----------------

LOTS_T1 = {"quantity": "lots", "lot": 100, "settlement": "T+1", "currency": "CNY"}
COINS = {"quantity": "fractional", "decimals": 4, "settlement": "T+0", "currency": "USDT"}


def _answered(model, portfolio: dict, opens: dict, closes: dict | None = None) -> list:
    """The conversation after the model's observation calls got these answers."""
    day = portfolio["date"]  # the tools date every answer by the session
    conversation: list = [HumanMessage("Trade today")]
    observe = model.invoke(conversation)
    rows = [
        {"symbol": s, "previous_close": p, "previous_date": "2025-10-08", "open": p}
        for s, p in opens.items()
    ]
    answers = {
        "get_portfolio": portfolio,
        "get_universe_snapshot": {"date": day, "benchmark": "X", "symbols": rows},
        "get_recent_closes": {"date": day, "closes": closes or {}},
    }
    conversation.append(observe)
    conversation += [_tool_answer(c, answers[c["name"]]) for c in observe.tool_calls]
    return conversation


def _calls(message: AIMessage) -> list[tuple[str, str, int | float]]:
    return [(c["name"], c["args"]["symbol"], c["args"]["shares"]) for c in message.tool_calls]


def test_equal_weight_buys_whole_lots_and_skips_a_name_whose_lot_is_unaffordable():
    portfolio = {"date": "2025-10-09", "cash": 100_000.0, "positions": {}, "rules": LOTS_T1}
    opens = {"600028.SH": 5.57, "600519.SH": 1450.0, "601318.SH": 55.1}
    model = EqualWeightBuyAndHold(model_name="e")
    buys = model.invoke(_answered(model, portfolio, opens))
    # 600519.SH: one lot is 145,000, more than the book. The other two split the book in lots:
    # each at least its third rounded down, then lot by lot to the lighter, until no lot fits.
    calls = _calls(buys)
    assert [symbol for _, symbol, _ in calls] == ["600028.SH", "601318.SH"]
    per = 100_000.0 / 3
    for _, symbol, shares in calls:
        assert shares % 100 == 0 and shares >= math.floor(per / opens[symbol] / 100) * 100
    spent = sum(shares * opens[symbol] for _, symbol, shares in calls)
    assert 0 <= 100_000.0 - spent < 100 * 5.57  # less than the cheapest lot is left
    values = sorted(shares * opens[symbol] for _, symbol, shares in calls)
    assert values[1] - values[0] < 100 * 55.1  # within one lot of the dearer name


def test_equal_weight_buys_coin_amounts_rounded_down_to_four_decimals():
    cash = 50_000.0
    portfolio = {"date": "2025-11-02", "cash": cash, "positions": {}, "rules": COINS}
    opens = {"BTC": 110234.56, "ETH": 3890.12, "ADA": 0.5731, "XRP": 2.4567}
    model = EqualWeightBuyAndHold(model_name="e")
    calls = _calls(model.invoke(_answered(model, portfolio, opens)))
    assert [s for _, s, _ in calls] == list(opens)
    for _, symbol, amount in calls:
        exact = cash / len(opens) / opens[symbol]
        # rounded down to a step of 0.0001, less the 0.0001 of cash kept back per order
        assert amount == round(amount, 4) and exact - 1e-4 - 1e-4 / opens[symbol] < amount
        assert amount <= exact
    assert sum(amount * opens[s] for _, s, amount in calls) <= cash


def test_read_day_keeps_coin_fractions_rules_and_sellable():
    portfolio = {
        "date": "2025-10-09 11:30",
        "cash": 10.5,
        "positions": {"BTC": 0.1234, "ETH": 2},
        "rules": COINS,
        "sellable": {"BTC": 0.1234, "ETH": 2},
    }
    model = EqualWeightBuyAndHold(model_name="e")
    final = model.invoke(_answered(model, portfolio, {"BTC": 100.0}))
    assert not final.tool_calls and "never trades again" in final.text
    view = _view(model, portfolio, {"BTC": 100.0})
    assert view.positions == {"BTC": 0.1234, "ETH": 2} and isinstance(view.positions["ETH"], int)
    assert view.rules.quantity == "fractional" and view.hourly
    assert view.session == view.day == "2025-10-09 11:30"


def _view(model, portfolio: dict, opens: dict, closes: dict | None = None):
    conversation = _answered(model, portfolio, opens, closes)
    calls = [(c, m) for c, m in zip(conversation[1].tool_calls, conversation[2:], strict=True)]
    return read_day(calls, model.observe_tools)


def _closes(series: dict[str, list[float]], last: str) -> dict:
    """Closes ending at the session `last` (earlier ones dated before it)."""
    return {
        s: [[f"{last[:10]} {i:02d}" if i < len(c) - 1 else last, p] for i, p in enumerate(c)]
        for s, c in series.items()
    }


def test_momentum_sells_only_what_t1_allows_in_whole_lots():
    momentum = build_strategy("momentum", "m", {"top_k": 1, "lookback": 2})
    portfolio = {
        "date": "2025-10-13",  # a Monday: a new weekly block
        "cash": 0.0,
        "positions": {"AAA": 500, "BBB": 300, "CCC": 100},
        "rules": LOTS_T1,
        "sellable": {"AAA": 250, "BBB": 300, "CCC": 0},
    }
    opens = {"AAA": 10.0, "BBB": 10.0, "CCC": 10.0, "DDD": 10.0}
    closes = _closes(
        {"AAA": [10, 10], "BBB": [10, 9], "CCC": [10, 9], "DDD": [10, 12]}, "2025-10-10"
    )
    sells = momentum.invoke(_answered(momentum, portfolio, opens, closes))
    assert _calls(sells) == [("sell", "AAA", 200), ("sell", "BBB", 300)]
    assert "cannot sell CCC yet" in sells.text


def test_hourly_momentum_rebalances_only_in_the_days_first_session():
    momentum = build_strategy("momentum", "m", {"top_k": 1, "lookback": 2})
    opens = {"AAA": 10.0, "BBB": 10.0}
    series = {"AAA": [10, 11], "BBB": [10, 9]}
    for session, last, trades in [
        ("2025-10-09 10:30", "2025-10-08 15:00:00", True),
        ("2025-10-09 11:30", "2025-10-09 10:30:00", False),
    ]:
        portfolio = {"date": session, "cash": 1500.0, "positions": {}, "rules": LOTS_T1}
        answer = momentum.invoke(_answered(momentum, portfolio, opens, _closes(series, last)))
        if trades:
            assert _calls(answer) == [("buy", "AAA", 100)]
        else:
            assert not answer.tool_calls and "first session" in answer.text


def test_momentum_counts_calendar_days_where_weekends_are_sessions():
    saturday, friday, sunday = date(2025, 11, 1), date(2025, 10, 31), date(2025, 11, 2)
    # Weekday blocks: a weekend day is its Friday, so weekends never rebalance.
    assert not is_rebalance_day(saturday, friday, holds_nothing=False, every=1)
    assert is_rebalance_day(saturday, friday, holds_nothing=False, every=1, weekends=True)
    assert is_rebalance_day(sunday, saturday, holds_nothing=False, every=1, weekends=True)
    days = [date(2025, 10, 27) + timedelta(days=n) for n in range(21)]
    rebalances = [
        b for a, b in pairwise(days) if is_rebalance_day(b, a, False, every=5, weekends=True)
    ]
    assert [(b - a).days for a, b in pairwise(rebalances)] == [5, 5, 5]
    # A market trades on weekends when a session the tools show is on one.
    for day, last_closes, weekends in [
        ("2025-11-05", ["2025-11-01", "2025-11-04"], True),
        ("2025-11-03", ["2025-10-30", "2025-10-31"], False),
        ("2025-11-08", ["2025-11-06", "2025-11-07"], True),  # today is a Saturday
    ]:
        portfolio = {"date": day, "cash": 1.0, "positions": {}, "rules": COINS}
        closes = {"BTC": [[d, 1.0] for d in last_closes]}
        view = _view(Momentum(model_name="m"), portfolio, {"BTC": 1.0}, closes)
        assert trades_on_weekends(view, date.fromisoformat(day)) is weekends


def test_random_seeds_each_hourly_session_and_respects_lots_and_t1():
    model = build_strategy("random", "r", {"trade_probability": 1.0, "max_orders": 6, "seed": 1})
    opens = {"AAA": 5.0, "BBB": 12.0, "CCC": 40.0, "DDD": 3000.0}
    positions = {"AAA": 700, "BBB": 300, "CCC": 200}
    sellable = {"AAA": 250, "BBB": 0, "CCC": 200}
    answers = set()
    for session in [f"2025-10-{d:02d} {h}" for d in (9, 10, 13) for h in ("10:30", "11:30")]:
        portfolio = {
            "date": session,
            "cash": 20_000.0,
            "positions": positions,
            "rules": LOTS_T1,
            "sellable": sellable,
        }
        calls = _calls(model.invoke(_answered(model, portfolio, opens)))
        answers.add(tuple(calls))
        for side, symbol, shares in calls:
            assert isinstance(shares, int) and shares > 0 and shares % 100 == 0
            if side == "sell":
                assert shares <= sellable[symbol]
            else:
                assert symbol != "DDD" and shares * opens[symbol] <= 20_000 * 0.25
    assert len(answers) == 6, "each session draws its own orders"
