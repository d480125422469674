"""Trade tools: buy and sell at the session's open under the market's rules, and the portfolio."""

from __future__ import annotations

from typing import Annotated

from fastmcp import FastMCP
from pydantic import Field

from agent_tools.context import SessionContext
from agent_tools.servers.tooling import RejectedCall, add_tools, answer
from models.errors import OrderRejected

# Quantities arrive as the model wrote them; the trading rules give the clear error, not the schema.
Shares = Annotated[int | float | str, Field(description="Whole number of shares, e.g. 10")]
Symbol = Annotated[str, Field(description="Ticker, e.g. AAPL")]


def register(server: FastMCP, context: SessionContext) -> None:
    """Add the trade tools, bound to `context`, to `server`."""
    rules = context.rules
    # Other markets and costed fills state their rules in the tools; the original's rules keep
    # their recorded wording.
    market_rules_shown = not context.original_compat

    def portfolio_view() -> dict:
        book = context.trading.portfolio
        value = book.cash
        for symbol, shares in book.positions.items():
            price = context.market.today(symbol).open
            if price is None:  # no bar today (a delisted symbol): its last close
                previous = context.market.previous_close(symbol)
                price = previous[0] if previous else 0.0
            value += shares * price
        view = {
            "date": context.label,
            "cash": round(book.cash, 4),
            "positions": dict(sorted(book.positions.items())),
            "value_at_open": round(value, 4),
        }
        if market_rules_shown:
            view["rules"] = rules.model_dump(exclude_none=True)  # free fills: no `costs` key
            view["sellable"] = {s: context.trading.sellable(s) for s in sorted(book.positions)}
        return view

    async def get_portfolio() -> str:
        """Cash, shares held, and their value at today's open."""
        return answer(portfolio_view())

    def place(side: str, symbol: str, shares: int | float | str) -> str:
        order = context.trading.buy if side == "buy" else context.trading.sell
        try:
            fill = order(symbol, shares)
        except OrderRejected as exc:
            raise RejectedCall(f"{side} rejected: {exc}") from None
        hidden = {"seq", "session_at"} if rules.costs else {"seq", "session_at", "cost"}
        return answer({"filled": fill.model_dump(exclude=hidden), **portfolio_view()})

    async def buy(symbol: Symbol, shares: Shares) -> str:
        """Buy whole shares at today's open. Cash may not go below zero."""
        return place("buy", symbol, shares)

    async def sell(symbol: Symbol, shares: Shares) -> str:
        """Sell whole shares you hold at today's open. No short selling."""
        return place("sell", symbol, shares)

    if market_rules_shown:
        when = "this session's open" if context.hourly else "today's open"
        buy.__doc__ = f"Buy at {when}. Cash may not go below zero. {rules.describe()}"
        sell.__doc__ = f"Sell what you hold at {when}. No short selling. {rules.describe()}"
    add_tools(server, get_portfolio, buy, sell)
