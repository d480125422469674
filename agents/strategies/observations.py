"""What the tools told a strategy: their JSON answers, read into today's `DayView`."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from agents.transcript import plain_text
from models.book import Quantity, TradingRules, as_quantity
from models.errors import ObservationError

GET_PORTFOLIO = "get_portfolio"
GET_SNAPSHOT = "get_universe_snapshot"
GET_CLOSES = "get_recent_closes"
BUY = "buy"
SELL = "sell"

# A tool call the model made today, and the tool's answer to it (None while it has none).
Exchange = tuple[dict[str, Any], ToolMessage | None]


@dataclass
class Book:
    """Cash and shares as the latest tool answer reported them."""

    cash: float
    positions: dict[str, Quantity]


@dataclass
class OrderResult:
    """One order placed today and whether the tool filled it."""

    side: str
    symbol: str
    shares: Quantity
    ok: bool
    message: str = ""


@dataclass
class DayView:
    """What the observation tools answered today, and the orders placed since."""

    day: str
    cash: float
    positions: dict[str, Quantity]
    value_at_open: float
    opens: dict[str, float]  # tradable symbols only (an open today), in the snapshot's order
    previous_dates: list[str]
    closes: dict[str, list[tuple[str, float | None]]] | None = None
    book: Book | None = None  # the latest reported book (after today's orders so far)
    orders: list[OrderResult] = field(default_factory=list)
    # The session as get_portfolio dates it: `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM` when hourly.
    session: str = ""
    # The market's rules and what T+1 lets be sold now; None on NASDAQ-100 daily (whole shares,
    # T+0), whose get_portfolio answer carries neither.
    rules: TradingRules | None = None
    sellable: dict[str, Quantity] | None = None

    @property
    def hourly(self) -> bool:
        """Whether the session is one hourly bar of a day (its date carries a time)."""
        return len(self.session) > len("YYYY-MM-DD")

    def can_sell(self, symbol: str) -> Quantity:
        """What of `symbol` may be sold now: the holding, less what T+1 keeps today."""
        held = self.positions.get(symbol, 0)
        if self.sellable is None:
            return held
        return min(held, self.sellable.get(symbol, 0))

    @property
    def previous_session(self) -> str | None:
        """The last session before today the tools showed data of."""
        dates = [rows[-1][0] for rows in (self.closes or {}).values() if rows]
        dates = dates or self.previous_dates
        return max(dates) if dates else None


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
    """A finite number as a float; None for anything else (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _positions(value: Any, what: str = "positions") -> dict[str, Quantity]:
    """Quantities by symbol: whole ones as int (shares), fractions as float (coins)."""
    if not isinstance(value, dict):
        raise ObservationError(f"{what} must be a mapping of symbol to shares")
    return {
        str(s).upper(): _quantity(n)
        for s, n in value.items()
        if isinstance(n, int | float) and not isinstance(n, bool) and n
    }


def _quantity(value: Any) -> Quantity:
    """An order or holding quantity as the tools carry it (0 when it is no number)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return as_quantity(number) if math.isfinite(number) else 0


def _rules(value: Any) -> TradingRules | None:
    """The market's rules from get_portfolio (None when absent: whole shares, T+0)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ObservationError("the rules must be a mapping")
    known = {k: v for k, v in value.items() if k in TradingRules.model_fields}
    try:
        return TradingRules.model_validate(known)
    except ValueError as exc:
        raise ObservationError(f"unreadable rules: {exc}") from None


def _book(answer: Any) -> Book:
    if not isinstance(answer, dict) or _number(answer.get("cash")) is None:
        raise ObservationError("the answer holds no cash")
    return Book(cash=float(answer["cash"]), positions=_positions(answer.get("positions", {})))


def todays_messages(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """The messages after the last human message: this model-day's own conversation."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return list(messages[index + 1 :])
    return [m for m in messages if isinstance(m, AIMessage | ToolMessage)]


def read_day(calls: Sequence[Exchange], observe_tools: Sequence[str]) -> DayView:
    """Today's view from the day's tool calls and answers, in the order they were made.

    `ObservationError` when an observation tool was not called, gave no answer or an unreadable
    one; a rejected order is no error, only an `OrderResult` that is not `ok`.
    """
    observed: dict[str, Any] = {}
    orders: list[OrderResult] = []
    book: Book | None = None
    for call, answer in calls:
        name = call["name"]
        if name in observe_tools:
            if answer is None:
                raise ObservationError(f"{name} gave no answer")
            observed[name] = tool_json(answer)
        elif name in (BUY, SELL):
            result, reported = _order_result(call, answer)
            orders.append(result)
            # The orders of one message run concurrently, each atomically: the answer of the last
            # one to run reports the book after all of them, and it is the richest one after
            # sells, the poorest one after buys.
            if reported is not None and (
                book is None
                or (reported.cash > book.cash if name == SELL else reported.cash < book.cash)
            ):
                book = reported
    return _day_view(observed, book, orders, observe_tools)


def _order_result(
    call: dict[str, Any], answer: ToolMessage | None
) -> tuple[OrderResult, Book | None]:
    """The order a buy or sell call placed, and the book its answer reported if it filled."""
    args = call.get("args") or {}
    shares = _quantity(args.get("shares", 0))
    result = OrderResult(call["name"], str(args.get("symbol")), shares, False)
    if answer is None:
        result.message = "no answer"
        return result, None
    if answer.status == "error":
        result.message = plain_text(answer.content)
        return result, None
    try:
        reported = _book(tool_json(answer))
    except ObservationError as exc:
        result.message = str(exc)
        return result, None
    result.ok = True
    return result, reported


def _day_view(
    observed: dict[str, Any],
    book: Book | None,
    orders: list[OrderResult],
    observe_tools: Sequence[str],
) -> DayView:
    for name in observe_tools:
        if name not in observed:
            raise ObservationError(f"{name} was not called")
    portfolio, snapshot = observed[GET_PORTFOLIO], observed[GET_SNAPSHOT]
    start = _book(portfolio)
    opens, previous_dates = _snapshot(snapshot)
    closes = _closes(observed[GET_CLOSES]) if GET_CLOSES in observed else None
    value = _number(portfolio.get("value_at_open"))
    day = str(snapshot.get("date") or portfolio.get("date") or "")
    sellable = portfolio.get("sellable")
    return DayView(
        day=day,
        cash=start.cash,
        positions=start.positions,
        value_at_open=value if value is not None else start.cash,
        opens=opens,
        previous_dates=previous_dates,
        closes=closes,
        book=book,
        orders=orders,
        session=str(portfolio.get("date") or day),
        rules=_rules(portfolio.get("rules")),
        sellable=None if sellable is None else _positions(sellable, "sellable"),
    )


def _snapshot(snapshot: Any) -> tuple[dict[str, float], list[str]]:
    """Today's positive opens by symbol, and the previous session dates the snapshot shows."""
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
    return opens, previous_dates


def _closes(answer: Any) -> dict[str, list[tuple[str, float | None]]]:
    """`get_recent_closes`' (date, close) series by symbol; malformed rows are dropped."""
    raw = answer.get("closes") if isinstance(answer, dict) else None
    if not isinstance(raw, dict):
        raise ObservationError("get_recent_closes holds no closes")
    return {
        str(symbol).upper(): [
            (str(r[0]), _number(r[1]))
            for r in series
            if isinstance(r, list | tuple) and len(r) == 2
        ]
        for symbol, series in raw.items()
        if isinstance(series, list)
    }
