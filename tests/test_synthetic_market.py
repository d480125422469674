"""The seeded synthetic market: determinism, OHLC consistency, XNYS days, factor structure."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import Session, select

from market_data.calendar import trading_days
from market_data.synthetic import synthesize, synthesize_into
from models.prices import DAILY, Bar, coverage
from models.tables import PriceBar

SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO", "COST", "NFLX"]
START, END = date(2025, 1, 1), date(2025, 12, 31)


def _by_symbol(bars: list[Bar]) -> dict[str, list[Bar]]:
    grouped: dict[str, list[Bar]] = defaultdict(list)
    for bar in bars:
        grouped[bar.symbol].append(bar)
    return grouped


def _log_returns(bars: list[Bar]) -> np.ndarray:
    return np.diff(np.log([bar.close for bar in bars]))


@pytest.fixture(scope="module")
def year() -> list[Bar]:
    return synthesize(SYMBOLS, START, END, seed=7)


def test_same_seed_same_bars_and_other_seed_other_bars(year: list[Bar]) -> None:
    assert synthesize(SYMBOLS, START, END, seed=7) == year
    other = synthesize(SYMBOLS, START, END, seed=8)
    assert len(other) == len(year)
    assert [b.close for b in other] != [b.close for b in year]


def test_adding_a_symbol_or_days_changes_nothing_else(year: list[Bar]) -> None:
    more_symbols = synthesize([*SYMBOLS, "ADBE"], START, END, seed=7)
    assert [b for b in more_symbols if b.symbol != "ADBE"] == year
    fewer = synthesize(["TSLA"], START, END, seed=7)
    assert fewer == [b for b in year if b.symbol in ("TSLA", "QQQ")]
    shorter = synthesize(SYMBOLS, START, date(2025, 6, 30), seed=7)
    by_key = {(b.symbol, b.ts): b for b in year}
    assert shorter and all(by_key[(b.symbol, b.ts)] == b for b in shorter)


def test_every_bar_is_consistent(year: list[Bar]) -> None:
    for bar in year:
        assert bar.low is not None and bar.high is not None and bar.close is not None
        assert 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume is not None and bar.volume > 0 and bar.volume == int(bar.volume)
        assert (bar.interval, bar.source) == (DAILY, "synthetic")
        assert bar.ts.time().isoformat() == "00:00:00"


def test_only_xnys_trading_days(year: list[Bar]) -> None:
    days = trading_days(START, END)
    for symbol, bars in _by_symbol(year).items():
        assert [b.ts.date() for b in bars] == days, symbol
    stored = {b.ts.date() for b in year}
    assert date(2025, 7, 4) not in stored and date(2025, 11, 27) not in stored
    assert all(day.weekday() < 5 for day in stored)


def test_opens_gap_from_the_previous_close(year: list[Bar]) -> None:
    bars = _by_symbol(year)["NVDA"]
    gaps = [abs(today.open / yesterday.close - 1) for yesterday, today in pairwise(bars)]
    assert max(gaps) < 0.2  # gaps stay plausible ...
    assert sum(g > 0.0005 for g in gaps) > len(gaps) / 2  # ... and are not all zero


def test_plausible_prices(year: list[Bar]) -> None:
    for symbol, bars in _by_symbol(year).items():
        assert 5 <= bars[0].open <= 1000, symbol
        daily_vol = float(np.std(_log_returns(bars)))
        assert 0.004 < daily_vol < 0.06, symbol


def test_benchmark_is_present_and_tracks_the_market(year: list[Bar]) -> None:
    grouped = _by_symbol(year)
    assert set(grouped) == {*SYMBOLS, "QQQ"}
    benchmark = _log_returns(grouped.pop("QQQ"))
    correlations = [np.corrcoef(_log_returns(b), benchmark)[0, 1] for b in grouped.values()]
    assert min(correlations) > 0
    assert float(np.mean(correlations)) > 0.4
    # The index carries little idiosyncratic noise, so it is calmer than the average stock.
    stock_vol = np.mean([np.std(_log_returns(b)) for b in grouped.values()])
    assert np.std(benchmark) < stock_vol


def test_benchmark_options() -> None:
    assert {b.symbol for b in synthesize(["AAPL"], START, END, 1, benchmark=None)} == {"AAPL"}
    bars = synthesize(["AAPL", "qqq"], START, END, 1)
    assert sum(b.symbol == "QQQ" for b in bars) == len(trading_days(START, END))
    assert synthesize(["AAPL"], date(2025, 7, 4), date(2025, 7, 6), 1) == []
    with pytest.raises(ValueError, match="non-negative"):
        synthesize(["AAPL"], START, END, -1)


def test_synthesize_into_the_store(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    # Inserted a few bars at a time (a batch ends mid-symbol), the store holds what
    # `synthesize` gives.
    monkeypatch.setattr("market_data.synthetic.INSERT_CHUNK", 15)
    monkeypatch.setattr("models.prices.INSERT_CHUNK", 4)
    start, end = date(2025, 6, 2), date(2025, 6, 30)
    inserted = synthesize_into(session, ["AAPL", "MSFT"], start, end, seed=3)
    session.commit()
    days = len(trading_days(start, end))
    assert inserted == 3 * days
    stored = session.exec(select(PriceBar).order_by(PriceBar.id)).all()
    fields = ("market", "symbol", "ts", "open", "high", "low", "close", "volume")
    assert [tuple(getattr(b, f) for f in fields) for b in stored] == [
        tuple(getattr(b, f) for f in fields) for b in synthesize(["AAPL", "MSFT"], start, end, 3)
    ]
    assert synthesize_into(session, ["AAPL", "MSFT"], start, end, seed=3) == 0
    rows = coverage(session, DAILY)
    assert [(r.symbol, r.first, r.days) for r in rows] == [
        (symbol, date(2025, 6, 2), days) for symbol in ("AAPL", "MSFT", "QQQ")
    ]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**63),
    symbol=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=5),
    start=st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 6, 1)),
)
def test_any_seed_gives_consistent_bars(seed: int, symbol: str, start: date) -> None:
    bars = synthesize([symbol], start, date(start.year + 1, start.month, 1), seed)
    assert bars
    for bar in bars:
        assert bar.low is not None and bar.high is not None and bar.close is not None
        assert 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
