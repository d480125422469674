"""Built-in strategies through persisted model-days, read back with `results --detail full`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from agents.session import run_model_day_sync
from agents.types import ModelDayRequest
from configs.loader import load_config, load_universe
from deployments.cli import app
from market_data.aitrader_files import import_prices
from models.engine import create_store_engine, dispose_engines
from models.prices import PriceBook
from models.tables import LLMCall, ModelDay, Run, Trade

DAYS = [date(2025, 10, 13), date(2025, 10, 14), date(2025, 10, 15)]


def test_strategies_trade_through_persisted_model_days(
    store_url: str, shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_store_engine(store_url)
    with Session(engine) as session:
        import_prices(session, shared_data / "nasdaq100_daily")
        run = Run(name="strategies", models=["equal-weight", "momentum", "random"])
        session.add(run)
        session.commit()
        run_id = run.id
        prices = PriceBook.load(session)
    models = load_config().enabled_models()
    universe = load_universe("nasdaq100").symbols
    for day in DAYS:
        for model in models:
            request = ModelDayRequest(
                run_id=run_id, model=model, day=day, portfolio=f"t/{model.name}", universe=universe
            )
            result = run_model_day_sync(engine, request, prices)
            assert result.status == "completed" and result.finished, result.error
            assert result.tokens_in == result.tokens_out == 0 and result.llm_calls >= 2

    with Session(engine) as session:
        trades_by = {}
        for trade, model_day in session.exec(select(Trade, ModelDay).join(ModelDay)):
            trades_by.setdefault((model_day.model, model_day.day), []).append(trade)
        # Equal weight buys once, on its first day, every name its share affords and more,
        # keeping less than 5 % in cash; then holds.
        affordable = [
            s for s in universe if (bar := prices.bar_on(s, DAYS[0])) and bar.open <= 10_000 / 101
        ]
        bought = {t.symbol for t in trades_by[("equal-weight", DAYS[0])]}
        assert set(affordable) <= bought and len(affordable) > 20
        first = session.exec(
            select(ModelDay).where(ModelDay.model == "equal-weight", ModelDay.day == DAYS[0])
        ).one()
        assert first.cash_end < 0.05 * first.value_end
        assert ("equal-weight", DAYS[1]) not in trades_by
        assert all(t.side == "buy" for t in trades_by[("equal-weight", DAYS[0])])
        values = {(d.model, d.day): d.value_end for d in session.exec(select(ModelDay))}
        assert all(v is not None and 9_000 < v < 11_000 for v in values.values())

    monkeypatch.setenv("DATABASE_URL", store_url)
    runner = CliRunner()
    shown = runner.invoke(
        app, ["results", "details", "--model", "equal-weight", "--day", "2025-10-13"]
    )
    assert shown.exit_code == 0, shown.stderr
    assert "equal-weight on 2025-10-13: completed" in shown.stdout
    assert "tool get_universe_snapshot" in shown.stdout and "buy 1" in shown.stdout
    as_json = runner.invoke(app, ["results", "details", "--model", "momentum", "--format", "json"])
    details = json.loads(as_json.stdout)
    assert [d["day"] for d in details] == [str(d) for d in DAYS]
    first = details[0]
    assert (
        first["messages"][0]["role"] == "system"
        and "<FINISH_SIGNAL>" in first["messages"][-1]["content"]
    )
    assert {c["tool"] for c in first["tool_calls"]} >= {"get_portfolio", "get_recent_closes"}
    assert len(first["trades"]) == 10 and first["llm_calls"] >= 3
    old_spelling = runner.invoke(app, ["results", "--detail", "full"])
    assert old_spelling.exit_code == 1 and "`aitrader results details`" in old_spelling.stderr

    # A strategy's LLM calls keep their count and tools, not the transcript they repeat, and a
    # replay answers from them all the same: the same trades on a fresh portfolio.
    with Session(engine) as session:
        calls = session.exec(select(LLMCall)).all()
        assert calls and all(c.request["messages"] is None for c in calls)
        assert sorted({c.request["message_count"] for c in calls})[0] >= 2
    momentum = next(m for m in models if m.name == "momentum")
    replayed = ModelDayRequest(
        run_id=run_id,
        model=momentum,
        day=DAYS[0],
        portfolio="replayed/momentum",
        universe=universe,
        mode="replay",
    )
    result = run_model_day_sync(engine, replayed, prices)
    assert result.status == "completed" and result.replayed_calls >= 3 and result.llm_calls == 0
    with Session(engine) as session:
        fills = [
            [
                (t.side, t.symbol, t.shares)
                for t in session.exec(
                    select(Trade)
                    .join(ModelDay)
                    .where(ModelDay.portfolio == portfolio, ModelDay.day == DAYS[0])
                    .order_by(Trade.seq)
                )
            ]
            for portfolio in ("t/momentum", "replayed/momentum")
        ]
    assert fills[0] == fills[1] and len(fills[0]) == 10
    engine.dispose()
    dispose_engines()
