"""Outcomes that mean what they say: a run's final status, the CLI's exit code, and runs that
stopped without finishing marked crashed by whoever looks next."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest
import yaml
from sqlalchemy import update
from sqlmodel import Session

from flows.backtest import run_status
from models.engine import create_store_engine
from models.liveness import holder_name, this_process
from models.runs import mark_crashed_runs, renew_run, start_run
from models.tables import Run, RunCreate, RunStatus, utcnow
from tests.conftest import free_port, run_command


@pytest.mark.parametrize(
    ("failed", "status"),
    [
        ({}, RunStatus.COMPLETED),
        ({"b": "2025-01-03"}, RunStatus.PARTIAL),
        ({"a": "2025-01-06", "b": "2025-01-02"}, RunStatus.FAILED),  # failed on different days
        ({"a": "2025-01-02", "b": "2025-01-02", "c": "2025-01-02"}, RunStatus.FAILED),
    ],
)
def test_a_run_failed_only_when_every_model_failed(failed: dict, status: RunStatus) -> None:
    models = ["a", "b"] if len(failed) < 3 else ["a", "b", "c"]
    assert run_status(failed, models) == status


def _dead_holder() -> str:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = this_process().split(":")[0]
    return f"{host}:{int(done.stdout)}/run-killed"


def test_runs_whose_holder_died_or_went_quiet_are_marked_crashed(store_url: str) -> None:
    engine = create_store_engine(store_url)
    killed = start_run(engine, RunCreate(name="killed"), _dead_holder())
    quiet = start_run(engine, RunCreate(name="quiet", config={"agent": {"lease_seconds": 30}}))
    alive = start_run(engine, RunCreate(name="alive"), holder_name("run-alive"))
    with Session(engine) as session:  # `quiet` last renewed 31 s ago, beyond its 30 s lease
        session.execute(
            update(Run)
            .where(Run.id == quiet.id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=31), message="12/60 days")
        )
        session.commit()

    assert sorted(mark_crashed_runs(engine)) == sorted([killed.id, quiet.id])
    assert mark_crashed_runs(engine) == []  # marked once
    with Session(engine) as session:
        statuses = {run.name: run for run in session.exec(Run.__table__.select()).all()}
    assert statuses["killed"].status == RunStatus.CRASHED
    assert "ended without finishing" in statuses["killed"].message
    assert statuses["quiet"].status == RunStatus.CRASHED
    assert "12/60 days" in statuses["quiet"].message  # how far it got is kept
    assert statuses["alive"].status == RunStatus.RUNNING
    assert renew_run(engine, alive.id, holder_name("run-alive"))
    assert not renew_run(engine, killed.id, _dead_holder())  # a crashed run is nobody's
    engine.dispose()


@pytest.mark.slow
def test_a_run_whose_every_model_failed_exits_1_with_the_reason(prefect_server, tmp_path) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: every call fails
    config = tmp_path / "failing.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "failing",
                "universe": ["AAPL", "MSFT"],
                "market": {"source": "synthetic", "seed": 5},
                # No outage window: an endpoint down for good fails its days at once here.
                "agent": {"retries": 0, "max_steps": 3, "outage_window_s": 0},
                "models": [
                    {
                        "name": f"llm-{n}",
                        "basemodel": "m",
                        "base_url": unreachable,
                        "api_key_env": "FAILING_KEY",
                        "max_retries": 0,
                        "timeout_s": 2,
                    }
                    for n in (1, 2)
                ],
            }
        )
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "FAILING_KEY": "sk-test",
    }
    done = run_command(
        [
            sys.executable,
            "-m",
            "deployments",
            "backtest",
            "-c",
            str(config),
            "--start",
            "2025-01-02",
            "--end",
            "2025-01-03",
            "--reports",
            str(tmp_path / "r"),
        ],
        env,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    errors = done.stderr.strip().splitlines()
    assert errors[-1].startswith("error:") and "failed: llm-1" in errors[-1]
    assert "Failed:" in done.stdout and "no leaderboard" in done.stdout
    # In this process: the console is made at each use, so nothing is fixed at import.
    from typer.testing import CliRunner

    from deployments.cli import app
    from models.engine import dispose_engines

    table_env = {"DATABASE_URL": env["DATABASE_URL"], "COLUMNS": "200"}
    runs = CliRunner().invoke(app, ["results", "runs"], env=table_env)
    dispose_engines()
    assert any("failing" in line and "failed" in line for line in runs.stdout.splitlines())
