"""The leaderboard: every model of a run ranked over a window, beside the benchmark."""

from __future__ import annotations

from datetime import date

import pandas as pd
from pydantic import BaseModel
from sqlmodel import Session

from analysis.metrics import PerformanceSummary, summarize
from models.errors import ResultsError
from models.results import benchmark_closes, get_run, model_days_frame, starting_value
from models.tables import ModelDayStatus


class LeaderboardRow(BaseModel):
    """One model's (or the benchmark's) performance over a run's window."""

    rank: int | None
    model: str
    is_benchmark: bool = False
    performance: PerformanceSummary


def leaderboard(
    session: Session,
    run_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    risk_free_rate: float = 0.0,
    model: str | None = None,
) -> list[LeaderboardRow]:
    """Every model of a run ranked by cumulative return, plus the benchmark over the same window."""
    run = get_run(session, run_id)
    days = model_days_frame(session, run.id, model=model, start=start, end=end)
    done = days[days["status"] == ModelDayStatus.COMPLETED]
    if done.empty:
        raise ResultsError(f"run {run.id} ({run.name}) has no completed model-days in that range")
    rows: list[LeaderboardRow] = []
    starts = []
    for name, group in done.groupby("model"):
        values = pd.Series(group["value"].to_numpy(), index=pd.to_datetime(group["day"]))
        notional = pd.Series(group["traded_notional"].to_numpy(), index=values.index)
        start_point = starting_value(session, run, group["portfolio"].iloc[0], values.index[0])
        if start_point is not None:
            values = pd.concat([pd.Series([start_point[1]], index=[start_point[0]]), values])
            notional = pd.concat([pd.Series([0.0], index=[start_point[0]]), notional])
        window = (values.index[0].date(), values.index[-1].date())
        starts.append(window[0])
        bench = benchmark_closes(session, run.benchmark, *window, market=run.market)
        rows.append(
            LeaderboardRow(
                rank=None,
                model=str(name),
                performance=summarize(
                    values,
                    benchmark=bench if len(bench) else None,
                    trades=int(group["trades"].sum()),
                    trade_notional=notional,
                    risk_free_rate=risk_free_rate,
                ),
            )
        )
    rows.sort(key=lambda r: r.performance.cumulative_return, reverse=True)
    for rank, row in enumerate(rows, start=1):
        row.rank = rank
    first = min(starts)
    last = max(pd.Timestamp(d) for d in done["day"]).date()
    bench = benchmark_closes(session, run.benchmark, first, last, market=run.market)
    if len(bench) >= 1:
        rows.append(
            LeaderboardRow(
                rank=None,
                model=run.benchmark,
                is_benchmark=True,
                performance=summarize(
                    bench * (run.initial_cash / bench.iloc[0]),
                    benchmark=bench,
                    risk_free_rate=risk_free_rate,
                ),
            )
        )
    return rows
