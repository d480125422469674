"""The trading rules of the original benchmark, enforced on one model's book for one session.

Market orders fill completely at the open of the session's bar; no shorting, no margin. A
market's `TradingRules` price each order's costs (commission, taxes, fees and slippage: see
`models.costs`; none with a config's `costs: none`, as in the original), size the orders (whole
shares, lots of 100, or coin fractions kept to a few decimals, cash included) and settle them
(T+1: what was bought on a trading day cannot be sold until the next one, whichever hourly
session of the day it was bought in). A rejected order raises `OrderRejected` with a message
written for the agent to read, and leaves the book exactly as it was.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import date, datetime

from models.book import CASH_EPSILON, Fill, Portfolio, Side, TradingRules, as_quantity
from models.costs import OrderCost, affordable_steps
from models.errors import OrderRejected
from models.prices import PriceBook

# No real order is this large; a bigger number is a model's mistake (or an overflow attempt).
MAX_ORDER_SHARES = 10_000_000


def _number(shares: object) -> float:
    if isinstance(shares, bool):
        raise OrderRejected(f"the quantity must be a number, got {shares!r}")
    if isinstance(shares, str):
        try:
            return float(shares.strip())
        except ValueError:
            raise OrderRejected(f"the quantity must be a number, got {shares!r}") from None
    if not isinstance(shares, int | float):
        raise OrderRejected(f"the quantity must be a number, got {shares!r}")
    return float(shares)


def parse_quantity(shares: object, rules: TradingRules) -> int | float:
    """Validate an order quantity under a market's rules: whole shares, whole lots, or a
    positive fraction rounded to the market's decimals."""
    if rules.quantity == "whole":
        return parse_shares(shares)
    if rules.quantity == "lots":
        quantity = parse_shares(shares)
        if quantity % rules.lot:
            lower = quantity // rules.lot * rules.lot
            nearest = f"{lower} or {lower + rules.lot}" if lower else f"{rules.lot}"
            raise OrderRejected(
                f"quantity must be a multiple of {rules.lot} shares (one lot), got {quantity}; "
                f"try {nearest}"
            )
        return quantity
    amount = _number(shares)
    if not math.isfinite(amount) or amount <= 0:
        raise OrderRejected(f"the amount must be positive, got {shares!r}")
    rounded = round(amount, rules.decimals)
    if rounded <= 0:
        raise OrderRejected(
            f"the amount {amount} rounds to 0 at {rules.decimals} decimal places; "
            f"the smallest order is {10**-rules.decimals:.{rules.decimals}f}"
        )
    if rounded > MAX_ORDER_SHARES:
        raise OrderRejected(f"the amount must be at most {MAX_ORDER_SHARES:,}, got {amount:,}")
    return as_quantity(rounded)


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
    """One model's book through a trading day's sessions: validates and fills orders at the
    current session's open, under the market's quantity and settlement rules."""

    def __init__(
        self,
        portfolio: Portfolio,
        prices: PriceBook,
        at: datetime | date,
        universe: Iterable[str],
        is_session_day: Callable[[date], bool],
        rules: TradingRules | None = None,
    ) -> None:
        if not isinstance(at, datetime):
            at = datetime(at.year, at.month, at.day)
        self.at = at
        self.prices = prices
        self.universe = frozenset(s.upper() for s in universe)
        self.rules = rules or TradingRules()
        self.portfolio = portfolio.model_copy(deep=True)
        self.fills: list[Fill] = []
        self.bought_today: dict[str, int | float] = {}  # what T+1 keeps from being sold today
        self._is_session = is_session_day(at.date())

    @property
    def day(self) -> date:
        return self.at.date()

    def next_session(self, at: datetime) -> None:
        """Move to a later session of the same trading day (an hourly bar); the book carries."""
        if at.date() != self.day or at <= self.at:
            raise ValueError(f"{at} is not a later session of {self.day}")
        self.at = at

    def open_price(self, symbol: str) -> float:
        """The fill price of `symbol` in this session; `OrderRejected` says why there is none."""
        symbol = self._check_symbol(symbol)
        if not self._is_session:
            raise OrderRejected(f"{self.day} is not a trading day; the market is closed")
        price = self.prices.open_at(symbol, self.at)
        if price is None or not math.isfinite(price) or price <= 0:
            raise OrderRejected(f"no price for {symbol} at {self._when()}; it cannot be traded")
        return price

    def sellable(self, symbol: str) -> int | float:
        """What of `symbol` may be sold now: all of it, less today's buys under T+1."""
        held = self.portfolio.shares(symbol)
        if self.rules.settlement == "T+1":
            held = as_quantity(self._round(held - self.bought_today.get(symbol, 0)))
        return max(held, 0)

    def order_cost(self, side: Side, quantity: float, price: float) -> OrderCost:
        """What an order of `quantity` at `price` pays beyond its value (nothing without costs)."""
        if self.rules.costs is None:
            return OrderCost()
        return self.rules.costs.order_cost(side, quantity, price)

    def buy(self, symbol: str, shares: object) -> Fill:
        """Buy at the open; cash may not go below zero, costs included."""
        quantity = parse_quantity(shares, self.rules)
        symbol = self._check_symbol(symbol)
        price = self.open_price(symbol)
        costs = self.order_cost("buy", quantity, price).total
        total = price * quantity + costs
        cash = self.portfolio.cash
        if total > cash + CASH_EPSILON:
            with_costs = f" plus {costs:,.2f} in costs" if self.rules.costs else ""
            raise OrderRejected(
                f"insufficient cash: {quantity} {symbol} at {price:.4f} costs "
                f"{price * quantity:,.2f}{with_costs} but cash is {cash:,.2f} "
                f"(at most {self._affordable(cash, price)})"
            )
        fill = self._fill("buy", symbol, quantity, price, max(cash - total, 0.0), costs)
        self.bought_today[symbol] = self._round(self.bought_today.get(symbol, 0) + quantity)
        return fill

    def sell(self, symbol: str, shares: object) -> Fill:
        """Sell what is held (and, under T+1, was not bought today) at the open; no shorting."""
        quantity = parse_quantity(shares, self.rules)
        symbol = self._check_symbol(symbol)
        held = self.portfolio.shares(symbol)
        if held == 0:
            raise OrderRejected(f"no position in {symbol} to sell")
        if quantity > held:
            raise OrderRejected(
                f"insufficient shares: holding {held} {symbol}, asked to sell {quantity}"
            )
        if quantity > self.sellable(symbol):
            raise OrderRejected(
                f"T+1 settlement: of {held} {symbol} held, {self.bought_today[symbol]} were "
                f"bought today and cannot be sold before the next trading day; at most "
                f"{self.sellable(symbol)} can be sold now"
            )
        price = self.open_price(symbol)
        costs = self.order_cost("sell", quantity, price).total
        new_cash = self.portfolio.cash + price * quantity - costs
        if new_cash < -CASH_EPSILON:  # a minimum commission above a tiny sale's value
            raise OrderRejected(
                f"the sale of {quantity} {symbol} at {price:.4f} brings {price * quantity:,.2f} "
                f"but costs {costs:,.2f}, more than it and the cash ({self.portfolio.cash:,.2f})"
            )
        return self._fill("sell", symbol, -quantity, price, max(new_cash, 0.0), costs)

    def _affordable(self, cash: float, price: float) -> str:
        """The most `cash` buys at `price`, costs included, as a refused buy names it."""
        rules = self.rules
        if rules.quantity == "fractional":
            scale = 10**rules.decimals
            steps = affordable_steps(cash, price, lambda n: n / scale, rules.costs, CASH_EPSILON)
            # Free fills have always named the amount as a float (`5.0 units`).
            return f"{steps / scale if rules.costs is None else as_quantity(steps / scale)} units"
        step = rules.lot if rules.quantity == "lots" else 1
        steps = affordable_steps(cash, price, lambda n: n * step, rules.costs, CASH_EPSILON)
        return f"{steps * step} shares" + (", costs included" if rules.costs else "")

    def _round(self, value: float) -> float:
        # Fractional books keep cash and holdings at the market's precision, as the original.
        if self.rules.quantity != "fractional":
            return value
        return round(value, self.rules.decimals)

    def _fill(
        self,
        side: Side,
        symbol: str,
        delta: int | float,
        price: float,
        new_cash: float,
        cost: float,
    ) -> Fill:
        new_cash = self._round(new_cash)
        positions = dict(self.portfolio.positions)
        positions[symbol] = self._round(positions.get(symbol, 0) + delta)
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
            session_at=self.at,
            cost=cost,
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
