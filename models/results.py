"""Reading results back: runs, per model-day values, and the leaderboard with its metrics."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from models.errors import ResultsError
from models.ledger import latest_completed_day
from models.tables import (
    LLMCall,
    Message,
    ModelDay,
    PriceBar,
    Run,
    ToolCall,
    Trade,
    day_rows,
)


def list_runs(session: Session, limit: int = 50) -> list[Run]:
    """The newest runs first."""
    return list(session.exec(select(Run).order_by(Run.id.desc()).limit(limit)))


def get_run(session: Session, run_id: int | None) -> Run:
    """The run with `run_id`, or the newest run when `run_id` is None."""
    run = session.get(Run, run_id) if run_id is not None else None
    if run_id is None:
        run = session.exec(select(Run).order_by(Run.id.desc()).limit(1)).first()
        if run is None:
            raise ResultsError("the store holds no runs yet")
    if run is None:
        raise ResultsError(f"no run with id {run_id}")
    return run


def run_scope(session: Session, run_id: int, from_inception: bool = False) -> list:
    """Conditions selecting a run's results: its portfolios over its date range (from each
    portfolio's first day with `from_inception`, so a run continuing portfolios shows them whole).

    A run may find some days already simulated by an earlier run of the same portfolios (a
    re-run, a resume); those days are part of its results all the same.
    """
    run = get_run(session, run_id)
    if not run.portfolios:
        return [ModelDay.run_id == run.id]
    conditions = [ModelDay.portfolio.in_(list(run.portfolios.values()))]
    if run.start_date is not None and not from_inception:
        conditions.append(ModelDay.day >= run.start_date)
    if run.end_date is not None:
        conditions.append(ModelDay.day <= run.end_date)
    return conditions


DAY_COLUMNS = [
    "run_id",
    "run",
    "model",
    "trial",
    "portfolio",
    "day",
    "status",
    "cash",
    "value",
    "trades",
    "traded_notional",
    "trading_costs",
    "tokens_in",
    "tokens_out",
    "cost_usd",
    "cached",
    "error",
    "session",
    "track",
]


def _within(query: Any, model: str | None, start: date | None, end: date | None) -> Any:
    """`query` narrowed to one model and a day range, where given."""
    if model is not None:
        query = query.where(ModelDay.model == model)
    if start is not None:
        query = query.where(ModelDay.day >= start)
    if end is not None:
        query = query.where(ModelDay.day <= end)
    return query


def model_days_frame(
    session: Session,
    run_id: int | None = None,
    model: str | None = None,
    start: date | None = None,
    end: date | None = None,
    from_inception: bool = False,
) -> pd.DataFrame:
    """One row per model-day: status, end-of-day cash and value, trades and what they cost,
    tokens and LLM cost (a run's days; with `from_inception` its portfolios' whole history)."""
    trades = (
        select(
            Trade.model_day_id,
            func.count().label("n"),
            func.sum(Trade.shares * Trade.price).label("notional"),
            func.sum(Trade.cost).label("costs"),
        )
        .group_by(Trade.model_day_id)
        .subquery()
    )
    query = (
        select(ModelDay, Run.name, trades.c.n, trades.c.notional, trades.c.costs)
        .join(Run, Run.id == ModelDay.run_id)
        .outerjoin(trades, trades.c.model_day_id == ModelDay.id)
        .order_by(ModelDay.model, ModelDay.trial, ModelDay.day, ModelDay.run_id)
    )
    if run_id is not None:
        query = query.where(*run_scope(session, run_id, from_inception))
    rows = [
        {
            "run_id": md.run_id,
            "run": run_name,
            "model": md.model,
            "trial": md.trial,
            "portfolio": md.portfolio,
            "day": md.day,
            "status": md.status,
            "cash": md.cash_end,
            "value": md.value_end,
            "trades": int(n or 0),
            "traded_notional": float(notional or 0.0),
            "trading_costs": float(costs or 0.0),
            "tokens_in": md.tokens_in,
            "tokens_out": md.tokens_out,
            "cost_usd": md.cost_usd,
            "cached": md.cached,
            "error": md.error or md.skip_reason,
            "session": md.session,
            "track": md.track,
        }
        for md, run_name, n, notional, costs in session.execute(
            _within(query, model, start, end)
        ).all()
    ]
    return pd.DataFrame(rows, columns=DAY_COLUMNS)


def benchmark_closes(
    session: Session, symbol: str, start: date, end: date, market: str = "real"
) -> pd.Series:
    """The benchmark's close on each day in [start, end]: the day's last bar with a close."""
    query = (
        select(PriceBar.day, PriceBar.ts, PriceBar.close, PriceBar.interval)
        .where(PriceBar.market == market, PriceBar.symbol == symbol)
        .where(PriceBar.day >= start, PriceBar.day <= end)
        .where(PriceBar.close.is_not(None))
        .order_by(PriceBar.ts)
    )
    frame = pd.DataFrame(session.execute(query).all(), columns=["day", "ts", "close", "interval"])
    if frame.empty:
        return pd.Series(dtype=float, name=symbol)
    # A day's daily close beats its last intraday bar; days with intraday bars only use those.
    frame = frame.assign(daily=frame["interval"] == "1d").sort_values(["day", "daily", "ts"])
    closes = frame.groupby("day")["close"].last()
    closes.index = pd.to_datetime(closes.index)
    return closes.rename(symbol)


def starting_value(
    session: Session, run: Run, portfolio: str, first_day: pd.Timestamp
) -> tuple[pd.Timestamp, float] | None:
    """What a simulated portfolio was worth at the close before its first day in the window.

    A backtest's first day already trades at the open, so its return is measured from the book
    it started with: the previous completed day's value, or the initial cash dated the trading
    day before. A legacy import starts from its own first record, so it has none.
    """
    if run.kind == "legacy-import":
        return None
    day = first_day.date()
    previous = latest_completed_day(session, portfolio, day)
    if previous is not None and previous.value_end is not None:
        return pd.Timestamp(previous.day), previous.value_end
    before = session.exec(
        select(func.max(PriceBar.day)).where(
            PriceBar.market == run.market, PriceBar.symbol == run.benchmark, PriceBar.day < day
        )
    ).one()
    return (pd.Timestamp(before), run.initial_cash) if before is not None else None


# Tuples, and read field by field: a set's order (and `model_dump(include=…)` of a table row)
# varies from process to process, and `results details --format json` is meant to diff cleanly.
MESSAGE_FIELDS = ("seq", "role", "content", "reasoning")
TOOL_CALL_FIELDS = ("seq", "tool", "arguments", "result", "is_error", "latency_ms")
TRADE_FIELDS = ("seq", "side", "symbol", "shares", "price", "cost", "cash_after")


class ModelDayDetail(BaseModel):
    """Everything one model-day did: its conversation, tool calls, trades and costs."""

    run_id: int
    model: str
    day: date
    status: str
    error: str | None
    tokens_in: int
    tokens_out: int
    cost_usd: float
    cash_end: float | None
    value_end: float | None
    messages: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    trades: list[dict[str, Any]]
    llm_calls: int


def model_day_details(
    session: Session,
    run_id: int | None = None,
    model: str | None = None,
    start: date | None = None,
    end: date | None = None,
    limit: int = 50,
) -> list[ModelDayDetail]:
    """The full record of each matching model-day (the newest run when `run_id` is None)."""
    run = get_run(session, run_id)
    query = _within(select(ModelDay).where(*run_scope(session, run.id)), model, start, end)
    details = []
    for day in session.exec(query.order_by(ModelDay.day, ModelDay.model).limit(limit)):
        messages, calls, trades = (day_rows(session, t, day.id) for t in (Message, ToolCall, Trade))
        llm_calls = session.exec(
            select(func.count()).select_from(LLMCall).where(LLMCall.model_day_id == day.id)
        ).one()
        details.append(
            ModelDayDetail(
                run_id=day.run_id,
                model=day.model,
                day=day.day,
                status=day.status,
                error=day.error or day.skip_reason,
                tokens_in=day.tokens_in,
                tokens_out=day.tokens_out,
                cost_usd=day.cost_usd,
                cash_end=day.cash_end,
                value_end=day.value_end,
                messages=[_fields(m, MESSAGE_FIELDS) for m in messages],
                tool_calls=[_fields(c, TOOL_CALL_FIELDS) for c in calls],
                trades=[_fields(t, TRADE_FIELDS) for t in trades],
                llm_calls=llm_calls,
            )
        )
    return details


def _fields(row: SQLModel, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}
