"""Runs in the store: created when simulating starts, updated as it goes, closed at the end."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from models.errors import ResultsError
from models.liveness import DEFAULT_LEASE_S, keep_alive, process_gone
from models.tables import Run, RunCreate, RunStatus, utcnow


def start_run(engine: Engine, run: RunCreate, holder: str | None = None) -> Run:
    """Store a new run as running, started now by `holder` (see `models.liveness`)."""
    now = utcnow()
    started = {
        "status": RunStatus.RUNNING,
        "started_at": now,
        "holder": holder,
        "heartbeat_at": now,
    }
    row = Run.model_validate(run, update=started)
    with Session(engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    return row


def report_progress(engine: Engine, run_id: int, message: str) -> None:
    """Set the run's status message (the CLI and `results runs` show it while it runs)."""
    _update(engine, run_id, message=message)


def finish_run(engine: Engine, run_id: int, status: RunStatus, message: str) -> None:
    """Close the run with its final status and summary."""
    _update(engine, run_id, status=status, message=message, finished_at=utcnow())


def _update(engine: Engine, run_id: int, **values: object) -> None:
    with Session(engine) as session:
        run = session.get(Run, run_id)
        if run is None:
            raise ResultsError(f"no run with id {run_id}")
        run.sqlmodel_update(values)
        session.add(run)
        session.commit()


def renew_run(engine: Engine, run_id: int, holder: str) -> bool:
    """Show that the run's holder is alive; False once the run is no longer its to renew."""
    with Session(engine) as session:
        renewed = session.execute(
            update(Run)
            .where(Run.id == run_id, Run.holder == holder, Run.status == RunStatus.RUNNING)
            .values(heartbeat_at=utcnow())
        )
        session.commit()
    return renewed.rowcount == 1


async def keep_run_alive(engine: Engine, run_id: int, holder: str, lease_seconds: float) -> None:
    """Renew the run's heartbeat until cancelled."""
    await keep_alive(lambda: renew_run(engine, run_id, holder), lease_seconds)


def mark_crashed_runs(engine: Engine) -> list[int]:
    """Mark `crashed` every running run whose holder died or stopped renewing; their ids.

    Whoever looks next does this (a new backtest, `results runs`): a killed process cannot.
    """
    now = utcnow()
    crashed = []
    with Session(engine) as session:
        for run in session.exec(select(Run).where(Run.status == RunStatus.RUNNING)):
            lease = (run.config.get("agent") or {}).get("lease_seconds", DEFAULT_LEASE_S)
            last_sign = run.heartbeat_at or run.started_at or run.created_at
            if process_gone(run.holder):
                reason = f"its process ({run.holder}) ended without finishing it"
            elif last_sign < now - timedelta(seconds=lease):
                reason = f"no sign of life since {last_sign:%Y-%m-%d %H:%M:%S} UTC"
            else:
                continue
            run.status = RunStatus.CRASHED
            run.message = f"crashed: {reason}" + (
                f"; last progress {run.message}" if run.message else ""
            )
            run.finished_at = now
            session.add(run)
            crashed.append(run.id)
        session.commit()
    return crashed


def flow_run_of_holder(engine: Engine, holder: str) -> str | None:
    """The Prefect flow run of the run `holder` runs, if it has one."""
    with Session(engine) as session:
        return session.exec(select(Run.flow_run_id).where(Run.holder == holder)).first()
