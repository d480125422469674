"""Price tools: history before the session day and, of the session day, only its open."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from agent_tools.context import SessionContext
from agent_tools.servers.tooling import RejectedCall, add_tools, answer

MAX_SESSIONS = 260


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
        return answer({"date": str(context.day), "benchmark": context.benchmark, "symbols": rows})

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
        return answer({"date": str(context.day), "closes": closes})

    add_tools(server, get_universe_snapshot, get_price_history, get_price, get_recent_closes)


def _past_day(context: SessionContext, text: str) -> date:
    """The day `text` names, provided it is the session's day or earlier."""
    try:
        day = date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise RejectedCall(f"date must look like {context.day}, got {text!r}") from None
    if day > context.day:
        raise RejectedCall(f"{day} is in the future: today is {context.day}")
    return day
