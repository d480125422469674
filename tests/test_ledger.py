"""Books in the store: starting state, valuation at the close, atomic model-day records."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from agent_tools.trading_rules import TradingSession
from market_data.calendar import is_trading_day
from models.book import Portfolio
from models.engine import create_store_engine
from models.ledger import day_start, record_completed_day, value_portfolio
from models.prices import Bar, PriceBook
from models.tables import Holding, ModelDay, ModelDayStatus, Trade
from tests.conftest import add_model_day

UNIVERSE = ["AAPL", "NVDA", "FB"]


def make_prices() -> PriceBook:
    bars = [
        Bar(symbol="AAPL", ts=datetime(2025, 10, 1), open=250.0, close=255.0),
        Bar(symbol="AAPL", ts=datetime(2025, 10, 2), open=256.0, close=258.0),
        Bar(symbol="NVDA", ts=datetime(2025, 10, 2), open=180.0, close=185.0),
        Bar(symbol="FB", ts=datetime(2025, 9, 30), open=700.0, close=710.0),
    ]
    return PriceBook(bars)


def new_day(session: Session, day: date, portfolio: str = "demo/m") -> ModelDay:
    return add_model_day(session, day, portfolio)


def test_value_uses_the_days_close_or_the_last_known_one() -> None:
    book = Portfolio(cash=100.0, positions={"AAPL": 2, "FB": 1})
    valuation = value_portfolio(book, make_prices(), date(2025, 10, 2))
    assert valuation.total == pytest.approx(100 + 2 * 258.0 + 710.0)
    assert {h.symbol: h.close for h in valuation.holdings} == {"AAPL": 258.0, "FB": 710.0}
    assert valuation.missing == []


def test_a_symbol_never_priced_is_listed_as_missing() -> None:
    valuation = value_portfolio(
        Portfolio(cash=5.0, positions={"ZZZ": 3}), make_prices(), date(2025, 10, 2)
    )
    assert valuation.total == 5.0 and valuation.missing == ["ZZZ"]


def test_a_day_starts_from_the_last_completed_day(session: Session) -> None:
    assert day_start(session, "demo/m", date(2025, 10, 2), 10_000.0).book == Portfolio(
        cash=10_000.0
    )
    prices = make_prices()
    day1 = new_day(session, date(2025, 10, 1))
    trading = TradingSession(Portfolio(cash=10_000.0), prices, day1.day, UNIVERSE, is_trading_day)
    trading.buy("AAPL", 10)
    record_completed_day(session, day1, trading.fills, trading.portfolio, prices)
    session.commit()
    failed = new_day(session, date(2025, 10, 2))
    failed.status = ModelDayStatus.FAILED
    session.commit()

    book = day_start(session, "demo/m", date(2025, 10, 3), 10_000.0).book
    assert book == Portfolio(cash=10_000.0 - 2500.0, positions={"AAPL": 10})
    assert day_start(session, "other", date(2025, 10, 3), 10_000.0).book.cash == 10_000.0
    stored = session.get(ModelDay, day1.id)
    assert stored.value_end == pytest.approx(7500.0 + 10 * 255.0)
    assert stored.status == ModelDayStatus.COMPLETED


def test_trades_and_snapshot_are_written_together_or_not_at_all(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    prices = make_prices()
    model_day = new_day(session, date(2025, 10, 2))
    session.commit()
    trading = TradingSession(
        Portfolio(cash=10_000.0), prices, model_day.day, UNIVERSE, is_trading_day
    )
    trading.buy("AAPL", 1)
    trading.buy("NVDA", 2)

    def seal_fails(session: Session, model_day: ModelDay) -> str:
        session.flush()  # the trades and the snapshot reach the database, then the seal fails
        raise IntegrityError("seal", {}, Exception("the chain moved under this day"))

    monkeypatch.setattr("models.ledger.seal_day", seal_fails)
    with pytest.raises(IntegrityError):
        record_completed_day(session, model_day, trading.fills, trading.portfolio, prices)
    assert session.exec(select(Trade)).all() == []
    assert session.exec(select(Holding)).all() == []
    assert session.get(ModelDay, model_day.id).status == ModelDayStatus.PENDING


def test_fb_is_valued_at_its_last_close_after_its_data_ends(nasdaq100_daily_url: str) -> None:
    engine = create_store_engine(nasdaq100_daily_url)
    with Session(engine) as session:
        prices = PriceBook.load(session, symbols=["FB"])
    engine.dispose()
    last_fb_close = prices.close_asof("FB", datetime(2025, 10, 16))[0]
    valuation = value_portfolio(
        Portfolio(cash=0.0, positions={"FB": 2}), prices, date(2025, 10, 30)
    )
    assert valuation.total == pytest.approx(2 * last_fb_close)
