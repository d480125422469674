"""The built-in strategies (equal-weight, momentum, random), their parameters and their rules."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from pydantic import Field, field_validator

from agents.strategies.chat_model import Order, Plan, StrategyChatModel, StrategyParams
from agents.strategies.observations import GET_CLOSES, GET_PORTFOLIO, GET_SNAPSHOT, Book, DayView
from configs.loader import INDEX_WEIGHT_STRATEGY
from models.book import CASH_EPSILON, TradingRules, as_quantity
from models.costs import TradingCosts, affordable_steps, buy_total

# get_portfolio reports cash to 4 decimals and a fractional book rounds its cash after each fill,
# so outside the original's rules every buy keeps this much back (more with more orders before it).
CASH_MARGIN = 1e-4
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


class IndexWeightParams(StrategyParams):
    weights: dict[str, float] = Field(
        min_length=1, description="each symbol's weight, any positive scale (default: the index's)"
    )
    cash_buffer: float = Field(default=0.0, ge=0.0, lt=1.0, description="fraction of cash kept")

    @field_validator("weights")
    @classmethod
    def _positive(cls, weights: dict[str, float]) -> dict[str, float]:
        cleaned = {s.strip().upper(): w for s, w in weights.items()}
        bad = sorted(s for s, w in cleaned.items() if not s or not w > 0 or not math.isfinite(w))
        if bad:
            raise ValueError(f"weights must be positive numbers; not so for {', '.join(bad)}")
        return cleaned


class MomentumParams(StrategyParams):
    top_k: int = Field(default=10, ge=1, description="how many names to hold")
    lookback: int = Field(default=20, ge=2, le=260, description="closes in the trailing return")
    rebalance_every: int = Field(
        default=5,
        ge=1,
        description="weekdays between rebalances (days, in a market trading every day)",
    )


class RandomParams(StrategyParams):
    seed: int = 0
    max_orders: int = Field(default=3, ge=1, le=100)
    trade_probability: float = Field(default=0.5, ge=0.0, le=1.0)
    max_cash_fraction: float = Field(
        default=0.25, gt=0.0, le=1.0, description="a buy costs at most this share of the cash left"
    )


@dataclass(frozen=True)
class Sizing:
    """Order sizes in steps under a market's rules: shares, lots of `step` shares, or coin
    amounts of 10**-decimals, each buy leaving room for its costs."""

    step: int = 1  # shares per step: 1, or one lot
    decimals: int = 0  # fractional markets: a step is 10**-decimals
    margin: float = 0.0  # cash kept back per order (CASH_MARGIN), 0 under the original's rules
    costs: TradingCosts | None = None  # what an order pays beyond its value
    # The original's rules (`Market.original_compat`): sized exactly as the recorded runs were.
    original: bool = False

    @classmethod
    def of(cls, rules: TradingRules | None) -> Sizing:
        """The sizing of the market whose rules get_portfolio reported; it reports none under
        the original's rules."""
        if rules is None:
            return cls(original=True)
        if rules.quantity == "lots":
            return cls(step=rules.lot, margin=CASH_MARGIN, costs=rules.costs)
        if rules.quantity == "fractional":
            margin = max(CASH_MARGIN, 10.0**-rules.decimals)
            return cls(decimals=rules.decimals, margin=margin, costs=rules.costs)
        return cls(margin=CASH_MARGIN, costs=rules.costs)

    @property
    def scale(self) -> int:
        return 10**self.decimals

    def amount(self, steps: int) -> int | float:
        """The order quantity of `steps` steps."""
        if self.scale == 1:
            return steps * self.step
        return as_quantity(steps / self.scale)

    def steps_in(self, quantity: float) -> int:
        """Whole steps in `quantity`, rounded down (a fraction's float error forgiven)."""
        if self.scale == 1:
            return int(quantity // self.step)
        return max(math.floor(quantity * self.scale + 1e-6), 0)

    def affordable(self, cash: float, price: float, placed: int = 0) -> int:
        """Whole steps `cash` buys at `price`, costs included, keeping back the margin of
        `placed` + 1 orders (none under the original's rules, which forgive float error as the
        trading rules do)."""
        budget = cash - self.margin * (placed + 1)
        epsilon = CASH_EPSILON if self.original else 0.0
        return affordable_steps(budget, price, self.amount, self.costs, epsilon)

    def buy_total(self, quantity: float, price: float) -> float:
        """What a buy of `quantity` at `price` takes from cash, costs included."""
        return buy_total(quantity, price, self.costs)

    def buys_any(self, budget: float, price: float) -> bool:
        """Whether `budget` buys the smallest order at `price`."""
        if self.original:
            return price <= budget  # the recorded rule, float for float
        return self.affordable(budget, price) > 0

    def sell_steps(self, view: DayView, symbol: str) -> int:
        """Whole steps of `symbol` that may be sold now (T+1 and lots respected)."""
        return self.steps_in(view.can_sell(symbol))


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


# The most single steps `invested_steps` spends leftover cash on (a guard: a few hundred suffice).
MAX_FILL_STEPS = 100_000


def invested_steps(
    budget: float,
    prices: dict[str, float],
    sizing: Sizing,
    weights: dict[str, float] | None = None,
) -> dict[str, int]:
    """`budget` spread over `prices`' symbols by `weights` (default: equal), in whole steps
    (shares, lots, coin decimals), costs included, leaving less cash than one more step of any
    symbol would take.

    Each symbol first gets the steps its share buys (rounded down). What whole shares or lots
    leave over is then spent one step at a time on the symbol that stays the least overweight
    after it (its value against its target, the cheaper step on a tie), until no step is
    affordable: with 101 names and $10,000, names dearer than their $99 share would otherwise
    leave a third of the book in cash. A coin market's rounding leaves only crumbs, kept.
    """
    if not prices:
        return {}
    total = sum(weights[s] for s in prices) if weights else len(prices)
    weight = {s: (weights[s] if weights else 1.0) / total for s in prices}
    # budget / n exactly when equal, so the recorded equal-weight runs keep their orders.
    share = {s: budget * weights[s] / total if weights else budget / total for s in prices}
    steps = {s: sizing.affordable(share[s], price) for s, price in prices.items()}
    if sizing.scale != 1:
        return steps

    def spent(symbol: str, count: int) -> float:
        if count == 0:
            return 0.0
        return sizing.buy_total(sizing.amount(count), prices[symbol]) + sizing.margin

    left = budget - sum(spent(symbol, count) for symbol, count in steps.items())
    for _ in range(MAX_FILL_STEPS):
        extra = {s: spent(s, n + 1) - spent(s, n) for s, n in steps.items()}
        fitting = [s for s in prices if extra[s] <= left]
        if not fitting:
            break
        step_value = {s: prices[s] * sizing.amount(1) for s in fitting}
        # Equal weights compare values alone: the recorded runs' exact order of picks.
        target = weight if weights else dict.fromkeys(prices, 1.0)
        pick = min(
            fitting, key=lambda s: ((steps[s] + 1) * step_value[s] / target[s], step_value[s], s)
        )
        steps[pick] += 1
        left -= extra[pick]
    return steps


class BuyOnceAndHold(StrategyChatModel):
    """Spend the cash once on `targets`, fully invested (`invested_steps`), then hold forever.

    Once it holds anything it never trades again, so an hourly market's later sessions hold too.
    A name whose single lot costs more than the whole budget is never bought; its share goes to
    the others.
    """

    def targets(self, view: DayView) -> tuple[list[str], dict[str, float] | None, list[str]]:
        """The symbols to buy today, their weights (None: equal), and the wanted ones with no
        open today."""
        raise NotImplementedError

    def describe(self, count: int) -> str:
        """What the plan's note says it buys."""
        raise NotImplementedError

    def plan(self, view: DayView) -> Plan:
        if view.positions:
            return Plan(
                note=f"holding {len(view.positions)} positions bought earlier; never trades again"
            )
        symbols, weights, absent = self.targets(view)
        if not symbols:
            return Plan(note="nothing to buy: no requested symbol has an open price today")
        budget_share = 1.0 - self.params.cash_buffer  # type: ignore[attr-defined]
        sizing = Sizing.of(view.rules)

        def buys(book: Book) -> list[Order]:
            prices = {symbol: view.opens[symbol] for symbol in symbols}
            steps = invested_steps(book.cash * budget_share, prices, sizing, weights)
            return [(symbol, sizing.amount(n)) for symbol, n in steps.items() if n > 0]

        note = f"buying {self.describe(len(symbols))} at today's open, then holding"
        if absent:
            note += f" (no open today for {', '.join(absent)})"
        return Plan(note=note, buys=buys)


class EqualWeightBuyAndHold(BuyOnceAndHold):
    """Buy the tradable universe in equal dollar weights once, fully invested, then hold forever.

    While it holds nothing, it spends `cash * (1 - cash_buffer)` on the N tradable symbols (those
    with an open today, optionally only `symbols`) by `invested_steps`: each symbol's equal share
    rounded down to whole shares, lots or coin decimals, then the rest one share (lot) at a time
    on the least overweight name, until less cash is left than any more share would take, costs
    included.
    """

    strategy: ClassVar[str] = "equal-weight"
    params: EqualWeightParams = Field(default_factory=EqualWeightParams)

    def targets(self, view: DayView) -> tuple[list[str], dict[str, float] | None, list[str]]:
        wanted = self.params.symbols
        symbols = [s for s in view.opens if wanted is None or s in wanted]
        absent = [s for s in wanted or [] if s not in view.opens] if symbols else []
        return symbols, None, absent

    def describe(self, count: int) -> str:
        return f"equal dollar weights of {count} symbols"


class IndexWeightBuyAndHold(BuyOnceAndHold):
    """Buy the benchmark's constituents by index weight once, fully invested, then hold forever.

    `weights` default to the universe's published ones (`configs/universes.yaml`: the SSE 50's,
    CD5's coins). Symbols without an open today are left out and the others' weights rescaled;
    lots and whole shares are filled as equal-weight fills them, against each name's target.
    """

    strategy: ClassVar[str] = INDEX_WEIGHT_STRATEGY
    params: IndexWeightParams

    def targets(self, view: DayView) -> tuple[list[str], dict[str, float] | None, list[str]]:
        weights = self.params.weights
        symbols = [s for s in weights if s in view.opens]
        absent = [s for s in weights if s not in view.opens] if symbols else []
        return symbols, weights, absent

    def describe(self, count: int) -> str:
        return f"{count} symbols by index weight"


def weekday_ordinal(day: date) -> int:
    """Weekdays from Monday 1970-01-05 to `day` (a weekend day counts as the Friday before)."""
    days = (day - WEEKDAY_EPOCH).days
    return days // 7 * 5 + min(days % 7, 4)


def session_ordinal(day: date, weekends: bool = False) -> int:
    """`weekday_ordinal(day)`; calendar days since Monday 1970-01-05 in a market that also
    trades on weekends (crypto), where every day is a session."""
    return (day - WEEKDAY_EPOCH).days if weekends else weekday_ordinal(day)


def is_rebalance_day(
    today: date,
    previous_session: date | None,
    holds_nothing: bool,
    every: int,
    weekends: bool = False,
) -> bool:
    """Momentum's rule: rebalance when holding nothing, or when `today` opens a new block of
    `every` weekdays (counted from Monday 1970-01-05) that the previous session was not in.

    With `every=5` the blocks are calendar weeks: the first trading day of every week. Holidays
    never make it skip a block, since blocks count weekdays, not sessions. With `weekends` (a
    market with a session every day) the blocks count calendar days, so every `every` sessions.
    """
    if holds_nothing or previous_session is None:
        return True
    block = session_ordinal(today, weekends) // every
    return block != session_ordinal(previous_session, weekends) // every


def trades_on_weekends(view: DayView, today: date) -> bool:
    """Whether the market has weekend sessions: today or a session the tools showed is one.

    In a market trading every day a lookback of 5 or more closes always shows a weekend.
    """
    dates = [today.isoformat(), *view.previous_dates]
    dates += [d for rows in (view.closes or {}).values() for d, _ in rows]
    for text in dict.fromkeys(d[:10] for d in dates):
        try:
            if date.fromisoformat(text).weekday() >= 5:
                return True
        except ValueError:
            continue
    return False


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

    Outside NASDAQ-100 daily the market's rules size the orders (whole lots, coin decimals),
    only what T+1 lets be sold is sold, a market trading every day rebalances every
    `rebalance_every` days, and an hourly market rebalances in a day's first session only.
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
        holding = f"holding {len(view.positions)} positions"
        if view.hourly and previous_day == today:
            # A day's later hourly sessions hold: one rebalance a day, not one an hour.
            return Plan(note=f"rebalances only in a day's first session; {holding}")
        weekends = view.rules is not None and trades_on_weekends(view, today)
        if not is_rebalance_day(
            today, previous_day, not view.positions, p.rebalance_every, weekends
        ):
            unit = "days" if weekends else "weekdays"
            return Plan(note=f"not a rebalance day (every {p.rebalance_every} {unit}); {holding}")
        returns = trailing_returns(view.closes or {}, p.lookback, list(view.opens))
        if not returns:
            return Plan(note=f"no symbol has {p.lookback} closes and an open today; no trade")
        ranked = sorted(returns, key=lambda s: (-returns[s], s))
        return self._rebalance(view, ranked[: p.top_k], returns)

    def _rebalance(self, view: DayView, top: list[str], returns: dict[str, float]) -> Plan:
        """Sell what left the top (as far as T+1 allows), then buy the top up to equal weights."""
        sizing = Sizing.of(view.rules)
        target = view.value_at_open / len(top)
        leaving = [s for s in sorted(view.positions) if s not in top and view.positions[s] > 0]
        sells = [
            (symbol, sizing.amount(sizing.sell_steps(view, symbol)))
            for symbol in leaving
            if symbol in view.opens and sizing.sell_steps(view, symbol) > 0
        ]
        stuck = sorted(s for s in view.positions if s not in top and s not in view.opens)
        kept = [s for s in leaving if s in view.opens and s not in dict(sells)]

        def buys(book: Book) -> list[Order]:
            cash = book.cash
            orders: list[Order] = []
            for symbol in top:
                price = view.opens[symbol]
                held = sizing.steps_in(book.positions.get(symbol, 0))
                wanted = sizing.affordable(target, price) - held
                steps = min(wanted, sizing.affordable(cash, price, len(orders)))
                if steps > 0:
                    shares = sizing.amount(steps)
                    orders.append((symbol, shares))
                    cash -= sizing.buy_total(shares, price)
            return orders

        leaders = ", ".join(f"{s} {_percent(returns[s])}" for s in top)
        note = (
            f"rebalancing to the top {len(top)} of {len(returns)} symbols by "
            f"{self.params.lookback}-session return ({leaders}), about {target:,.2f} each"
        )
        if stuck:
            note += f"; cannot sell {', '.join(stuck)} (no open today)"
        if kept:
            note += f"; cannot sell {', '.join(kept)} yet (T+1 or less than one lot)"
        return Plan(note=note, sells=sells, buys=buys)


def stable_seed(*parts: object) -> int:
    """A seed from `parts` that is the same in every process (unlike `hash()`)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class RandomTrader(StrategyChatModel):
    """Random but reproducible orders: a baseline any real strategy should beat.

    A `random.Random` seeded by `stable_seed(seed, session, model name)` (in trial n >= 2 of a
    repeated backtest, `stable_seed(seed, "trial-<n>", session, model name)`), the session being
    get_portfolio's `date` (the day, or the day and time of an hourly session), trades with
    probability `trade_probability`, placing 1 to `max_orders` orders on distinct random symbols:
    sells of a random part of a random holding (what T+1 lets be sold, in whole lots), buys of a
    random quantity (shares, lots or coin decimals) costing at most `max_cash_fraction` of the
    cash left.
    """

    strategy: ClassVar[str] = "random"
    params: RandomParams = Field(default_factory=RandomParams)

    def day_seed(self, day: str) -> int:
        """The session's seed: trial 1's is the one a backtest without trials uses."""
        if self.trial == 1:
            return stable_seed(self.params.seed, day, self.model_name)
        return stable_seed(self.params.seed, f"trial-{self.trial}", day, self.model_name)

    def plan(self, view: DayView) -> Plan:
        p = self.params
        # Each hourly session has its own seed, so a day's sessions do not repeat their orders.
        rng = random.Random(self.day_seed(view.session or view.day))
        if rng.random() >= p.trade_probability:
            return Plan(
                note=f"the dice said no trade today (trade probability {p.trade_probability})"
            )
        sizing = Sizing.of(view.rules)
        count = rng.randint(1, p.max_orders)
        sellable = sorted(s for s in view.positions if sizing.sell_steps(view, s) > 0)
        sellable = [s for s in sellable if s in view.opens]
        # Buys pick among symbols of which the day's cash (before any sell) buys one share (lot,
        # coin step) for at most `max_cash_fraction` of it; sells only add cash, so the first
        # buy is always affordable.
        budget = view.cash * p.max_cash_fraction
        tradable = sorted(s for s, price in view.opens.items() if sizing.buys_any(budget, price))
        sides = ["sell" if sellable and rng.random() < 0.5 else "buy" for _ in range(count)]
        sell_symbols = rng.sample(sellable, min(sides.count("sell"), len(sellable)))
        sells = [
            (s, sizing.amount(rng.randint(1, sizing.sell_steps(view, s)))) for s in sell_symbols
        ]
        buy_symbols = rng.sample(tradable, min(sides.count("buy"), len(tradable)))
        draws = [rng.random() for _ in buy_symbols]

        def buys(book: Book) -> list[Order]:
            cash = book.cash
            orders: list[Order] = []
            for symbol, draw in zip(buy_symbols, draws, strict=True):
                price = view.opens[symbol]
                most = sizing.affordable(cash * p.max_cash_fraction, price, len(orders))
                if most > 0:
                    shares = sizing.amount(min(most, 1 + int(draw * most)))
                    orders.append((symbol, shares))
                    cash -= sizing.buy_total(shares, price)
            return orders

        return Plan(
            note=f"random orders (seed {p.seed}): sell {len(sells)}, buy up to {len(buy_symbols)}",
            sells=sells,
            buys=buys,
        )
