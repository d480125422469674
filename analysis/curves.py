"""One definition of a run's equity curves, shared by the leaderboard, the charts and reports.

Each model's curve starts from the book it began the window with (the close before its first day:
the previous completed day's value, or the initial cash), so a first day's trading counts; the
benchmark is scaled to the initial cash on the earliest of those starting points. Every curve's
last point is the final value the leaderboard shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd
from sqlmodel import Session

from models.errors import ResultsError
from models.results import benchmark_closes, get_run, model_days_frame, starting_value
from models.tables import ModelDayStatus, Run


@dataclass
class ModelCurve:
    """One model's end-of-day values over the window, from its starting point."""

    values: pd.Series
    trade_notional: pd.Series
    trades: int


@dataclass
class RunCurves:
    """Every model's curve of a run's window, and the benchmark's over the same span."""

    run: Run
    models: dict[str, ModelCurve]
    benchmark: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))

    @property
    def start(self) -> date:
        return min(curve.values.index[0] for curve in self.models.values()).date()

    @property
    def end(self) -> date:
        return max(curve.values.index[-1] for curve in self.models.values()).date()

    def frame(self) -> pd.DataFrame:
        """One column per model and the benchmark's last, indexed by day (for charts)."""
        columns = {name: curve.values for name, curve in self.models.items()}
        if len(self.benchmark):
            columns[self.run.benchmark] = self.benchmark
        return pd.DataFrame(columns).sort_index()


def run_curves(
    session: Session,
    run_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    model: str | None = None,
) -> RunCurves:
    """The curves of a run's completed model-days in [start, end] (optionally one model)."""
    run = get_run(session, run_id)
    days = model_days_frame(session, run.id, model=model, start=start, end=end)
    done = days[days["status"] == ModelDayStatus.COMPLETED]
    if done.empty:
        of_model = f" of model {model!r}" if model else ""
        raise ResultsError(
            f"run {run.id} ({run.name}) has no completed model-days{of_model} in that range"
        )
    curves = RunCurves(
        run=run,
        models={str(name): _model_curve(session, run, g) for name, g in done.groupby("model")},
    )
    closes = benchmark_closes(session, run.benchmark, curves.start, curves.end, market=run.market)
    if len(closes):
        curves.benchmark = (closes * (run.initial_cash / closes.iloc[0])).rename(run.benchmark)
    return curves


def _model_curve(session: Session, run: Run, group: pd.DataFrame) -> ModelCurve:
    values = pd.Series(group["value"].to_numpy(), index=pd.to_datetime(group["day"]))
    notional = pd.Series(group["traded_notional"].to_numpy(), index=values.index)
    start_point = starting_value(session, run, group["portfolio"].iloc[0], values.index[0])
    if start_point is not None:
        day, value = start_point
        values = pd.concat([pd.Series([value], index=[day]), values])
        notional = pd.concat([pd.Series([0.0], index=[day]), notional])
    return ModelCurve(values=values, trade_notional=notional, trades=int(group["trades"].sum()))
