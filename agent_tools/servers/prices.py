"""Price tools: history before the session and, of the session's bar, only its open.

In an hourly session `get_price` also takes a bar's time (`YYYY-MM-DD HH:MM`), and a past day
means that day's last hourly bar; daily sessions keep their recorded wording and answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from agent_tools.context import EXCHANGE_TZ, SessionContext
from agent_tools.servers.tooling import RejectedCall, add_tools, answer

MAX_SESSIONS = 260
Tool = Callable[..., Awaitable[str]]
# An hourly session's tools describe hourly bars (a description is part of the tool's schema, so
# daily sessions keep theirs as recorded).
HOURLY_DOCS = {
    "get_universe_snapshot": (
        "Every tradable symbol's last close before this session and this session's open "
        "(the fill price)."
    ),
    "get_price_history": "The last `sessions` hourly bars before this session, plus its open.",
    "get_recent_closes": (
        "Closes of the last `sessions` hourly bars before this session for many symbols at once."
    ),
}


def _symbol(context: SessionContext, symbol: str) -> str:
    symbol = symbol.strip().upper()
    if symbol not in context.universe and symbol != context.benchmark:
        raise RejectedCall(f"unknown symbol {symbol!r}; call get_universe_snapshot for the symbols")
    return symbol


def register(server: FastMCP, context: SessionContext) -> None:
    """Add the price tools, bound to `context`, to `server`."""
    market = context.market

    async def get_universe_snapshot() -> str:
        """Every tradable symbol's last close before today and today's open (the fill price)."""
        rows = []
        for symbol in context.universe:
            previous = market.previous_close(symbol)
            rows.append(
                {
                    "symbol": symbol,
                    "previous_close": previous[0] if previous else None,
                    "previous_date": previous[1] if previous else None,
                    "open": market.today(symbol).open,
                }
            )
        return answer({"date": context.label, "benchmark": context.benchmark, "symbols": rows})

    async def get_price_history(
        symbol: Annotated[str, Field(description="Ticker, e.g. AAPL")],
        sessions: Annotated[int, Field(ge=1, le=MAX_SESSIONS, description="How many")] = 20,
    ) -> str:
        """Daily bars of the last `sessions` trading days before today, plus today's open."""
        symbol = _symbol(context, symbol)
        return answer(
            {
                "symbol": symbol,
                "bars": [bar.model_dump() for bar in market.history(symbol, sessions)],
                "today": market.today(symbol).model_dump(),
            }
        )

    async def get_price(
        symbol: Annotated[str, Field(description="Ticker, e.g. AAPL")],
        date: Annotated[str, Field(description="YYYY-MM-DD, today or earlier")],
    ) -> str:
        """One day's bar; for today only the open is known."""
        symbol = _symbol(context, symbol)
        day = _past_day(context, date)
        bar = market.bar_on(symbol, day)
        if bar is None:
            raise RejectedCall(f"no bar for {symbol} on {day} (not a trading day, or no data)")
        return answer({"symbol": symbol, **bar.model_dump()})

    async def get_recent_closes(
        sessions: Annotated[int, Field(ge=1, le=MAX_SESSIONS)] = 20,
        symbols: Annotated[list[str] | None, Field(description="Default: the universe")] = None,
    ) -> str:
        """Closes of the last `sessions` trading days before today for many symbols at once."""
        wanted = [_symbol(context, s) for s in symbols] if symbols else list(context.universe)
        closes = {
            symbol: [[bar.date, bar.close] for bar in market.history(symbol, sessions)]
            for symbol in wanted
        }
        return answer({"date": context.label, "closes": closes})

    tools = [get_universe_snapshot, get_price_history, get_price, get_recent_closes]
    add_tools(server, *(_hourly_tools(context, tools) if context.hourly else tools))


def _hourly_tools(context: SessionContext, tools: list[Tool]) -> list[Tool]:
    """An hourly session's tools: described as hourly, and its own `get_price`."""
    for function in tools:
        if function.__name__ in HOURLY_DOCS:
            function.__doc__ = HOURLY_DOCS[function.__name__]
    return [_hourly_get_price(context) if f.__name__ == "get_price" else f for f in tools]


def _hourly_get_price(context: SessionContext) -> Tool:
    """`get_price` of an hourly session: a bar by its time, or a past day's last hourly bar."""
    market = context.market

    async def get_price(
        symbol: Annotated[str, Field(description="Ticker, e.g. AAPL")],
        date: Annotated[
            str,
            Field(
                description=(
                    "YYYY-MM-DD HH:MM for one hourly bar, or YYYY-MM-DD for a day's last bar; "
                    "this session or earlier"
                )
            ),
        ],
    ) -> str:
        """One hourly bar: an earlier one whole, this session's only its open. A past day
        (YYYY-MM-DD) gives its last hourly bar; today gives this session's open."""
        symbol = _symbol(context, symbol)
        moment = _past_moment(context, date)
        if isinstance(moment, datetime):
            bar, where = market.bar_at(symbol, moment), f"at {moment:%Y-%m-%d %H:%M}"
        else:
            bar, where = market.bar_on(symbol, moment), f"on {moment}"
        if bar is None:
            raise RejectedCall(f"no bar for {symbol} {where} (not a bar time, or no data)")
        return answer({"symbol": symbol, **bar.model_dump()})

    return get_price


def _past_day(context: SessionContext, text: str) -> date:
    """The day `text` names, provided it is the session's day or earlier."""
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise RejectedCall(f"date must look like {context.day}, got {text!r}") from None
    if day > context.day:
        raise RejectedCall(f"{day} is in the future: today is {context.day}")
    return day


def _past_moment(context: SessionContext, text: str) -> date | datetime:
    """The day, or bar time (market time), `text` names in an hourly session; none after it."""
    text = text.strip()
    if len(text) <= len("YYYY-MM-DD"):
        return _past_day(context, text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise RejectedCall(
            f"date must look like {context.label} or {context.day}, got {text!r}"
        ) from None
    if moment.tzinfo is not None:  # a time with an offset names an instant: read it locally
        zone = context.fill_time.tzinfo if context.fill_time is not None else EXCHANGE_TZ
        moment = moment.astimezone(zone).replace(tzinfo=None)
    if moment > context.at:
        raise RejectedCall(
            f"{moment:%Y-%m-%d %H:%M} is in the future: this session is {context.label}"
        )
    return moment
