"""Built-in strategy models: offline LangChain chat models that trade through the real tools.

Each strategy is a `BaseChatModel` that the agent session drives exactly like an LLM: it answers
with tool calls, reads the market only from the tools' answers (the `ToolMessage`s of the
conversation it is given) and ends the model-day with a plain-text summary holding
`<FINISH_SIGNAL>`. It keeps no state between calls: every answer is a pure function of the
conversation since the last human message, so the same conversation always gets the same answer
(tool-call ids included) and a recorded session replays exactly.

A model-day runs in at most four model calls:

1. observe: `get_portfolio` and `get_universe_snapshot` (and `get_recent_closes` for momentum);
2. sell: every sell of the plan, in one message (sells do not depend on each other);
3. buy: every buy, sized on the cash the sell answers reported (or `get_portfolio`'s, when there
   were no sells), in one message; the buys together never cost more than that cash;
4. finish: what was done and why, ending with `<FINISH_SIGNAL>`.

Steps with nothing to do are skipped. A rejected order (an error `ToolMessage`) is never retried:
the strategy moves on and reports it in the summary.

The strategies (`STRATEGIES`, built from a config's `strategy` and `params` by `build_strategy`):

* `equal-weight` (`EqualWeightBuyAndHold`): while it holds nothing, buys
  `floor(cash * (1 - cash_buffer) / N / open)` shares of each of the N tradable symbols (those with
  an open today, optionally only `symbols`); once it holds anything, it never trades again.
* `momentum` (`Momentum`): ranks the symbols that have an open today and a full `lookback` of
  closes by trailing return `close[-1] / close[0] - 1` (ties by symbol) and, on a rebalance day,
  sells every holding outside the top `top_k`, then buys the top names up to
  `floor(value_at_open / len(top) / open)` shares each (in rank order, as far as cash goes).
  Holdings inside the top are not trimmed. The rebalance rule is `is_rebalance_day`: a day is one
  when the model holds nothing, or when today and the previous session (the last close date the
  tools report) fall in different blocks of `rebalance_every` weekdays counted from Monday
  1970-01-05. With the default of 5 the blocks are calendar weeks: it rebalances on its first day
  and then on the first trading day of every week. Holidays never make it skip a block.
* `random` (`RandomTrader`): a `random.Random` seeded by a SHA-256 of (seed, date, model name)
  trades with probability `trade_probability`, placing 1 to `max_orders` orders on distinct random
  symbols: sells of a random part of a random holding, buys of a random number of shares costing at
  most `max_cash_fraction` of the cash left.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.transcript import plain_text
from models.errors import ObservationError

FINISH_SIGNAL = "<FINISH_SIGNAL>"

GET_PORTFOLIO = "get_portfolio"
GET_SNAPSHOT = "get_universe_snapshot"
GET_CLOSES = "get_recent_closes"
BUY = "buy"
SELL = "sell"

# Cash arithmetic in floats must never turn "exactly affordable" into a rejected order.
CASH_EPSILON = 1e-9
# A model-day needs four calls; a conversation longer than this is not one the strategy led.
MAX_STEPS = 8
# Weekday blocks for the momentum rebalance rule are counted from this Monday.
WEEKDAY_EPOCH = date(1970, 1, 5)

Order = tuple[str, int]


# --- parameters -------------------------------------------------------------------------------


class StrategyParams(BaseModel):
    """A strategy's parameters, from the config's `params` (unknown keys are an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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


# --- what the tools told the model ------------------------------------------------------------


@dataclass
class Book:
    """Cash and shares as the latest tool answer reported them."""

    cash: float
    positions: dict[str, int]


@dataclass
class OrderResult:
    side: str
    symbol: str
    shares: int
    ok: bool
    message: str = ""


@dataclass
class DayView:
    """What the observation tools answered today, and the orders placed since."""

    day: str
    cash: float
    positions: dict[str, int]
    value_at_open: float
    opens: dict[str, float]  # tradable symbols only (an open today), in the snapshot's order
    previous_dates: list[str]
    closes: dict[str, list[tuple[str, float | None]]] | None = None
    book: Book | None = None  # the latest reported book (after today's orders so far)
    orders: list[OrderResult] = field(default_factory=list)

    @property
    def previous_session(self) -> str | None:
        """The last session before today the tools showed data of."""
        dates = [rows[-1][0] for rows in (self.closes or {}).values() if rows]
        dates = dates or self.previous_dates
        return max(dates) if dates else None


@dataclass
class Plan:
    """The day's decision: sells now, then buys sized on the book the sells leave."""

    note: str
    sells: list[Order] = field(default_factory=list)
    buys: Callable[[Book], list[Order]] = lambda book: []


def tool_json(message: ToolMessage) -> Any:
    """The JSON a successful tool answered; `ObservationError` for an error or non-JSON text."""
    text = plain_text(message.content)
    if message.status == "error":
        raise ObservationError(text or "the tool failed")
    try:
        return json.loads(text)
    except ValueError:
        raise ObservationError(f"unreadable answer: {text[:200]}") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _positions(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ObservationError("positions must be a mapping of symbol to shares")
    return {str(s).upper(): int(n) for s, n in value.items() if isinstance(n, int | float) and n}


def _book(answer: Any) -> Book:
    if not isinstance(answer, dict) or _number(answer.get("cash")) is None:
        raise ObservationError("the answer holds no cash")
    return Book(cash=float(answer["cash"]), positions=_positions(answer.get("positions", {})))


def _affordable(cash: float, price: float) -> int:
    """Whole shares `cash` buys at `price`."""
    shares = math.floor((cash + CASH_EPSILON) / price)
    while shares > 0 and shares * price > cash + CASH_EPSILON:
        shares -= 1
    return max(shares, 0)


def _percent(value: float) -> str:
    return f"{value * 100:+.1f}%"


# --- the model --------------------------------------------------------------------------------


def _tool_name(tool: Any) -> str | None:
    if isinstance(tool, dict):
        function = tool.get("function")
        if isinstance(function, dict) and function.get("name"):
            return str(function["name"])
        return str(tool["name"]) if tool.get("name") else None
    name = getattr(tool, "name", None) or getattr(tool, "__name__", None)
    return str(name) if name else None


class StrategyChatModel(BaseChatModel):
    """A chat model whose answers a rule-based strategy computes from the tools' answers."""

    strategy: ClassVar[str]
    observe_tools: ClassVar[tuple[str, ...]] = (GET_PORTFOLIO, GET_SNAPSHOT)

    model_name: str = Field(default="strategy", min_length=1)
    tool_names: tuple[str, ...] | None = None  # None until bind_tools: assume every tool exists
    params: StrategyParams

    @property
    def _llm_type(self) -> str:
        return f"aitrader-strategy-{self.strategy}"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "strategy": self.strategy,
            "params": self.params.model_dump(),
        }

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> StrategyChatModel:
        """A copy that knows the names of the tools it may call (it needs nothing else)."""
        names = tuple(name for name in (_tool_name(t) for t in tools) if name)
        return self.model_copy(update={"tool_names": names})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    # The decision, step by step -------------------------------------------------------------

    def respond(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The next message of the model-day whose conversation is `messages`."""
        today = _todays_messages(messages)
        mine = [m for m in today if isinstance(m, AIMessage)]
        step = len(mine)
        if step == 0:
            missing = [t for t in self.observe_tools if not self._has_tool(t)]
            if missing:
                return self._finish(f"cannot see the market: tools {missing} are not offered")
            return self._calls(
                step,
                [(name, self._observe_args(name)) for name in self.observe_tools],
                "Reading the portfolio and today's prices.",
            )
        if step >= MAX_STEPS:
            return self._finish("stopped: the session ran longer than a strategy day should")
        answers = {m.tool_call_id: m for m in today if isinstance(m, ToolMessage)}
        calls = [(call, answers.get(call["id"])) for ai in mine for call in ai.tool_calls]
        try:
            view = self._view(calls)
        except ObservationError as exc:
            return self._finish(f"no trade today: could not read the market ({exc})")
        plan = self.plan(view)
        sold = any(call["name"] == SELL for call, _ in calls)
        bought = any(call["name"] == BUY for call, _ in calls)
        if not sold and not bought and plan.sells:
            if self._has_tool(SELL):
                return self._orders(step, SELL, plan.sells, f"Selling first: {plan.note}")
            plan.note += "; the sell tool is not offered, so nothing was sold"
        if not bought:
            buys = plan.buys(view.book or Book(view.cash, dict(view.positions)))
            if buys:
                if self._has_tool(BUY):
                    return self._orders(step, BUY, buys, f"Buying: {plan.note}")
                plan.note += "; the buy tool is not offered, so nothing was bought"
        return self._finish(self._summary(view, plan))

    @abstractmethod
    def plan(self, view: DayView) -> Plan:
        """The day's sells and buys, from what the tools answered."""

    def _observe_args(self, tool: str) -> dict[str, Any]:
        return {}

    def _has_tool(self, name: str) -> bool:
        return self.tool_names is None or name in self.tool_names

    def _view(self, calls: list[tuple[dict[str, Any], ToolMessage | None]]) -> DayView:
        observed: dict[str, Any] = {}
        orders: list[OrderResult] = []
        book: Book | None = None
        for call, answer in calls:
            name = call["name"]
            if name in self.observe_tools:
                if answer is None:
                    raise ObservationError(f"{name} gave no answer")
                observed[name] = tool_json(answer)
            elif name in (BUY, SELL):
                args = call.get("args") or {}
                result = OrderResult(
                    name, str(args.get("symbol")), int(args.get("shares", 0)), False
                )
                if answer is None:
                    result.message = "no answer"
                elif answer.status == "error":
                    result.message = plain_text(answer.content)
                else:
                    try:
                        reported = _book(tool_json(answer))
                    except ObservationError as exc:
                        result.message = str(exc)
                    else:
                        result.ok = True
                        # The orders of one message run concurrently, each atomically: the answer
                        # of the last one to run reports the book after all of them, and it is
                        # the richest one after sells, the poorest one after buys.
                        if book is None or (
                            reported.cash > book.cash if name == SELL else reported.cash < book.cash
                        ):
                            book = reported
                orders.append(result)
        return self._parse_observations(observed, book, orders)

    def _parse_observations(
        self, observed: dict[str, Any], book: Book | None, orders: list[OrderResult]
    ) -> DayView:
        for name in self.observe_tools:
            if name not in observed:
                raise ObservationError(f"{name} was not called")
        portfolio, snapshot = observed[GET_PORTFOLIO], observed[GET_SNAPSHOT]
        start = _book(portfolio)
        rows = snapshot.get("symbols") if isinstance(snapshot, dict) else None
        if not isinstance(rows, list):
            raise ObservationError("the snapshot holds no symbols")
        opens: dict[str, float] = {}
        previous_dates: list[str] = []
        for row in rows:
            if not isinstance(row, dict) or not row.get("symbol"):
                continue
            price = _number(row.get("open"))
            if price is not None and price > 0:
                opens[str(row["symbol"]).upper()] = price
            if row.get("previous_date"):
                previous_dates.append(str(row["previous_date"]))
        closes = None
        if GET_CLOSES in observed:
            raw = (
                observed[GET_CLOSES].get("closes")
                if isinstance(observed[GET_CLOSES], dict)
                else None
            )
            if not isinstance(raw, dict):
                raise ObservationError("get_recent_closes holds no closes")
            closes = {
                str(symbol).upper(): [
                    (str(r[0]), _number(r[1]))
                    for r in series
                    if isinstance(r, list | tuple) and len(r) == 2
                ]
                for symbol, series in raw.items()
                if isinstance(series, list)
            }
        value = _number(portfolio.get("value_at_open"))
        return DayView(
            day=str(snapshot.get("date") or portfolio.get("date") or ""),
            cash=start.cash,
            positions=start.positions,
            value_at_open=value if value is not None else start.cash,
            opens=opens,
            previous_dates=previous_dates,
            closes=closes,
            book=book,
            orders=orders,
        )

    # Messages ---------------------------------------------------------------------------------

    def _calls(self, step: int, calls: list[tuple[str, dict[str, Any]]], text: str) -> AIMessage:
        tool_calls = [
            {"name": name, "args": args, "id": f"{name}-{step}-{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(calls)
        ]
        return self._message(text, tool_calls)

    def _orders(self, step: int, side: str, orders: list[Order], text: str) -> AIMessage:
        calls = [(side, {"symbol": symbol, "shares": shares}) for symbol, shares in orders]
        return self._calls(step, calls, text)

    def _finish(self, text: str) -> AIMessage:
        return self._message(f"{text}\n{FINISH_SIGNAL}", [])

    def _message(self, text: str, tool_calls: list[dict[str, Any]]) -> AIMessage:
        return AIMessage(
            content=text,
            tool_calls=tool_calls,
            usage_metadata={"input_tokens": 0, "output_tokens": 0, "total_tokens": 0},
            response_metadata={
                "model_name": self.model_name,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            },
        )

    def _summary(self, view: DayView, plan: Plan) -> str:
        lines = [f"{self.strategy} on {view.day}: {plan.note}."]
        done = [o for o in view.orders if o.ok]
        failed = [o for o in view.orders if not o.ok]
        if done:
            lines.append(
                "Filled: " + ", ".join(f"{o.side} {o.shares} {o.symbol}" for o in done) + "."
            )
        else:
            lines.append("No trade today.")
        if failed:
            lines.append(
                "Rejected (not retried): "
                + "; ".join(f"{o.side} {o.shares} {o.symbol}: {o.message}" for o in failed)
                + "."
            )
        if view.book is not None:
            lines.append(f"Cash now {view.book.cash:,.2f}.")
        return "\n".join(lines)


def _todays_messages(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages after the last human message: this model-day's own conversation."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return list(messages[index + 1 :])
    return [m for m in messages if isinstance(m, AIMessage | ToolMessage)]


# --- the strategies ---------------------------------------------------------------------------


class EqualWeightBuyAndHold(StrategyChatModel):
    """Buy the tradable universe in equal dollar weights once, then hold forever."""

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
    `every` weekdays (counted from Monday 1970-01-05) that the previous session was not in."""
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
    """Hold the `top_k` names by trailing return, equally weighted, rebalanced periodically."""

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
    """Random but reproducible orders: a baseline any real strategy should beat."""

    strategy: ClassVar[str] = "random"
    params: RandomParams = Field(default_factory=RandomParams)

    def plan(self, view: DayView) -> Plan:
        p = self.params
        rng = random.Random(stable_seed(p.seed, view.day, self.model_name))
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


STRATEGIES: dict[str, type[StrategyChatModel]] = {
    "equal-weight": EqualWeightBuyAndHold,
    "momentum": Momentum,
    "random": RandomTrader,
}


def _param_model(cls: type[StrategyChatModel]) -> type[StrategyParams]:
    return cls.model_fields["params"].annotation  # type: ignore[return-value]


def build_strategy(
    name: str, model_name: str, params: dict[str, Any] | None = None
) -> BaseChatModel:
    """The strategy model `name` trading as `model_name` with `params` (validated)."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(sorted(STRATEGIES))}")
    try:
        validated = _param_model(cls).model_validate(params or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'params'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ValueError(f"invalid params for strategy {name!r}: {problems}") from None
    return cls(model_name=model_name, params=validated)
