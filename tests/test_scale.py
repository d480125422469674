"""At scale: the Prefect server and the store on PostgreSQL, two workers sharing one work pool.

The commands are docs/scaling.md's: `aitrader server --database-url`, `prefect work-pool create`,
`prefect deploy` from `prefect.yaml`, and `prefect worker start` twice.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, select

from models.engine import create_store_engine
from models.tables import ModelDay, Run
from tests.conftest import (
    ROOT,
    postgres_database,
    prefect_api,
    prefect_cli,
    run_command,
    running_prefect_server,
    wait_for,
)
from tests.test_deployment_e2e import FINAL, offline_config, stop

POOL = "aitrader-pool"
PREFECT = str(Path(sys.executable).with_name("prefect"))

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def prefect_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with postgres_database(f"aitrader_prefect_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
def postgres_prefect_server(
    prefect_database: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`aitrader server` on PostgreSQL; a plain postgresql:// URL gets the asyncpg driver."""
    plain = make_url(prefect_database).set(drivername="postgresql")
    home = tmp_path_factory.mktemp("prefect-on-postgres")
    with running_prefect_server(
        home, "--database-url", plain.render_as_string(hide_password=False)
    ) as url:
        yield url


def executed_by(log: Path) -> set[str]:
    """The flow runs this worker started (a run another worker got first is aborted here)."""
    lines = log.read_text()
    submitted = set(re.findall(r"submitting flow run '([0-9a-f-]+)'", lines))
    aborted = set(re.findall(r"Aborted submission of flow run '([0-9a-f-]+)'", lines))
    return submitted - aborted


def test_two_workers_run_overlapping_runs_and_no_day_twice(
    postgres_prefect_server: str, prefect_database: str, tmp_path: Path
) -> None:
    with postgres_database(f"aitrader_scale_{os.getpid()}") as store:
        env = {
            **os.environ,
            "PREFECT_API_URL": postgres_prefect_server,
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "DATABASE_URL": store,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_LOGGING_LEVEL": "INFO",  # the workers log which runs they start
        }
        prefect_cli("work-pool", "create", POOL, "--type", "process", env=env)
        prefect_cli("--no-prompt", "deploy", "--name", "manual", "--name", "daily", env=env)
        assert_serve_refuses_the_pool_deployments(postgres_prefect_server, env)

        logs = {name: tmp_path / f"{name}.log" for name in ("worker-a", "worker-b")}
        workers = [
            subprocess.Popen(
                # One run at a time each: two overlapping runs need both workers.
                [PREFECT, "worker", "start", "--pool", POOL, "--name", name, "--limit", "1"],
                env=env,
                cwd=ROOT,
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            for name, log in logs.items()
        ]
        api = prefect_api(postgres_prefect_server)
        try:
            config = str(offline_config(tmp_path / "c.yaml"))
            # Nine trading days: each run takes several seconds, so both are under way at once.
            parameters = {"config": config, "start": "2025-01-02", "end": "2025-01-15"}
            run_ids = []
            for deployment in ("manual", "daily"):  # each deployment allows one run at a time
                found = api.get(f"/deployments/name/backtest/{deployment}")
                assert found.status_code == 200, found.text
                created = api.post(
                    f"/deployments/{found.json()['id']}/create_flow_run",
                    json={"parameters": parameters},
                )
                assert created.status_code == 201, created.text
                run_ids.append(created.json()["id"])

            def all_final() -> bool:
                return all(
                    api.get(f"/flow_runs/{r}").json()["state"]["type"] in FINAL for r in run_ids
                )

            wait_for(all_final, 420, "both flow runs to finish", workers[0])
            runs = [api.get(f"/flow_runs/{r}").json() for r in run_ids]
        finally:
            for worker in workers:
                stop(worker)

        assert [r["state"]["name"] for r in runs] == ["Completed", "Completed"], runs
        first, second = sorted(runs, key=lambda r: r["start_time"])
        assert second["start_time"] < first["end_time"], "the two runs did not overlap"
        assert {frozenset(executed_by(log)) for log in logs.values()} == {
            frozenset([run_ids[0]]),
            frozenset([run_ids[1]]),
        }

        engine = create_store_engine(store)
        with Session(engine) as session:
            days = session.exec(select(ModelDay)).all()
            # 9 trading days (2025-01-09 was a market holiday) x 3 models, each claimed and
            # simulated once, by one of the runs.
            assert len(days) == 27
            assert {(d.status, d.attempts) for d in days} == {("completed", 1)}
            system_prompts = text(
                "SELECT model_day_id FROM message WHERE role = 'system' "
                "GROUP BY model_day_id HAVING COUNT(*) > 1"
            )
            assert session.exec(system_prompts).all() == []
            stored = session.exec(select(Run.flow_run_id, Run.status)).all()
            assert sorted(stored) == sorted((r, "completed") for r in run_ids)
        engine.dispose()

    # The server kept its flow runs in PostgreSQL, not in a SQLite file.
    server_db = create_engine(prefect_database)
    with server_db.connect() as connection:
        ids = connection.execute(
            text("SELECT CAST(id AS text) FROM flow_run WHERE parent_task_run_id IS NULL")
        ).scalars()
        assert set(run_ids) <= set(ids)
    server_db.dispose()
    assert not list((tmp_path / "prefect-home").glob("*.db"))


def assert_serve_refuses_the_pool_deployments(api_url: str, env: dict[str, str]) -> None:
    """`aitrader serve` beside the same names deployed to a pool: refused, the pool untouched."""
    api = prefect_api(api_url)
    before = api.get("/deployments/name/backtest/daily").json()
    refused = run_command(
        [sys.executable, "-m", "deployments", "serve", "--paused-schedule"], env, timeout=120
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    (line,) = [x for x in refused.stderr.splitlines() if x.startswith("error:")]
    assert "backtest/manual (work pool aitrader-pool)" in line and "deployed to a work pool" in line
    after = api.get("/deployments/name/backtest/daily").json()
    assert after["work_pool_name"] == POOL and after["id"] == before["id"]
    assert [s["active"] for s in after["schedules"]] == [s["active"] for s in before["schedules"]]
