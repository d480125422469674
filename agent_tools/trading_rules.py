"""The trading rules of the original benchmark, enforced on one model's book for one session.

Market orders for whole shares fill completely at the open of the session's bar; no shorting, no
margin, no fees. A rejected order raises `OrderRejected` with a message written for the agent to
read, and leaves the book exactly as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, datetime

from models.book import Fill, Portfolio, Side
from models.errors import OrderRejected
from models.prices import PriceBook

# No real order is this large; a bigger number is a model's mistake (or an overflow attempt).
MAX_ORDER_SHARES = 10_000_000
# Float arithmetic on cash must not turn "exactly affordable" into "insufficient".
CASH_EPSILON = 1e-9


def parse_shares(shares: object) -> int:
    """Validate an order quantity: a positive whole number of shares, not absurdly large."""
    if isinstance(shares, bool):
        raise OrderRejected(f"shares must be a whole number, got {shares!r}")
    if isinstance(shares, str):
        try:
            shares = float(shares.strip())
        except ValueError:
            raise OrderRejected(f"shares must be a whole number, got {shares!r}") from None
    if isinstance(shares, float):
        if not math.isfinite(shares) or not shares.is_integer():
            raise OrderRejected(f"shares must be a whole number, got {shares!r}")
        shares = int(shares)
    if not isinstance(shares, int):
        raise OrderRejected(f"shares must be a whole number, got {shares!r}")
    if shares <= 0:
        raise OrderRejected(f"shares must be positive, got {shares}")
    if shares > MAX_ORDER_SHARES:
        raise OrderRejected(f"shares must be at most {MAX_ORDER_SHARES:,}, got {shares:,}")
    return shares


class TradingSession:
    """One model's book during one session: validates and fills orders at the session's open."""

    def __init__(
        self,
        portfolio: Portfolio,
        prices: PriceBook,
        at: datetime | date,
        universe: Iterable[str],
        is_session_day: Callable[[date], bool],
    ) -> None:
        if not isinstance(at, datetime):
            at = datetime(at.year, at.month, at.day)
        self.at = at
        self.prices = prices
        self.universe = frozenset(s.upper() for s in universe)
        self.portfolio = portfolio.model_copy(deep=True)
        self.fills: list[Fill] = []
        self._is_session = is_session_day(at.date())

    @property
    def day(self) -> date:
        return self.at.date()

    def open_price(self, symbol: str) -> float:
        """The fill price of `symbol` in this session; `OrderRejected` says why there is none."""
        symbol = self._check_symbol(symbol)
        if not self._is_session:
            raise OrderRejected(f"{self.day} is not a trading day; the market is closed")
        price = self.prices.open_at(symbol, self.at)
        if price is None or not math.isfinite(price) or price <= 0:
            raise OrderRejected(f"no price for {symbol} at {self._when()}; it cannot be traded")
        return price

    def buy(self, symbol: str, shares: object) -> Fill:
        """Buy whole shares at the open; cash may not go below zero."""
        quantity = parse_shares(shares)
        symbol = self._check_symbol(symbol)
        price = self.open_price(symbol)
        cost = price * quantity
        cash = self.portfolio.cash
        if cost > cash + CASH_EPSILON:
            affordable = int((cash + CASH_EPSILON) // price)
            raise OrderRejected(
                f"insufficient cash: {quantity} {symbol} at {price:.4f} costs {cost:,.2f} "
                f"but cash is {cash:,.2f} (at most {affordable} shares)"
            )
        new_cash = max(cash - cost, 0.0)
        return self._fill("buy", symbol, quantity, price, new_cash)

    def sell(self, symbol: str, shares: object) -> Fill:
        """Sell whole shares held at the open; no short selling."""
        quantity = parse_shares(shares)
        symbol = self._check_symbol(symbol)
        held = self.portfolio.shares(symbol)
        if held == 0:
            raise OrderRejected(f"no position in {symbol} to sell")
        if quantity > held:
            raise OrderRejected(
                f"insufficient shares: holding {held} {symbol}, asked to sell {quantity}"
            )
        price = self.open_price(symbol)
        return self._fill("sell", symbol, -quantity, price, self.portfolio.cash + price * quantity)

    def _fill(self, side: Side, symbol: str, delta: int, price: float, new_cash: float) -> Fill:
        positions = dict(self.portfolio.positions)
        positions[symbol] = positions.get(symbol, 0) + delta
        if positions[symbol] == 0:
            del positions[symbol]
        self.portfolio = Portfolio(cash=new_cash, positions=positions)
        fill = Fill(
            seq=len(self.fills) + 1,
            side=side,
            symbol=symbol,
            shares=abs(delta),
            price=price,
            cash_after=new_cash,
        )
        self.fills.append(fill)
        return fill

    def _check_symbol(self, symbol: object) -> str:
        if not isinstance(symbol, str) or not symbol.strip():
            raise OrderRejected(f"symbol must be a ticker such as 'AAPL', got {symbol!r}")
        symbol = symbol.strip().upper()
        if symbol not in self.universe:
            raise OrderRejected(
                f"unknown symbol {symbol}: not in the tradable universe of "
                f"{len(self.universe)} symbols"
            )
        return symbol

    def _when(self) -> str:
        return str(self.day) if self.at.time() == datetime.min.time() else str(self.at)
