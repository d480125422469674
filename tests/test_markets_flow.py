"""Every shipped market config runs its built-in models through the backtest flow on the real
shared data and ends with a leaderboard against its benchmark, under its market's rules."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, select

from analysis.leaderboard import rank_run
from configs.loader import load_config
from flows.backtest import backtest
from market_data.aitrader_files import import_prices
from models.engine import upgrade
from models.tables import Holding, ModelDay, ModelDayStatus, Run, Trade
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("prefect_harness")

# config -> (the shared folders it needs, a short window of it, the benchmark it ranks against)
MARKETS = {
    "sse50": (["sse50_daily"], date(2025, 10, 9), date(2025, 10, 17), "000016.SH"),
    "sse50-hourly": (
        ["sse50_hourly", "sse50_daily"],
        date(2025, 10, 9),
        date(2025, 10, 14),
        "000016.SH",
    ),
    "crypto": (["crypto_daily"], date(2025, 11, 6), date(2025, 11, 11), "CD5"),
    # The shared hourly file has no QQQ: its daily closes come from the daily folder.
    "nasdaq100-hourly": (
        ["nasdaq100_hourly", "nasdaq100_daily"],
        date(2025, 10, 1),
        date(2025, 10, 6),
        "QQQ",
    ),
}


def simulate(engine, shared_data: Path, config: str) -> tuple[int, list]:
    folders, start, end, _ = MARKETS[config]
    upgrade(engine)
    with Session(engine) as session:
        for folder in folders:
            import_prices(session, shared_data / folder)
        session.commit()
    path = str(ROOT / "configs" / f"{config}.yaml")
    state = asyncio.run(backtest(config=path, start=start, end=end, return_state=True))
    assert state.is_completed(), state.message
    summary = state.result()
    with Session(engine) as session:
        ranking = rank_run(session, summary.run_id)
    return summary.run_id, ranking.rows


def trades_by_day(session: Session, run_id: int) -> dict[tuple[str, date], list[Trade]]:
    rows = session.exec(
        select(ModelDay, Trade)
        .join(Trade, Trade.model_day_id == ModelDay.id)
        .where(ModelDay.run_id == run_id)
        .order_by(ModelDay.day, Trade.seq)
    ).all()
    trades: dict[tuple[str, date], list[Trade]] = defaultdict(list)
    for model_day, trade in rows:
        trades[model_day.model, model_day.day].append(trade)
    return trades


@pytest.mark.parametrize("config", sorted(MARKETS))
def test_each_market_config_ends_with_a_leaderboard_against_its_benchmark(
    flow_store, shared_data: Path, config: str
):
    run_id, rows = simulate(flow_store, shared_data, config)
    settings = load_config(ROOT / "configs" / f"{config}.yaml")
    models = {row.model for row in rows if not row.is_benchmark}
    assert models == {m.name for m in settings.models}
    benchmark = [row for row in rows if row.is_benchmark]
    assert [row.model for row in benchmark] == [MARKETS[config][3]]
    with Session(flow_store) as session:
        run = session.get(Run, run_id)
        days = session.exec(select(ModelDay).where(ModelDay.run_id == run_id)).all()
        traded = trades_by_day(session, run_id)
    assert run.initial_cash == settings.market.definition.initial_cash
    assert run.currency == settings.market.definition.currency
    assert all(day.status == ModelDayStatus.COMPLETED for day in days)
    assert sum(len(t) for t in traded.values()) > 0, "the built-in models traded nothing"
    for row in rows:
        if not row.is_benchmark:
            assert row.performance.end_value > 0.5 * run.initial_cash
    # The baselines are invested: under 5 % of the book in cash after the first session.
    for baseline in {"equal-weight", "index-weight"} & models:
        first = min((d for d in days if d.model == baseline), key=lambda d: d.day)
        assert first.cash_end < 0.05 * first.value_end, (config, baseline, first.cash_end)


def start_of_day_holdings(session: Session, run_id: int) -> dict[tuple[str, date], dict]:
    """Each model-day's starting shares: the previous day's end-of-day holdings of its model."""
    days = session.exec(
        select(ModelDay).where(ModelDay.run_id == run_id).order_by(ModelDay.day)
    ).all()
    starts: dict[tuple[str, date], dict] = {}
    last: dict[str, dict] = defaultdict(dict)
    for model_day in days:
        starts[model_day.model, model_day.day] = last[model_day.model]
        rows = session.exec(select(Holding).where(Holding.model_day_id == model_day.id)).all()
        last[model_day.model] = {h.symbol: h.shares for h in rows}
    return starts


def test_a_shares_trade_whole_lots_and_sell_only_what_was_held_at_the_day_start(
    flow_store, shared_data: Path
):
    run_id, _ = simulate(flow_store, shared_data, "sse50-hourly")
    with Session(flow_store) as session:
        traded = trades_by_day(session, run_id)
        starts = start_of_day_holdings(session, run_id)
    sessions = {t.session_at.strftime("%H:%M") for ts in traded.values() for t in ts}
    assert sessions <= {"10:30", "11:30", "14:00", "15:00"}
    assert all(t.shares % 100 == 0 and t.shares > 0 for ts in traded.values() for t in ts)
    for key, trades in traded.items():
        sold: dict[str, float] = defaultdict(float)
        for trade in trades:
            if trade.side == "sell":
                sold[trade.symbol] += trade.shares
        for symbol, shares in sold.items():  # T+1: today's buys cannot be sold today
            assert shares <= starts[key].get(symbol, 0), f"{key}: sold {symbol} bought that day"


def test_crypto_trades_fractions_every_day_including_weekends(flow_store, shared_data: Path):
    run_id, _ = simulate(flow_store, shared_data, "crypto")
    with Session(flow_store) as session:
        days = sorted(
            {d.day for d in session.exec(select(ModelDay).where(ModelDay.run_id == run_id))}
        )
        traded = trades_by_day(session, run_id)
        holdings = session.exec(
            select(Holding).join(ModelDay).where(ModelDay.run_id == run_id)
        ).all()
    assert [d.weekday() for d in days] == [3, 4, 5, 6, 0, 1]  # Thursday 6 Nov to Tuesday 11 Nov
    quantities = [t.shares for ts in traded.values() for t in ts] + [h.shares for h in holdings]
    assert any(q != int(q) for q in quantities), "no fractional quantity traded"
    assert all(round(q, 4) == q for q in quantities)
