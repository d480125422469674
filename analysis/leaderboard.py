"""The leaderboard: every model of a run ranked over a window, beside the benchmark."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from sqlmodel import Session

from analysis.curves import run_curves
from analysis.metrics import PerformanceSummary, summarize


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
    curves = run_curves(session, run_id, start, end, model)
    rows = []
    for name, curve in curves.models.items():
        window = curves.benchmark.loc[curve.values.index[0] : curve.values.index[-1]]
        performance = summarize(
            curve.values,
            benchmark=window if len(window) else None,
            trades=curve.trades,
            trade_notional=curve.trade_notional,
            risk_free_rate=risk_free_rate,
        )
        rows.append(LeaderboardRow(rank=None, model=name, performance=performance))
    rows.sort(key=lambda r: r.performance.cumulative_return, reverse=True)
    for rank, row in enumerate(rows, start=1):
        row.rank = rank
    if len(curves.benchmark):
        performance = summarize(
            curves.benchmark, benchmark=curves.benchmark, risk_free_rate=risk_free_rate
        )
        rows.append(
            LeaderboardRow(
                rank=None, model=curves.run.benchmark, is_benchmark=True, performance=performance
            )
        )
    return rows
