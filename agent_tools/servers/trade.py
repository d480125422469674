"""Trade tools: buy and sell whole shares at today's open, and the portfolio view."""

from __future__ import annotations

from typing import Annotated, Any

from fastmcp import FastMCP
from pydantic import Field

from agent_tools.context import SessionContext
from agent_tools.servers.errors import RejectedCall
from agent_tools.trading.rules import OrderRejected

# Quantities arrive as the model wrote them; the trading rules give the clear error, not the schema.
Shares = Annotated[int | float | str, Field(description="Whole number of shares, e.g. 10")]
Symbol = Annotated[str, Field(description="Ticker, e.g. AAPL")]


def register(server: FastMCP, context: SessionContext) -> None:
    """Add the trade tools, bound to `context`, to `server`."""

    def portfolio_view() -> dict[str, Any]:
        book = context.trading.portfolio
        value = book.cash
        for symbol, shares in book.positions.items():
            value += shares * (context.market.today(symbol).open or 0.0)
        return {
            "date": str(context.day),
            "cash": round(book.cash, 4),
            "positions": dict(sorted(book.positions.items())),
            "value_at_open": round(value, 4),
        }

    @server.tool(output_schema=None)  # see build_server: no per-call JSON-schema pass
    async def get_portfolio() -> dict[str, Any]:
        """Cash, shares held, and their value at today's open."""
        return portfolio_view()

    @server.tool(output_schema=None)  # see build_server: no per-call JSON-schema pass
    async def buy(symbol: Symbol, shares: Shares) -> dict[str, Any]:
        """Buy whole shares at today's open. Cash may not go below zero."""
        try:
            fill = context.trading.buy(symbol, shares)
        except OrderRejected as exc:
            raise RejectedCall(f"buy rejected: {exc}") from None
        return {"filled": fill.model_dump(exclude={"seq"}), **portfolio_view()}

    @server.tool(output_schema=None)  # see build_server: no per-call JSON-schema pass
    async def sell(symbol: Symbol, shares: Shares) -> dict[str, Any]:
        """Sell whole shares you hold at today's open. No short selling."""
        try:
            fill = context.trading.sell(symbol, shares)
        except OrderRejected as exc:
            raise RejectedCall(f"sell rejected: {exc}") from None
        return {"filled": fill.model_dump(exclude={"seq"}), **portfolio_view()}
