"""Runs in the store: created when simulating starts, updated as it goes, closed at the end."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.errors import ResultsError
from models.tables import Run, RunCreate, RunStatus, utcnow


def start_run(engine: Engine, run: RunCreate) -> Run:
    """Store a new run as running, started now."""
    row = Run.model_validate(run, update={"status": RunStatus.RUNNING, "started_at": utcnow()})
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
