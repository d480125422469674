"""The Python API for notebooks and scripts: run a backtest, get pandas DataFrames back."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlmodel import Session, select

from analysis.leaderboard import Ranking, RankingOptions, rank_run
from analysis.report import Report, leaderboard_table
from flows.parameters import BacktestParameters
from models.engine import get_engine
from models.errors import BacktestError
from models.results import get_run, model_days_frame, run_scope
from models.tables import ModelDay, Run, Track, Trade

if TYPE_CHECKING:
    from flows.preflight import ResolvedTrigger


@dataclass
class BacktestResult:
    """A finished backtest: its state and its results as DataFrames."""

    state: str
    message: str
    run_id: int | None
    daily_values: pd.DataFrame
    trades: pd.DataFrame
    metrics: pd.DataFrame
    report: Report | None = None  # rendered by the flow; None if nothing completed


def run_backtest(
    start: date | str | None = None,
    end: date | str | None = None,
    models: list[str] | None = None,
    config: str | None = None,
    replay: bool = False,
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    trials: int | None = None,
    refresh: bool = False,
) -> BacktestResult:
    """Run the backtest flow (catch-up without dates) in a script or in Jupyter; its results.

    The arguments are BacktestParameters' (days may be ISO strings); bad ones raise PlanError.
    """
    params = BacktestParameters.of_call(locals())
    from flows.preflight import preflight

    return run_resolved_backtest(preflight(params))  # refused before Prefect starts if bad


def run_resolved_backtest(trigger: ResolvedTrigger) -> BacktestResult:
    """Run the backtest flow on a trigger the preflight resolved; its results."""
    from deployments.ephemeral_server import start_temporary_server
    from deployments.prefect_settings import apply_local_defaults

    apply_local_defaults()
    server = start_temporary_server()  # when none is configured; it starts as the flow loads
    from flows.backtest import run_resolved

    if server is not None:
        # While the server starts on the other core, this one loads the agent loop (LangChain,
        # MCP: seconds) and provides the market, which the flow would do after the wait.
        import agents.session  # noqa: F401

        _provide_market(trigger)
        server.wait_until_ready()
    rendered: dict[int, Report] = {}
    state = _run_coroutine(run_resolved(trigger, rendered))
    run_id = run_of_flow_run(state.state_details.flow_run_id)
    if state.is_failed() and run_id is None:
        raise BacktestError(state.message or "the backtest failed")
    report = rendered.get(run_id) if run_id is not None else None
    if report is not None:  # ranked as the flow rendered it: not ranked again
        with Session(get_engine()) as session:
            frames = _frames(session, run_id, report.ranking)
    else:
        frames = results_frames(run_id) if run_id is not None else _empty_frames()
    return BacktestResult(state.name, state.message or "", run_id, *frames, report)


def _provide_market(trigger: ResolvedTrigger) -> None:
    """The config's market in the store, unless the preflight found it there or a refresh will
    fetch it; the flow's own provision then finds it stored."""
    if trigger.plan is None and not trigger.params.refresh:
        from market_data.provision import ensure_market

        with Session(get_engine()) as session:
            ensure_market(session, trigger.config)


def run_of_flow_run(flow_run_id: Any) -> int | None:
    """The store's run created by a flow run (the store, not Prefect, holds the results)."""
    if flow_run_id is None:
        return None
    with Session(get_engine()) as session:
        query = select(Run.id).where(Run.flow_run_id == str(flow_run_id))
        return session.exec(query).first()


def results_frames(
    run_id: int | None = None, track: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A run's daily values, trades and metrics (the newest run when `run_id` is None; metrics
    over only its `live` or `backtest` sessions with `track`)."""
    chosen = Track(track) if track not in (None, "all") else None
    with Session(get_engine()) as session:
        run = get_run(session, run_id)
        try:
            ranking = rank_run(session, run.id, track=chosen)
        except LookupError:
            ranking = None
        return _frames(session, run.id, ranking)


def _frames(
    session: Session, run_id: int, ranking: Ranking | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A run's daily values, trades and the metrics of `ranking` (none: nothing completed)."""
    daily = model_days_frame(session, run_id)
    query = (
        select(
            ModelDay.model,
            ModelDay.day,
            Trade.seq,
            Trade.side,
            Trade.symbol,
            Trade.shares,
            Trade.price,
            Trade.cash_after,
        )
        .join(Trade, Trade.model_day_id == ModelDay.id)
        .where(*run_scope(session, run_id))
        .order_by(ModelDay.model, ModelDay.day, Trade.seq)
    )
    columns = ["model", "day", "seq", "side", "symbol", "shares", "price", "cash_after"]
    trades = pd.DataFrame(session.exec(query).all(), columns=columns)
    metrics = pd.DataFrame(leaderboard_table(ranking.rows) if ranking is not None else [])
    return daily, trades, metrics


def pairs_frame(run_id: int | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Which models of a run can be told apart: each pair's Holm-adjusted p-value (newest run
    when `run_id` is None)."""
    with Session(get_engine()) as session:
        run = get_run(session, run_id)
        ranking = rank_run(session, run.id, options=RankingOptions(confidence=confidence))
    return pd.DataFrame([pair.model_dump() for pair in ranking.pairs])


def robustness_frame(
    run_id: int | None = None, window: int = 20, min_sessions: int = 20
) -> pd.DataFrame:
    """How often each model of a run ranks first or in tier 1 over rolling windows of `window`
    sessions, and its deflated Sharpe (newest run when `run_id` is None)."""
    from analysis.curves import run_curves
    from analysis.robustness import RobustnessOptions, robustness, robustness_rows

    options = RobustnessOptions(window=window, min_sessions=min_sessions)
    with Session(get_engine()) as session:
        result = robustness(run_curves(session, get_run(session, run_id).id), options)
    return pd.DataFrame(robustness_rows(result))


def _empty_frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return pd.DataFrame(), pd.DataFrame(), pd.DataFrame()


def _run_coroutine(coroutine: Any) -> Any:
    """Run a coroutine to completion, in a worker thread when this thread's loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # handed back to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="aitrader-backtest")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
