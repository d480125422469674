"""`aitrader backtest`: the flow in a worker thread, a progress bar read from the store."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from analysis.leaderboard import leaderboard_rows
from analysis.report import Report, render_report, write_report
from configs.loader import MarketConfig
from deployments.api import BacktestResult, run_resolved_backtest
from deployments.cli_options import announce_store
from deployments.output import OutputFormat, console, leaderboard_columns, render
from flows.preflight import ResolvedTrigger
from market_data.calendar import calendar
from models.engine import get_engine
from models.errors import BacktestError
from models.results import run_scope
from models.tables import ModelDay, ModelDayStatus, Run

FINISHED = [
    ModelDayStatus.COMPLETED,
    ModelDayStatus.FAILED,
    ModelDayStatus.SKIPPED,
    ModelDayStatus.PARTIAL,
]


class OneLinePerDay(logging.Filter):
    """A backtest's log down to its own lines (one per day) and every warning: no INFO line per
    model-day task or per day subflow (`--verbose` keeps them)."""

    def __init__(self) -> None:
        super().__init__()
        self.linked = False

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if record.name.startswith("prefect.task_runs"):
            return False
        if record.name == "prefect.engine" and "View at" in record.getMessage():
            first, self.linked = not self.linked, True
            return first  # the backtest's own link to the UI, not one per day subflow
        return not str(getattr(record, "flow_run_name", "")).startswith("day-")


def quiet_logs() -> None:
    """Filter Prefect's run loggers; on the loggers, since Prefect re-creates its handlers."""
    for name in ("prefect.task_runs", "prefect.flow_runs", "prefect.engine"):
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, OneLinePerDay)]:
            logger.removeFilter(old)
        logger.addFilter(OneLinePerDay())


def run_with_progress(
    trigger: ResolvedTrigger, reports: Path, verbose: bool = False
) -> BacktestResult:
    """Run a backtest, show its progress, print its leaderboard and write its report files."""
    announce_store()
    if not verbose:
        quiet_logs()
    engine = get_engine()
    with Session(engine) as session:
        newest_before = session.exec(select(func.max(Run.id))).one() or 0
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = run_resolved_backtest(trigger)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="aitrader-backtest", daemon=True)
    worker.start()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console(), transient=True) as progress:
        bar = progress.add_task("starting Prefect", total=None)
        while worker.is_alive():
            worker.join(timeout=0.5)
            done, total, label = _progress(engine, newest_before)
            if total:
                progress.update(bar, completed=done, total=total, description=label)
    if "error" in outcome:
        raise outcome["error"]
    result: BacktestResult = outcome["result"]
    console().print(f"[bold]{result.state}[/bold]: {result.message}")
    if result.run_id is not None:
        _print_and_write(engine, result.run_id, reports, result.report)
    if result.state == "Failed":  # every model failed: the exit code says so (1, one error line)
        raise BacktestError(result.message or "the backtest failed")
    return result


def _progress(engine: Engine, newest_before: int) -> tuple[int, int, str]:
    """Model-days finished and planned of the run this backtest created, if it exists yet."""
    with Session(engine) as session:
        run = session.exec(select(Run).where(Run.id > newest_before).order_by(Run.id)).first()
        if run is None or run.start_date is None:
            return 0, 0, ""
        days = session.exec(
            select(ModelDay.day, ModelDay.status).where(*run_scope(session, run.id))
        ).all()
    finished = sum(status in FINISHED for _, status in days)
    total = max(len(days), planned_model_days(run), finished)
    return finished, total, f"run {run.id}: model-days"


def planned_model_days(run: Run) -> int:
    """A run's model-days: its market's sessions from its first to its last day (every day for
    crypto; an hourly market's day is one model-day), for every model and trial."""
    market = MarketConfig.model_validate(run.config.get("market", {})).definition
    sessions = calendar(market.calendar).trading_days(run.start_date, run.end_date)
    return len(sessions) * len(run.models) * run.trials


def _print_and_write(
    engine: Engine, run_id: int, reports: Path, report: Report | None = None
) -> None:
    """Print a finished run's leaderboard and write its report files under `reports` (its
    report as the flow rendered it, else rendered here)."""
    if report is None:
        with Session(engine) as session:
            try:
                report = render_report(session, run_id)
            except LookupError:
                console().print("[yellow]no completed model-day: no leaderboard")
                return
    rows = leaderboard_rows(report.ranking.rows)
    render(rows, OutputFormat.table, report.title, fit=leaderboard_columns(rows))
    files = write_report(report, reports / f"run-{run_id}")
    console().print(f"report: {', '.join(map(str, files))}")
