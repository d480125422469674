"""End to end over REST: a real Prefect server, the served deployments, triggers and artifacts.

The REST calls are docs/deployments.md's ("Over REST"); the crash and overlap runs are those
docs/backtests.md describes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlmodel import Session, select

from models.engine import create_store_engine
from models.tables import ModelDay, Run
from tests.conftest import ROOT, prefect_api, run_command, wait_for

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def offline_config(path: Path, **agent) -> Path:
    config = {
        "name": "e2e",
        "universe": "megacaps",
        "start_date": "2025-01-02",
        "end_date": "2025-01-31",
        "market": {"source": "synthetic", "seed": 11, "start": "2024-11-01", "end": "2025-02-28"},
        "agent": {"max_concurrent_models": 3, **agent},
        "models": [
            {"name": "equal-weight", "strategy": "equal-weight"},
            {"name": "momentum", "strategy": "momentum", "params": {"top_k": 3, "lookback": 10}},
            {"name": "random", "strategy": "random", "params": {"seed": 5}},
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def aitrader(*args: str, env: dict[str, str], **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "deployments", *args],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        **popen,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def served_deployments(api_url: str, store: str, home: Path, **settings: str) -> Iterator[None]:
    """`aitrader serve` of both deployments on the offline config, until the block ends.

    `settings` join the serving process's environment (e.g. `PREFECT_API_AUTH_STRING`).
    """
    env = {
        **os.environ,
        "PREFECT_API_URL": api_url,
        "DATABASE_URL": store,
        "PREFECT_RUNNER_POLL_FREQUENCY": "1",
        "PREFECT_HOME": str(home / "prefect-home"),
        **settings,
    }
    config = offline_config(home / "offline.yaml")
    log = (home / "serve.log").open("w")
    served = aitrader(
        "serve",
        "--config",
        str(config),
        "--paused-schedule",
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    auth = (
        tuple(settings["PREFECT_API_AUTH_STRING"].split(":", 1))
        if ("PREFECT_API_AUTH_STRING" in settings)
        else None
    )
    try:
        with prefect_api(api_url, auth=auth) as api:
            wait_for(
                lambda: api.get("/deployments/name/backtest/manual").status_code == 200,
                120,
                "the served deployments",
                served,
            )
        yield
    finally:
        stop(served)
        log.close()


def test_served_deployment_runs_from_a_rest_trigger(prefect_server: str, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    api = prefect_api(prefect_server)
    with served_deployments(prefect_server, store, tmp_path):
        deployment = api.get("/deployments/name/backtest/manual").json()
        daily = api.get("/deployments/name/backtest/daily").json()
        (schedule,) = daily["schedules"]
        assert schedule["schedule"]["cron"] == "35 9 * * 1-5"
        assert schedule["schedule"]["timezone"] == "America/New_York"
        assert deployment["concurrency_limit"] == 1 or deployment.get("global_concurrency_limit")

        body = {
            "parameters": {"start": "2025-01-06", "end": "2025-01-17"},
            "idempotency_key": "e2e-trigger-1",
            "tags": ["e2e"],
        }
        created = api.post(f"/deployments/{deployment['id']}/create_flow_run", json=body)
        assert created.status_code == 201, created.text
        again = api.post(f"/deployments/{deployment['id']}/create_flow_run", json=body)
        assert again.status_code == 200 and again.json()["id"] == created.json()["id"]
        run_id = created.json()["id"]

        def finished() -> bool:
            return api.get(f"/flow_runs/{run_id}").json()["state"]["type"] in FINAL

        wait_for(finished, 240, "the flow run to finish")
        state = api.get(f"/flow_runs/{run_id}").json()["state"]
        assert state["type"] == "COMPLETED" and state["name"] == "Completed", state

        found = api.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [run_id]}}, "sort": "CREATED_DESC"},
        ).json()
        by_key = {a["key"]: a for a in found if a["key"]}
        board = json.loads(by_key["leaderboard"]["data"])
        assert [row["model"] for row in board][-1] == "QQQ" and len(board) == 4
        latest = api.get("/artifacts/leaderboard/latest").json()
        assert json.loads(latest["data"]) == board
        children = {"flow_runs": {"parent_flow_run_id": {"any_": [run_id]}}}
        subflows = api.post("/flow_runs/filter", json={**children, "sort": "START_TIME_ASC"}).json()
        assert [s["name"] for s in subflows][:2] == ["day-2025-01-06", "day-2025-01-07"]
        assert len(subflows) == 9 and all(s["state"]["type"] == "COMPLETED" for s in subflows)
    engine = create_store_engine(store)
    with Session(engine) as session:
        run = session.exec(select(Run)).one()
        assert run.flow_run_id == run_id and run.status == "completed"
        assert len(session.exec(select(ModelDay)).all()) == 27  # 9 trading days x 3
    engine.dispose()
    # Served runs write no report files themselves; any of them can be rendered afterwards.
    home = tmp_path / "home"
    reported = run_command(
        [sys.executable, "-m", "deployments", "results", "report", "--run", str(run.id)],
        {**os.environ, "DATABASE_URL": store, "AITRADER_HOME": str(home)},
    )
    assert reported.returncode == 0, reported.stdout + reported.stderr
    (folder,) = (home / "reports").iterdir()  # one folder for this store
    assert (folder / f"run-{run.id}" / "equity.png").read_bytes().startswith(b"\x89PNG")
    assert "| rank | model |" in (folder / f"run-{run.id}" / "report.md").read_text()


def books(store: str) -> dict[tuple[str, str], tuple[float, float]]:
    """Every completed model-day's end-of-day cash and value, by model and day."""
    engine = create_store_engine(store)
    with Session(engine) as session:
        rows = session.exec(select(ModelDay).where(ModelDay.status == "completed")).all()
        result = {
            (d.model, str(d.day)): (round(d.cash_end, 6), round(d.value_end, 6)) for d in rows
        }
    engine.dispose()
    return result


def backtest_env(prefect_server: str, store: str, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "DATABASE_URL": store,
        "PREFECT_HOME": str(home),
    }


def start_backtest(arguments: tuple[str, ...], server: str, store: str, home: Path):
    """`aitrader backtest ...` in its own process, against `server` and `store`."""
    home.mkdir(parents=True, exist_ok=True)
    return aitrader(
        *arguments,
        env=backtest_env(server, store, home),
        stdout=(home / "out.log").open("w"),
        stderr=subprocess.STDOUT,
    )


def january_backtest(config: Path) -> tuple[str, ...]:
    return ("backtest", "--config", str(config), "--start", "2025-01-02", "--end", "2025-01-31")


@pytest.fixture(scope="session")
def january_books(prefect_server: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The books of the offline config's January backtest run alone, for interrupted and
    overlapping runs of it to match (a day's book does not depend on timeouts or leases)."""
    folder = tmp_path_factory.mktemp("january")
    arguments = january_backtest(offline_config(folder / "c.yaml"))
    store = f"sqlite:///{folder / 'reference.db'}"
    assert start_backtest(arguments, prefect_server, store, folder / "h1").wait(timeout=300) == 0
    return books(store)


def completed_days(store: str) -> int:
    engine = create_store_engine(store)
    with Session(engine) as session:
        count = len(session.exec(select(ModelDay).where(ModelDay.status == "completed")).all())
    engine.dispose()
    return count


@pytest.mark.xdist_group("january-backtest")
def test_resume_after_a_crash_gives_the_same_books(
    prefect_server: str, january_books: dict, tmp_path: Path
) -> None:
    config = offline_config(tmp_path / "c.yaml", day_timeout_s=2, lease_seconds=3)
    arguments = january_backtest(config)

    crashed = f"sqlite:///{tmp_path / 'crashed.db'}"
    victim = start_backtest(arguments, prefect_server, crashed, tmp_path / "h2")
    wait_for(lambda: completed_days(crashed) >= 20, 240, "some model-days", victim)
    os.killpg(victim.pid, signal.SIGKILL)  # the process dies mid-run, no cleanup
    victim.wait()
    interrupted = completed_days(crashed)
    assert 20 <= interrupted < 60
    time.sleep(3.5)  # the dead run's claims lapse
    resumed = start_backtest(arguments, prefect_server, crashed, tmp_path / "h2")
    assert resumed.wait(timeout=300) == 0
    assert books(crashed) == january_books
    engine = create_store_engine(crashed)
    with Session(engine) as session:
        days = session.exec(select(ModelDay)).all()
        assert len(days) == 60 and {d.status for d in days} == {"completed"}


@pytest.mark.xdist_group("january-backtest")
def test_overlapping_triggers_never_simulate_a_day_twice(
    prefect_server: str, january_books: dict, tmp_path: Path
) -> None:
    config = offline_config(tmp_path / "c.yaml")
    arguments = january_backtest(config)

    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = (
        start_backtest(arguments, prefect_server, shared, tmp_path / f"o{i}") for i in (1, 2)
    )
    # The later run waits for days the other holds, then takes them as done: both complete.
    assert [first.wait(timeout=300), second.wait(timeout=300)] == [0, 0]

    engine = create_store_engine(shared)
    with Session(engine) as session:
        # One system prompt per model-day: no day had two sessions.
        twice = text(
            "SELECT model_day_id, COUNT(*) FROM message WHERE role = 'system' "
            "GROUP BY model_day_id HAVING COUNT(*) > 1"
        )
        per_day = session.exec(twice).all()
        assert per_day == []
        days = session.exec(select(ModelDay)).all()
        assert len(days) == 60 and {(d.status, d.attempts) for d in days} == {("completed", 1)}
    assert books(shared) == january_books
