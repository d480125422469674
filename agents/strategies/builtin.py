"""The built-in strategies (equal-weight, momentum, random), their parameters and their rules."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar

from pydantic import Field, field_validator

from agents.strategies.chat_model import Order, Plan, StrategyChatModel, StrategyParams
from agents.strategies.observations import GET_CLOSES, GET_PORTFOLIO, GET_SNAPSHOT, Book, DayView

# Cash arithmetic in floats must never turn "exactly affordable" into a rejected order.
CASH_EPSILON = 1e-9
# Weekday blocks for the momentum rebalance rule are counted from this Monday.
WEEKDAY_EPOCH = date(1970, 1, 5)


class EqualWeightParams(StrategyParams):
    symbols: list[str] | None = Field(
        default=None, min_length=1, description="trade only these symbols (default: the universe)"
    )
    cash_buffer: float = Field(default=0.0, ge=0.0, lt=1.0, description="fraction of cash kept")

    @field_validator("symbols")
    @classmethod
    def _upper(cls, symbols: list[str] | None) -> list[str] | None:
        if symbols is None:
            return None
        cleaned = [s.strip().upper() for s in symbols]
        if any(not s for s in cleaned):
            raise ValueError("symbols must be tickers such as 'AAPL'")
        return list(dict.fromkeys(cleaned))


class MomentumParams(StrategyParams):
    top_k: int = Field(default=10, ge=1, description="how many names to hold")
    lookback: int = Field(default=20, ge=2, le=260, description="closes in the trailing return")
    rebalance_every: int = Field(default=5, ge=1, description="weekdays between rebalances")


class RandomParams(StrategyParams):
    seed: int = 0
    max_orders: int = Field(default=3, ge=1, le=100)
    trade_probability: float = Field(default=0.5, ge=0.0, le=1.0)
    max_cash_fraction: float = Field(
        default=0.25, gt=0.0, le=1.0, description="a buy costs at most this share of the cash left"
    )


def _affordable(cash: float, price: float) -> int:
    """Whole shares `cash` buys at `price`."""
    shares = math.floor((cash + CASH_EPSILON) / price)
    while shares > 0 and shares * price > cash + CASH_EPSILON:
        shares -= 1
    return max(shares, 0)


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


class EqualWeightBuyAndHold(StrategyChatModel):
    """Buy the tradable universe in equal dollar weights once, then hold forever.

    While it holds nothing, it buys `floor(cash * (1 - cash_buffer) / N / open)` shares of each of
    the N tradable symbols (those with an open today, optionally only `symbols`); once it holds
    anything, it never trades again.
    """

    strategy: ClassVar[str] = "equal-weight"
    params: EqualWeightParams = Field(default_factory=EqualWeightParams)

    def plan(self, view: DayView) -> Plan:
        if view.positions:
            return Plan(
                note=f"holding {len(view.positions)} positions bought earlier; never trades again"
            )
        wanted = self.params.symbols
        symbols = [s for s in view.opens if wanted is None or s in wanted]
        if not symbols:
            return Plan(note="nothing to buy: no requested symbol has an open price today")
        budget_share = 1.0 - self.params.cash_buffer

        def buys(book: Book) -> list[Order]:
            per_symbol = book.cash * budget_share / len(symbols)
            orders = []
            for symbol in symbols:
                shares = _affordable(per_symbol, view.opens[symbol])
                if shares > 0:
                    orders.append((symbol, shares))
            return orders

        note = (
            f"buying equal dollar weights of {len(symbols)} symbols at today's open, then holding"
        )
        if wanted is not None and len(symbols) < len(wanted):
            absent = [s for s in wanted if s not in view.opens]
            note += f" (no open today for {', '.join(absent)})"
        return Plan(note=note, buys=buys)


def weekday_ordinal(day: date) -> int:
    """Weekdays from Monday 1970-01-05 to `day` (a weekend day counts as the Friday before)."""
    days = (day - WEEKDAY_EPOCH).days
    return days // 7 * 5 + min(days % 7, 4)


def is_rebalance_day(
    today: date, previous_session: date | None, holds_nothing: bool, every: int
) -> bool:
    """Momentum's rule: rebalance when holding nothing, or when `today` opens a new block of
    `every` weekdays (counted from Monday 1970-01-05) that the previous session was not in.

    With `every=5` the blocks are calendar weeks: the first trading day of every week. Holidays
    never make it skip a block, since blocks count weekdays, not sessions.
    """
    if holds_nothing or previous_session is None:
        return True
    return weekday_ordinal(today) // every != weekday_ordinal(previous_session) // every


def trailing_returns(
    closes: dict[str, list[tuple[str, float | None]]], lookback: int, symbols: Sequence[str]
) -> dict[str, float]:
    """`close[-1] / close[0] - 1` over the last `lookback` closes, for symbols having them all."""
    returns = {}
    for symbol in symbols:
        series = [c for _, c in closes.get(symbol, [])][-lookback:]
        if len(series) == lookback and all(c is not None and c > 0 for c in series):
            returns[symbol] = series[-1] / series[0] - 1  # type: ignore[operator]
    return returns


class Momentum(StrategyChatModel):
    """Hold the `top_k` names by trailing return, equally weighted, rebalanced periodically.

    It ranks the symbols that have an open today and a full `lookback` of closes by
    `trailing_returns` (ties by symbol) and, on a rebalance day (`is_rebalance_day`, the previous
    session being the last close date the tools report), sells every holding outside the top
    `top_k`, then buys the top names up to `floor(value_at_open / len(top) / open)` shares each
    (in rank order, as far as cash goes). Holdings inside the top are not trimmed.
    """

    strategy: ClassVar[str] = "momentum"
    observe_tools: ClassVar[tuple[str, ...]] = (GET_PORTFOLIO, GET_SNAPSHOT, GET_CLOSES)
    params: MomentumParams = Field(default_factory=MomentumParams)

    def _observe_args(self, tool: str) -> dict[str, Any]:
        return {"sessions": self.params.lookback} if tool == GET_CLOSES else {}

    def plan(self, view: DayView) -> Plan:
        p = self.params
        previous = view.previous_session
        try:
            today = date.fromisoformat(view.day[:10])
            previous_day = date.fromisoformat(previous[:10]) if previous else None
        except ValueError:
            return Plan(note=f"no trade: cannot read the dates {view.day!r} / {previous!r}")
        if not is_rebalance_day(today, previous_day, not view.positions, p.rebalance_every):
            return Plan(
                note=f"not a rebalance day (every {p.rebalance_every} weekdays); holding "
                f"{len(view.positions)} positions"
            )
        returns = trailing_returns(view.closes or {}, p.lookback, list(view.opens))
        if not returns:
            return Plan(note=f"no symbol has {p.lookback} closes and an open today; no trade")
        ranked = sorted(returns, key=lambda s: (-returns[s], s))
        top = ranked[: p.top_k]
        target = view.value_at_open / len(top)
        sells = [
            (symbol, shares)
            for symbol, shares in sorted(view.positions.items())
            if symbol not in top and symbol in view.opens and shares > 0
        ]
        stuck = sorted(s for s in view.positions if s not in top and s not in view.opens)

        def buys(book: Book) -> list[Order]:
            cash = book.cash
            orders = []
            for symbol in top:
                price = view.opens[symbol]
                wanted = _affordable(target, price) - book.positions.get(symbol, 0)
                shares = min(wanted, _affordable(cash, price))
                if shares > 0:
                    orders.append((symbol, shares))
                    cash -= shares * price
            return orders

        leaders = ", ".join(f"{s} {_percent(returns[s])}" for s in top)
        note = (
            f"rebalancing to the top {len(top)} of {len(returns)} symbols by {p.lookback}-session "
            f"return ({leaders}), about {target:,.2f} each"
        )
        if stuck:
            note += f"; cannot sell {', '.join(stuck)} (no open today)"
        return Plan(note=note, sells=sells, buys=buys)


def stable_seed(*parts: object) -> int:
    """A seed from `parts` that is the same in every process (unlike `hash()`)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class RandomTrader(StrategyChatModel):
    """Random but reproducible orders: a baseline any real strategy should beat.

    A `random.Random` seeded by `stable_seed(seed, date, model name)` (in trial n >= 2 of a
    repeated backtest, `stable_seed(seed, "trial-<n>", date, model name)`) trades with probability
    `trade_probability`, placing 1 to `max_orders` orders on distinct random symbols: sells of a
    random part of a random holding, buys of a random number of shares costing at most
    `max_cash_fraction` of the cash left.
    """

    strategy: ClassVar[str] = "random"
    params: RandomParams = Field(default_factory=RandomParams)

    def day_seed(self, day: str) -> int:
        """The day's seed: trial 1's is the one a backtest without trials uses."""
        if self.trial == 1:
            return stable_seed(self.params.seed, day, self.model_name)
        return stable_seed(self.params.seed, f"trial-{self.trial}", day, self.model_name)

    def plan(self, view: DayView) -> Plan:
        p = self.params
        rng = random.Random(self.day_seed(view.day))
        if rng.random() >= p.trade_probability:
            return Plan(
                note=f"the dice said no trade today (trade probability {p.trade_probability})"
            )
        count = rng.randint(1, p.max_orders)
        sellable = sorted(s for s, n in view.positions.items() if n > 0 and s in view.opens)
        # Buys pick among symbols of which the day's cash (before any sell) buys one share at most
        # `max_cash_fraction` of it; sells only add cash, so the first buy is always affordable.
        tradable = sorted(
            s for s, price in view.opens.items() if price <= view.cash * p.max_cash_fraction
        )
        sides = ["sell" if sellable and rng.random() < 0.5 else "buy" for _ in range(count)]
        sell_symbols = rng.sample(sellable, min(sides.count("sell"), len(sellable)))
        sells = [(s, rng.randint(1, view.positions[s])) for s in sell_symbols]
        buy_symbols = rng.sample(tradable, min(sides.count("buy"), len(tradable)))
        draws = [rng.random() for _ in buy_symbols]

        def buys(book: Book) -> list[Order]:
            cash = book.cash
            orders = []
            for symbol, draw in zip(buy_symbols, draws, strict=True):
                price = view.opens[symbol]
                most = _affordable(cash * p.max_cash_fraction, price)
                if most > 0:
                    shares = min(most, 1 + int(draw * most))
                    orders.append((symbol, shares))
                    cash -= shares * price
            return orders

        return Plan(
            note=f"random orders (seed {p.seed}): sell {len(sells)}, buy up to {len(buy_symbols)}",
            sells=sells,
            buys=buys,
        )
