"""Model-days of the other markets end to end, without a flow: `run_model_day` with a built-in
strategy on the real shared prices, checked against the book the store carries from day to day.

The original benchmark rebuilt crypto's Sunday and Monday on Friday's holdings, discarding the
weekend's trades (`../shared/notes/original-markets.md` §4); here each day starts from the day
before it on the market's own calendar.
"""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agents.session import run_model_day_sync
from agents.types import ModelDayRequest
from configs.loader import ModelConfig, load_universe
from configs.markets import load_market
from market_data.aitrader_files import import_prices
from models.engine import create_store_engine
from models.ledger import day_start
from models.prices import PriceBook
from models.tables import Holding, Message, ModelDay, Run, ToolCall, Trade
from tests.conftest import store_copy

FRIDAY = date(2025, 11, 7)
WEEKEND = [FRIDAY + timedelta(days=n) for n in range(4)]  # Friday to Monday
SSE_DAY = date(2025, 10, 15)
SSE_SESSIONS = load_market("sse50-hourly").sessions


@pytest.fixture(scope="module")
def priced_template(
    sqlite_template: Path, shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A store holding the ten coins' daily bars and the SSE 50's hourly and daily bars."""
    path = tmp_path_factory.mktemp("market-sessions") / "store.db"
    engine = create_store_engine(store_copy(sqlite_template, path))
    files = sorted((shared_data / "crypto_daily").glob("daily_prices_*.json"))
    files += [shared_data / "sse50_hourly" / "merged_hourly.jsonl"]
    files += [shared_data / "sse50_daily" / "merged.jsonl"]
    with Session(engine) as session:
        for file in files:
            import_prices(session, file)
        session.commit()
    engine.dispose()
    return path


@pytest.fixture
def engine(priced_template: Path, tmp_path: Path) -> Engine:
    path = tmp_path / "store.db"
    engine = create_store_engine(store_copy(priced_template, path))
    yield engine
    engine.dispose()


def run_days(engine: Engine, market_name: str, days: list[date], interval: str) -> list[ModelDay]:
    """Run a trading random strategy over `days` of a market; its completed model-days."""
    market = load_market(market_name)
    universe = load_universe(market.universe)
    model = ModelConfig(
        name="dice", kind="strategy", strategy="random", params={"seed": 3, "trade_probability": 1}
    )
    with Session(engine) as session:
        run = Run(name=market_name, models=[model.name])
        session.add(run)
        session.commit()
        run_id = run.id
        prices = PriceBook.load(session, interval)
    for day in days:
        request = ModelDayRequest(
            run_id=run_id,
            model=model,
            day=day,
            portfolio=f"{market_name}/dice",
            universe=universe.symbols,
            benchmark=universe.benchmark,
            initial_cash=market.initial_cash,
            market=market,
        )
        result = run_model_day_sync(engine, request, prices)
        assert result.status == "completed", result.error
    with Session(engine) as session:
        query = select(ModelDay).where(ModelDay.run_id == run_id).order_by(ModelDay.day)
        return list(session.exec(query))


def end_book(engine: Engine, model_day: ModelDay) -> tuple[float, dict[str, float]]:
    with Session(engine) as session:
        rows = session.exec(select(Holding).where(Holding.model_day_id == model_day.id))
        return model_day.cash_end, {h.symbol: h.shares for h in rows if h.shares}


def first_portfolio(engine: Engine, model_day: ModelDay) -> tuple[float, dict[str, float]]:
    """The book the day's first get_portfolio answer showed the model: what it started from."""
    with Session(engine) as session:
        call = session.exec(
            select(ToolCall)
            .where(ToolCall.model_day_id == model_day.id, ToolCall.tool == "get_portfolio")
            .order_by(ToolCall.seq)
        ).first()
    shown = json.loads(call.result)
    return shown["cash"], shown["positions"]


def test_each_crypto_weekend_day_builds_on_the_calendar_day_before(engine: Engine) -> None:
    days = run_days(engine, "crypto", WEEKEND, "1d")
    assert [d.day.strftime("%a") for d in days] == ["Fri", "Sat", "Sun", "Mon"]
    ends = [end_book(engine, d) for d in days]
    # The weekend traded: a day that rebuilt on Friday (the original's fork) would differ.
    assert ends[1] != ends[0] and ends[2] != ends[1]
    with Session(engine) as session:
        assert session.exec(select(Trade).join(ModelDay).where(ModelDay.day == WEEKEND[1])).all()
    for before, model_day in itertools.pairwise(days):
        cash, positions = end_book(engine, before)
        shown_cash, shown_positions = first_portfolio(engine, model_day)
        assert shown_cash == pytest.approx(round(cash, 4), abs=1e-9)
        assert shown_positions == positions, (
            f"{model_day.day:%a} did not start from {before.day:%a}"
        )
        with Session(engine) as session:
            book = day_start(session, "crypto/dice", model_day.day, 50_000.0).book
        assert (book.cash, book.positions) == (cash, positions)


def portfolio_answers(engine: Engine, model_day: ModelDay) -> list[dict]:
    """Every get_portfolio answer of the day in order, read from the stored tool messages."""
    with Session(engine) as session:
        rows = session.exec(
            select(Message)
            .where(Message.model_day_id == model_day.id, Message.role == "tool")
            .order_by(Message.seq)
        ).all()
    answers = []
    for row in rows:
        try:
            answer = json.loads(row.content)
        except ValueError:
            continue  # an order refused: plain text
        if isinstance(answer, dict) and "value_at_open" in answer and "filled" not in answer:
            answers.append(answer)
    return answers


def test_an_sse50_hourly_day_trades_each_session_at_its_own_open(engine: Engine) -> None:
    (model_day,) = run_days(engine, "sse50-hourly", [SSE_DAY], "60min")
    with Session(engine) as session:
        trades = session.exec(select(Trade).where(Trade.model_day_id == model_day.id)).all()
        prices = PriceBook.load(session, "60min")
    assert trades, "the dice placed no order"
    for trade in trades:
        assert trade.session_at.time() in set(SSE_SESSIONS)
        assert trade.price == prices.open_at(trade.symbol, trade.session_at)
    # Four sessions, each dated by its bar, each starting from the one before's book.
    shown = portfolio_answers(engine, model_day)
    labels = [f"{datetime.combine(SSE_DAY, t):%Y-%m-%d %H:%M}" for t in SSE_SESSIONS]
    assert sorted({answer["date"] for answer in shown}) == labels


def test_an_hourly_days_stored_tool_calls_carry_their_own_sessions_answers(
    engine: Engine,
) -> None:
    (model_day,) = run_days(engine, "sse50-hourly", [SSE_DAY], "60min")
    with Session(engine) as session:
        calls = session.exec(
            select(ToolCall)
            .where(ToolCall.model_day_id == model_day.id, ToolCall.tool == "get_portfolio")
            .order_by(ToolCall.seq)
        ).all()
    dates = [json.loads(call.result)["date"] for call in calls]
    assert [answer["date"] for answer in portfolio_answers(engine, model_day)] == dates


def test_a_reused_call_id_keeps_each_sessions_own_latency() -> None:
    from langchain_core.messages import AIMessage, SystemMessage, ToolMessage

    from agents.transcript import tool_call_rows

    def session(answered: bool, malformed: bool = False) -> list:
        invalid = [{"name": "buy", "args": "{oops", "id": "buy-1-0", "error": "bad json"}]
        asked = AIMessage(
            content="",
            tool_calls=[{"name": "get_portfolio", "args": {}, "id": "get_portfolio-0-0"}],
            invalid_tool_calls=invalid if malformed else [],
        )
        answers = [ToolMessage(content="{}", tool_call_id="get_portfolio-0-0")]
        return [asked, *(answers if answered else []), AIMessage(content="done")]

    # Three hourly sessions reuse one id; the second's call was cut short before any tool ran.
    transcript = [*session(True, malformed=True), SystemMessage("10:30")]
    transcript += [*session(False), SystemMessage("11:30"), *session(True)]
    latencies = {"get_portfolio-0-0": [11.0, 33.0], "buy-1-0": [99.0]}
    rows = list(tool_call_rows(7, transcript, latencies))
    assert [(row.tool, row.latency_ms) for row in rows] == [
        ("get_portfolio", 11.0),
        ("buy", 0.0),  # malformed: it never reached a tool, so it claims no timing
        ("get_portfolio", 0.0),
        ("get_portfolio", 33.0),
    ]
