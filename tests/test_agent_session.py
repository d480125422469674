"""Whole model-days through langchain-openai against a real local OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from agents.budget import RunBudget
from agents.session import run_model_day_sync
from agents.types import ModelDayRequest
from configs.loader import AgentConfig, ModelConfig, TokenPrice, load_universe
from market_data.aitrader_files import import_prices
from models.engine import create_store_engine, upgrade
from models.ledger import day_start
from models.prices import PriceBook
from models.tables import LLMCall, Message, ModelDay, Run, ToolCall, Trade
from tests.conftest import store_copy
from tests.openai_stub import OpenAIStub, Reply, text_reply, tool_reply

DAY = date(2025, 10, 15)
NEXT_DAY = date(2025, 10, 16)
KEY = "sk-test-canary-7f3a9c1e5b"
UNIVERSE = load_universe("nasdaq100").symbols


@pytest.fixture(scope="module")
def priced_template(tmp_path_factory, shared_data: Path) -> Path:
    path = tmp_path_factory.mktemp("priced") / "store.db"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    with Session(engine) as session:
        import_prices(session, shared_data / "nasdaq100_daily")
        session.commit()
    engine.dispose()
    return path


@pytest.fixture
def engine(priced_template: Path, tmp_path: Path) -> Engine:
    path = tmp_path / "store.db"
    engine = create_store_engine(store_copy(priced_template, path))
    yield engine
    engine.dispose()


@pytest.fixture
def prices(engine: Engine) -> PriceBook:
    with Session(engine) as session:
        return PriceBook.load(session)


@pytest.fixture
def stub(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AITRADER_TEST_KEY", KEY)
    with OpenAIStub() as server:
        yield server


def model_config(stub: OpenAIStub, **overrides) -> ModelConfig:
    settings = {
        "name": "stub-gpt",
        "basemodel": "gpt-test",
        "base_url": stub.base_url,
        "api_key_env": "AITRADER_TEST_KEY",
        "timeout_s": 5.0,
        "max_retries": 2,
        "price": TokenPrice(input_per_million=1.0, output_per_million=2.0),
        **overrides,
    }
    return ModelConfig(**settings)


def new_run(engine: Engine, name: str = "test") -> int:
    with Session(engine) as session:
        run = Run(name=name, models=["stub-gpt"])
        session.add(run)
        session.commit()
        return run.id


def request(run_id: int, model: ModelConfig, day: date = DAY, **kw) -> ModelDayRequest:
    return ModelDayRequest(
        run_id=run_id,
        model=model,
        day=day,
        portfolio=kw.pop("portfolio", f"test/{model.name}"),
        universe=UNIVERSE,
        **kw,
    )


def open_of(prices: PriceBook, symbol: str, day: date) -> float:
    return prices.bar_on(symbol, day).open


def test_a_whole_model_day_trades_and_persists_everything(engine, prices, stub) -> None:
    stub.queue(
        tool_reply(("get_portfolio", {}), ("get_price", {"symbol": "AAPL", "date": "2025-10-14"})),
        tool_reply(("buy", {"symbol": "AAPL", "shares": 5})),
        text_reply("Bought 5 AAPL. <FINISH_SIGNAL>"),
    )
    run_id = new_run(engine)
    result = run_model_day_sync(engine, request(run_id, model_config(stub)), prices)

    assert result.status == "completed" and result.finished and result.trades == 1
    assert stub.calls == 3
    assert stub.headers[0]["authorization"] == f"Bearer {KEY}"
    # The system prompt carries the date, cash and compact prices of the day.
    system = stub.requests[0]["messages"][0]
    assert system["role"] == "system" and "2025-10-15" in system["content"]
    assert "<FINISH_SIGNAL>" in system["content"] and "AAPL 247.77->249.485" in system["content"]
    assert "a commission of 0.005 USD a share (at least 1.00 USD" in system["content"]
    # The tool answers reached the model.
    second = json.dumps(stub.requests[1]["messages"])
    assert '\\"cash\\":10000.0' in second and "2025-10-14" in second

    with Session(engine) as session:
        model_day = session.get(ModelDay, result.model_day_id)
        (trade,) = session.exec(select(Trade)).all()
        assert (trade.side, trade.symbol, trade.shares) == ("buy", "AAPL", 5)
        assert trade.price == open_of(prices, "AAPL", DAY)
        # The US broker's minimum commission ($1 for 5 shares) and 5 bp of slippage.
        assert trade.cost == pytest.approx(1.0 + 5 * trade.price * 5e-4)
        assert model_day.cash_end == pytest.approx(10_000 - 5 * trade.price - trade.cost)
        close = prices.bar_on("AAPL", DAY).close
        assert model_day.value_end == pytest.approx(model_day.cash_end + 5 * close)
        assert (model_day.tokens_in, model_day.tokens_out) == (300, 60)
        assert model_day.cost_usd == pytest.approx((300 * 1.0 + 60 * 2.0) / 1e6)
        calls = session.exec(select(LLMCall).order_by(LLMCall.id)).all()
        assert len(calls) == 3 and all(c.fingerprint and c.latency_ms > 0 for c in calls)
        tools = session.exec(select(ToolCall).order_by(ToolCall.seq)).all()
        assert [t.tool for t in tools] == ["get_portfolio", "get_price", "buy"]
        assert not any(t.is_error for t in tools) and '"close":247.77' in tools[1].result
        roles = [m.role for m in session.exec(select(Message).order_by(Message.seq))]
        assert roles == [
            "system",
            "user",
            "assistant",
            "tool",
            "tool",
            "assistant",
            "tool",
            "assistant",
        ]


def test_rate_limits_and_server_errors_are_retried(engine, prices, stub) -> None:
    stub.queue(
        Reply(status=429, headers={"Retry-After": "0.3"}),
        Reply(status=500),
        tool_reply(("buy", {"symbol": "MSFT", "shares": 2})),
        Reply(status=503),
        text_reply("done <FINISH_SIGNAL>"),
    )
    started = time.perf_counter()
    result = run_model_day_sync(engine, request(new_run(engine), model_config(stub)), prices)
    assert result.status == "completed" and result.trades == 1
    assert stub.calls == 5
    assert time.perf_counter() - started >= 0.3  # Retry-After was honoured


def test_a_day_that_finally_fails_leaves_no_trades_and_keeps_the_book(engine, prices, stub) -> None:
    run_id = new_run(engine)
    config = model_config(stub, timeout_s=0.5, max_retries=1)
    stub.queue(
        tool_reply(("buy", {"symbol": "NVDA", "shares": 3})),
        text_reply("<FINISH_SIGNAL>"),
    )
    first = run_model_day_sync(engine, request(run_id, config, day=date(2025, 10, 14)), prices)
    assert first.status == "completed" and first.trades == 1
    # Next day: a buy goes through, then the endpoint is too slow twice (a try and a retry),
    # with no outage window left to wait it out.
    stub.queue(
        tool_reply(("buy", {"symbol": "AAPL", "shares": 4})),
        Reply(delay_s=1.5, text="late"),
        Reply(delay_s=1.5, text="late"),
    )
    started = time.perf_counter()
    no_window = AgentConfig(outage_window_s=0)
    failed = run_model_day_sync(engine, request(run_id, config, agent=no_window), prices)
    assert time.perf_counter() - started < 4  # the per-call timeout held
    assert failed.status == "failed" and failed.transient
    assert "Timeout" in failed.error
    with Session(engine) as session:
        trades = session.exec(select(Trade)).all()
        assert [(t.symbol, t.shares) for t in trades] == [("NVDA", 3)]
        book = day_start(session, "test/stub-gpt", NEXT_DAY, 10_000.0).book
        assert book.positions == {"NVDA": 3}
        day = session.get(ModelDay, failed.model_day_id)
        assert day.status == "failed" and day.cash_end is None
        # The failed attempt's conversation is kept for diagnosis.
        assert session.exec(select(ToolCall).where(ToolCall.model_day_id == day.id)).all()


@pytest.mark.parametrize(
    ("call", "error_text"),
    [
        (("buy", {"symbol": "AAPL", "shares": -3}), "shares must be positive"),
        (("buy", {"symbol": "AAPL", "shares": 2.5}), "whole number"),
        (("buy", {"symbol": "AAPL", "shares": "ten"}), "whole number"),
        (("buy", {"symbol": "ZZZZ", "shares": 1}), "unknown symbol ZZZZ"),
        (("sell", {"symbol": "AAPL", "shares": 1}), "no position in AAPL"),
        (("buy", {"symbol": ["AAPL"], "shares": 1}), "symbol"),
        (("buy", {"shares": 1}), "symbol"),
        (("get_price", {"symbol": "AAPL", "date": "2025-10-16"}), "in the future"),
        (("buy", '{"symbol": "AAPL", "shares": '), "not valid JSON"),
    ],
)
def test_malformed_tool_arguments_get_a_readable_error(engine, prices, stub, call, error_text):
    stub.queue(
        tool_reply(call),
        tool_reply(("buy", {"symbol": "AAPL", "shares": 1})),
        text_reply("recovered <FINISH_SIGNAL>"),
    )
    result = run_model_day_sync(engine, request(new_run(engine), model_config(stub)), prices)
    assert result.status == "completed" and result.trades == 1
    answer = [m for m in stub.requests[1]["messages"] if m["role"] == "tool"][-1]
    assert error_text in json.dumps(answer["content"])


def test_replay_reproduces_the_trades_with_no_network_call(engine, prices, stub) -> None:
    stub.queue(
        tool_reply(("get_universe_snapshot", {})),
        tool_reply(
            ("buy", {"symbol": "AAPL", "shares": 3}), ("buy", {"symbol": "NVDA", "shares": 2})
        ),
        text_reply("<FINISH_SIGNAL>"),
    )
    live = run_model_day_sync(engine, request(new_run(engine, "live"), model_config(stub)), prices)
    calls_before = stub.calls
    replay_request = request(
        new_run(engine, "replay"), model_config(stub), portfolio="replay/p", mode="replay"
    )
    replayed = run_model_day_sync(engine, replay_request, prices)
    assert stub.calls == calls_before  # zero network calls
    assert replayed.status == "completed" and replayed.replayed_calls == 3
    assert replayed.llm_calls == 0 and replayed.value_end == pytest.approx(live.value_end)
    with Session(engine) as session:
        by_day = {}
        for trade in session.exec(select(Trade)):
            by_day.setdefault(trade.model_day_id, []).append(
                (trade.symbol, trade.shares, trade.price)
            )
        assert by_day[live.model_day_id] == by_day[replayed.model_day_id]
        assert session.get(ModelDay, replayed.model_day_id).cached


def test_replay_fails_clearly_on_a_miss(engine, prices, stub) -> None:
    result = run_model_day_sync(
        engine, request(new_run(engine), model_config(stub), mode="replay"), prices
    )
    assert result.status == "failed" and not result.transient
    assert "no recorded answer of stub-gpt" in result.error and stub.calls == 0


def test_a_spent_budget_skips_the_remaining_days(engine, prices, stub) -> None:
    run_id = new_run(engine)
    budget = RunBudget(limit_tokens=200)
    stub.queue(text_reply("nothing today <FINISH_SIGNAL>"))
    first = run_model_day_sync(
        engine, request(run_id, model_config(stub), day=date(2025, 10, 14)), prices, budget=budget
    )
    assert first.status == "completed" and budget.state().spent_tokens == 120
    stub.queue(tool_reply(("get_portfolio", {})), text_reply("<FINISH_SIGNAL>"))
    second = run_model_day_sync(engine, request(run_id, model_config(stub)), prices, budget=budget)
    # The second day's first call spends the rest; its next call is refused.
    assert second.status == "skipped" and "budget" in second.error
    third = run_model_day_sync(
        engine, request(run_id, model_config(stub), day=date(2025, 10, 17)), prices, budget=budget
    )
    assert third.status == "skipped" and stub.calls == 2
    with Session(engine) as session:
        reasons = {d.day: d.skip_reason for d in session.exec(select(ModelDay))}
        assert reasons[DAY] == reasons[date(2025, 10, 17)] == "budget"


def test_a_missing_api_key_fails_the_day_clearly(engine, prices, stub, monkeypatch) -> None:
    monkeypatch.delenv("AITRADER_TEST_KEY")
    with pytest.raises(ValueError, match="AITRADER_TEST_KEY, which is not set"):
        run_model_day_sync(engine, request(new_run(engine), model_config(stub)), prices)


def test_the_api_key_never_reaches_the_store_or_the_logs(engine, prices, stub, caplog) -> None:
    caplog.set_level("DEBUG")
    stub.queue(
        tool_reply(("buy", {"symbol": "AAPL", "shares": 1})),
        Reply(status=401),
    )
    run_model_day_sync(engine, request(new_run(engine), model_config(stub, max_retries=0)), prices)
    stub.queue(text_reply("<FINISH_SIGNAL>"))
    run_model_day_sync(
        engine, request(new_run(engine), model_config(stub), day=NEXT_DAY, portfolio="p2"), prices
    )
    dump = []
    with engine.connect() as connection:
        for table in ("run", "modelday", "trade", "holding", "message", "toolcall", "llmcall"):
            dump.extend(str(row) for row in connection.execute(text(f"SELECT * FROM {table}")))
    assert len(dump) > 10
    assert KEY not in "\n".join(dump)
    assert KEY not in caplog.text
    assert KEY in stub.headers[0]["authorization"]  # it was really sent, to the endpoint only
