"""One definition of a run's equity curves, shared by the leaderboard, the charts and reports.

Each model's curve starts from the book it began the window with (the close before its first day:
the previous completed day's value, or the initial cash), so a first day's trading counts; the
benchmark is scaled to the initial cash on the earliest of those starting points. A run that
continues portfolios begun by earlier runs (a daily catch-up, a later range) shows them from their
first day: every curve then starts from the initial cash, level with the benchmark, and its last
point is the book's real value, so the chart, the table and `final_value` tell one story. Only an
explicit window (`start` inside the history) starts from a carried-over book. Every curve's
last point is the final value the leaderboard shows. A model run in several trials has one curve
per trial, and a mean curve (the average value across trials, day by day).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, timedelta

import pandas as pd
from sqlmodel import Session

from analysis.metrics import TRADING_DAYS_PER_YEAR
from models.errors import ResultsError
from models.results import benchmark_closes, get_run, model_days_frame, starting_value
from models.tables import ModelDayStatus, Run, Track
from models.trials import TrialRef

# A market open every day (crypto) annualises over calendar days.
CALENDAR_DAYS_PER_YEAR = 365
# How far before a window the benchmark's last close is looked for (a long holiday included).
BENCHMARK_LEAD_IN = timedelta(days=14)


@dataclass
class ModelCurve:
    """One trial of one model: end-of-day values over the window, from its starting point, and
    what it traded and spent on the way."""

    model: str
    trial: int
    values: pd.Series
    trade_notional: pd.Series
    trading_costs: pd.Series  # what each day's fills paid beyond their value (0 at the start)
    trades: int
    model_days: int
    tokens: int
    cost_usd: float
    live_sessions: int = 0  # completed days decided before their session closed


@dataclass
class RunCurves:
    """Every trial of every model of a run's window, and the benchmark's over the same span."""

    run: Run
    curves: list[ModelCurve]
    benchmark: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    # An hourly market's last session of a day (`15:00`): the bar its end-of-day values are
    # taken at. None for a daily market, whose values are the day's.
    last_session: str | None = None
    # The completed model-days the curves count (`model_days_frame` rows): what `on_track` and
    # `on_days` keep some of.
    days: pd.DataFrame = field(default_factory=pd.DataFrame)

    def at_cost_multiplier(self, multiplier: float) -> RunCurves:
        """The curves as if every fill had paid `multiplier` times its costs (0: gross of costs),
        the same fills assumed: each day's value moves by what the change would have paid so far."""
        if multiplier == 1:
            return self
        curves = [
            replace(c, values=c.values + (1 - multiplier) * c.trading_costs.cumsum())
            for c in self.curves
        ]
        return replace(self, curves=curves)

    @property
    def models(self) -> dict[str, list[ModelCurve]]:
        """Each model's trials, in trial order."""
        by_model: dict[str, list[ModelCurve]] = {}
        for curve in sorted(self.curves, key=lambda c: (c.model, c.trial)):
            by_model.setdefault(curve.model, []).append(curve)
        return by_model

    @property
    def start(self) -> date:
        return min(curve.values.index[0] for curve in self.curves).date()

    @property
    def end(self) -> date:
        return max(curve.values.index[-1] for curve in self.curves).date()

    @property
    def periods_per_year(self) -> float:
        """Sessions a year: 365 when the market trades at weekends (crypto), else 252."""
        days = pd.DatetimeIndex([d for c in self.curves for d in c.values.index])
        return CALENDAR_DAYS_PER_YEAR if (days.dayofweek >= 5).any() else TRADING_DAYS_PER_YEAR

    def mean_values(self, model: str) -> pd.Series:
        """The model's value averaged across its trials, on the days every trial has."""
        trials = [curve.values for curve in self.models[model]]
        return (
            pd.concat(trials, axis=1, join="inner").mean(axis=1) if len(trials) > 1 else trials[0]
        )

    def on_bar_times(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`frame` (by day) for a chart: in an hourly market each end-of-day value sits at the
        day's last session, the bar it was valued at, not at midnight."""
        if self.last_session is None or frame.empty:
            return frame
        at = pd.Timedelta(f"{self.last_session}:00")
        return frame.set_axis(pd.DatetimeIndex(frame.index) + at, axis="index")

    def frame(self) -> pd.DataFrame:
        """One column per model (its mean over trials) and the benchmark's last, by day."""
        columns = {name: self.mean_values(name) for name in self.models}
        if len(self.benchmark):
            columns[self.run.benchmark] = self.benchmark
        return pd.DataFrame(columns).sort_index()

    def trial_frame(self) -> pd.DataFrame:
        """One column per trial of a model run in several (its `TrialRef.label`), for faint
        lines."""
        columns = {
            TrialRef(model=c.model, trial=c.trial).label: c.values
            for c in self.curves
            if len(self.models[c.model]) > 1
        }
        return pd.DataFrame(columns).sort_index()


def run_curves(
    session: Session,
    run_id: int | None = None,
    start: date | None = None,
    end: date | None = None,
    model: str | None = None,
    track: Track | None = None,
) -> RunCurves:
    """The curves of a run's completed model-days in [start, end] (optionally one model); without
    `start`, from its portfolios' first days. With a `track`, only the sessions decided on it
    count (`on_track`)."""
    run = get_run(session, run_id)
    days = model_days_frame(
        session, run.id, model=model, start=start, end=end, from_inception=start is None
    )
    done = days[days["status"] == ModelDayStatus.COMPLETED]
    if done.empty:
        of_model = f" of model {model!r}" if model else ""
        raise ResultsError(
            f"run {run.id} ({run.name}) has no completed model-days{of_model} in that range"
        )
    if "trial" not in done:
        done = done.assign(trial=1)
    curves = RunCurves(
        run=run,
        curves=[_curve(session, run, group) for _, group in done.groupby(["model", "trial"])],
        days=done,
    )
    curves.benchmark = _benchmark_curve(session, run, curves)
    curves.last_session = _last_session(done["session"])
    if track is not None:
        curves = on_track(curves, done, track)
    return curves


def on_track(curves: RunCurves, done: pd.DataFrame, track: Track) -> RunCurves:
    """The curves as if only the sessions decided on `track` had happened: each curve chains its
    own returns of those days from the initial cash, and the benchmark chains its returns of
    every day some curve kept (a live leaderboard is not lifted by a backtest before it)."""
    decided = done[done["track"].fillna(Track.BACKTEST) == track]
    if decided.empty:
        raise ResultsError(f"run {curves.run.id} has no completed {track} sessions")
    return on_days(curves, decided)


def on_days(curves: RunCurves, decided: pd.DataFrame) -> RunCurves:
    """The curves as if only the model-days of `decided` (rows of `curves.days`) had happened,
    chained as `on_track` does; a trial with none of them is left out."""
    groups = {(str(m), int(t)): g for (m, t), g in decided.groupby(["model", "trial"])}
    kept = [
        _chained(c, groups[c.model, c.trial], curves.run.initial_cash)
        for c in curves.curves
        if (c.model, c.trial) in groups
    ]
    every_kept = set(pd.to_datetime(decided["day"]))
    benchmark = curves.benchmark
    returns = benchmark.pct_change()
    kept_returns = returns[returns.index.isin(every_kept)]
    if len(kept_returns):
        benchmark = _from_cash(kept_returns, benchmark.index, curves.run.initial_cash)
    else:
        benchmark = benchmark.iloc[:0]
    benchmark = benchmark.rename(curves.run.benchmark)
    return replace(curves, curves=kept, benchmark=benchmark, days=decided)


def _chained(curve: ModelCurve, days: pd.DataFrame, cash: float) -> ModelCurve:
    """One curve over `days` (its model-days of a track) only: its returns on them, chained
    from `cash`, and what those days traded and spent."""
    keep = curve.values.index.isin(pd.to_datetime(days["day"]))
    on_days = curve.values.pct_change()[keep]
    return replace(
        curve,
        values=_from_cash(on_days, curve.values.index, cash),
        trade_notional=_with_start(curve.trade_notional[keep], curve.values.index),
        trading_costs=_with_start(curve.trading_costs[keep], curve.values.index),
        trades=int(days["trades"].sum()),
        model_days=len(days),
        tokens=int(days["tokens_in"].sum() + days["tokens_out"].sum()),
        cost_usd=float(days["cost_usd"].sum()),
    )


def _start_of(first: pd.Timestamp, index: pd.Index) -> pd.Timestamp:
    """The point before `first` in `index` (the close its return is measured from)."""
    position = index.get_loc(first)
    return index[position - 1] if position > 0 else first - pd.Timedelta(days=1)


def _from_cash(returns: pd.Series, index: pd.Index, cash: float) -> pd.Series:
    """`cash` grown by `returns` day by day, starting the close before the first of them."""
    values = cash * (1 + returns.fillna(0.0)).cumprod()
    start = _start_of(returns.index[0], index)
    return pd.concat([pd.Series([cash], index=[start]), values])


def _with_start(series: pd.Series, index: pd.Index) -> pd.Series:
    """`series` with a 0 at the starting point, as the curves' amounts have."""
    start = _start_of(series.index[0], index)
    return pd.concat([pd.Series([0.0], index=[start]), series])


def _last_session(sessions: pd.Series) -> str | None:
    """The label most days' last session has (`10:00, …, 15:00` gives `15:00`); None if daily."""
    last = sessions.dropna().map(lambda labels: str(labels).split(", ")[-1])
    return None if last.empty else str(last.mode().iloc[0])


def _benchmark_curve(session: Session, run: Run, curves: RunCurves) -> pd.Series:
    """The benchmark on every day of the curves (a day without a close of its own, such as a
    holiday on which a book was registered, carries the last close before it), scaled to the
    initial cash on the first day."""
    lead_in = curves.start - BENCHMARK_LEAD_IN
    closes = benchmark_closes(session, run.benchmark, lead_in, curves.end, market=run.market)
    if closes.empty:
        return closes
    days = pd.DatetimeIndex(sorted({d for c in curves.curves for d in c.values.index}))
    aligned = closes.reindex(closes.index.union(days)).ffill()
    aligned = aligned[aligned.index >= pd.Timestamp(curves.start)].dropna()
    if aligned.empty:
        return aligned
    return (aligned * (run.initial_cash / aligned.iloc[0])).rename(run.benchmark)


def _curve(session: Session, run: Run, group: pd.DataFrame) -> ModelCurve:
    values = pd.Series(group["value"].to_numpy(), index=pd.to_datetime(group["day"]))
    notional = pd.Series(group["traded_notional"].to_numpy(), index=values.index)
    costs = pd.Series(group["trading_costs"].to_numpy(), index=values.index)
    start_point = starting_value(session, run, group["portfolio"].iloc[0], values.index[0])
    if start_point is not None:
        day, value = start_point
        values = pd.concat([pd.Series([value], index=[day]), values])
        notional = pd.concat([pd.Series([0.0], index=[day]), notional])
        costs = pd.concat([pd.Series([0.0], index=[day]), costs])
    return ModelCurve(
        model=str(group["model"].iloc[0]),
        trial=int(group["trial"].iloc[0]),
        values=values,
        trade_notional=notional,
        trading_costs=costs,
        trades=int(group["trades"].sum()),
        model_days=len(group),
        tokens=int(group["tokens_in"].sum() + group["tokens_out"].sum()),
        cost_usd=float(group["cost_usd"].sum()),
        live_sessions=int((group["track"] == Track.LIVE).sum()),
    )
