"""Trading rules: fills at the open, whole shares, no shorting or margin, clear rejections."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_tools.trading_rules import MAX_ORDER_SHARES, TradingSession, parse_shares
from models.book import Portfolio
from models.errors import OrderRejected
from models.prices import Bar, PriceBook

DAY = date(2025, 10, 2)
OPENS = {"AAPL": 255.5, "NVDA": 189.6, "MSFT": 515.25}


def make_book(day: date = DAY) -> PriceBook:
    at = datetime(day.year, day.month, day.day)
    bars = [
        Bar(symbol=s, ts=at, open=p, high=p * 1.02, low=p * 0.98, close=p * 1.01)
        for s, p in OPENS.items()
    ]
    # NVDA has a bar the day before but MSFT none today -> "no price" cases below.
    bars.append(Bar(symbol="AMD", ts=datetime(2025, 10, 1), open=160.0, close=161.0))
    return PriceBook(bars)


def make_session(cash: float = 10_000.0, positions: dict[str, int] | None = None, **kw):
    universe = kw.pop("universe", [*OPENS, "AMD"])
    return TradingSession(
        Portfolio(cash=cash, positions=positions or {}),
        make_book(),
        kw.pop("at", DAY),
        universe,
        is_session_day=lambda d: d.weekday() < 5,
    )


def test_buy_fills_whole_shares_at_the_open() -> None:
    session = make_session()
    fill = session.buy("aapl", 10)
    assert (fill.side, fill.symbol, fill.shares, fill.price) == ("buy", "AAPL", 10, 255.5)
    assert session.portfolio.cash == pytest.approx(10_000 - 2555.0)
    assert session.portfolio.positions == {"AAPL": 10}
    assert fill.cash_after == session.portfolio.cash


def test_sell_fills_at_the_open_and_drops_empty_positions() -> None:
    session = make_session(cash=0.0, positions={"NVDA": 5})
    session.sell("NVDA", 5)
    assert session.portfolio.positions == {}
    assert session.portfolio.cash == pytest.approx(5 * 189.6)


def test_spending_exactly_all_cash_is_allowed() -> None:
    session = make_session(cash=255.5 * 3)
    session.buy("AAPL", 3)
    assert session.portfolio.cash == 0.0


@pytest.mark.parametrize(
    ("action", "symbol", "shares", "message"),
    [
        ("buy", "AAPL", 40, "insufficient cash"),
        ("sell", "AAPL", 1, "no position in AAPL"),
        ("sell", "NVDA", 6, "insufficient shares: holding 5 NVDA"),
        ("buy", "ZZZZ", 1, "unknown symbol ZZZZ"),
        ("buy", "", 1, "symbol must be a ticker"),
        ("buy", None, 1, "symbol must be a ticker"),
        ("buy", "AMD", 1, "no price for AMD at 2025-10-02"),
        ("buy", "AAPL", 0, "shares must be positive"),
        ("buy", "AAPL", -3, "shares must be positive"),
        ("sell", "NVDA", -1, "shares must be positive"),
        ("buy", "AAPL", 1.5, "whole number"),
        ("buy", "AAPL", "ten", "whole number"),
        ("buy", "AAPL", True, "whole number"),
        ("buy", "AAPL", float("nan"), "whole number"),
        ("buy", "AAPL", float("inf"), "whole number"),
        ("buy", "AAPL", [1], "whole number"),
        ("buy", "AAPL", 10**12, "at most"),
        ("sell", "NVDA", 10**30, "at most"),
    ],
)
def test_bad_orders_are_rejected_and_change_nothing(action, symbol, shares, message) -> None:
    session = make_session(cash=10_000.0, positions={"NVDA": 5})
    before = session.portfolio.model_copy(deep=True)
    with pytest.raises(OrderRejected, match=message):
        getattr(session, action)(symbol, shares)
    assert session.portfolio == before
    assert session.fills == []


def test_non_session_day_rejects_every_order() -> None:
    saturday = date(2025, 10, 4)
    session = make_session(at=saturday)
    with pytest.raises(OrderRejected, match="2025-10-04 is not a trading day"):
        session.buy("AAPL", 1)


def test_symbol_outside_the_universe_is_unknown_even_with_prices() -> None:
    session = make_session(universe=["AAPL"])
    with pytest.raises(OrderRejected, match="unknown symbol NVDA"):
        session.buy("NVDA", 1)


def test_integral_floats_and_strings_are_accepted_as_whole_shares() -> None:
    assert parse_shares(3.0) == 3
    assert parse_shares(" 7 ") == 7
    assert parse_shares(MAX_ORDER_SHARES) == MAX_ORDER_SHARES


def test_the_session_works_on_a_copy_of_the_starting_book() -> None:
    start = Portfolio(cash=1000.0, positions={"NVDA": 1})
    session = TradingSession(start, make_book(), DAY, OPENS, is_session_day=lambda d: True)
    session.buy("NVDA", 1)
    assert start.positions == {"NVDA": 1} and start.cash == 1000.0


orders = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.sampled_from([*OPENS, "AMD", "QQQ", "aapl"]),
        st.one_of(
            st.integers(min_value=-5, max_value=60),
            st.floats(min_value=-2, max_value=50),
            st.just(float("nan")),
            st.just(10**9),
        ),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(
    cash=st.floats(min_value=0, max_value=50_000, allow_nan=False),
    held=st.dictionaries(st.sampled_from(list(OPENS)), st.integers(0, 30)),
    sequence=orders,
)
def test_any_order_sequence_keeps_the_book_sound(cash, held, sequence) -> None:
    session = make_session(cash=cash, positions={s: n for s, n in held.items() if n})
    for action, symbol, shares in sequence:
        book = session.portfolio
        wealth_before = book.cash + sum(n * OPENS[s] for s, n in book.positions.items())
        try:
            getattr(session, action)(symbol, shares)
        except OrderRejected:
            assert session.portfolio == book  # a rejection changes nothing
            continue
        after = session.portfolio
        assert after.cash >= 0
        assert all(isinstance(n, int) and n > 0 for n in after.positions.values())
        wealth_after = after.cash + sum(n * OPENS[s] for s, n in after.positions.items())
        # Cash plus holdings at the fill prices is conserved by every fill (no fees).
        assert math.isclose(wealth_before, wealth_after, rel_tol=1e-12, abs_tol=1e-6)
    assert [f.seq for f in session.fills] == list(range(1, len(session.fills) + 1))
