"""prefect.yaml's `docker` deployment run end to end by a real docker worker, on podman.

No Docker engine runs here: `podman system service` serves the Docker API on a unix socket, and
the prefect-docker worker (`prefect worker start --type docker`) on the host talks to it through
DOCKER_HOST. A REST trigger then runs the backtest flow in a container of the project image
(tests/test_container.py builds it) on the host network, so the flow run inside reaches the
Prefect server and the Postgres store on the host, which the test reads afterwards.

Skips without podman or prefect-docker, except under CI (env CI set), where they must be there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select

from models.engine import create_store_engine
from models.tables import ModelDay, Run
from tests.conftest import postgres_database, prefect_api, prefect_cli, wait_for
from tests.test_container import (  # and its fixtures, which the tests' parameters redefine
    BUILD_TIMEOUT_S,
    DEFAULT_MODELS,
    FINAL_STATES,
    Podman,
    base_image,  # noqa: F401
    image,  # noqa: F401
    missing,
    podman,  # noqa: F401
)
from tests.test_deployment_e2e import offline_config, stop

POOL = "aitrader-docker"
DATA_VOLUME = "aitrader-data"  # prefect.yaml's named volume for the container's SQLite store
CONFIG_IN_CONTAINER = "/etc/aitrader/backtest.yaml"


@pytest.fixture
def docker_host(podman: Podman) -> Iterator[str]:  # noqa: F811 (fixture)
    """`podman system service` on a fresh unix socket, with the containers.conf podman needs
    here; yields its DOCKER_HOST. A short directory: socket paths are limited to 107 bytes."""
    try:
        import prefect_docker  # noqa: F401
    except ImportError:
        missing("prefect-docker is not installed (pip install -e '.[dev]')")
    directory = Path(tempfile.mkdtemp(prefix="aitrader-podman-"))
    socket = directory / "podman.sock"
    log = (directory / "service.log").open("w")
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket}"],
        env=podman.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = httpx.Client(transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://podman")
    try:
        wait_for(lambda: api.get("/_ping").text == "OK", 60, "the podman API", service)
        yield f"unix://{socket}"
    finally:
        api.close()
        stop(service)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.xdist_group("podman")
@pytest.mark.timeout(BUILD_TIMEOUT_S)
@pytest.mark.postgres
def test_docker_deployment_runs_in_a_container_started_by_a_docker_worker(
    podman: Podman,  # noqa: F811
    docker_host: str,  # first: without prefect-docker, skip before building the image
    image: str,  # noqa: F811
    prefect_server: str,
    tmp_path: Path,
) -> None:
    # prefect.yaml names the volume; podman creates it on first use. Leave a machine as found.
    volume_existed = podman.run("volume", "exists", DATA_VOLUME, check=False).returncode == 0
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "DOCKER_HOST": docker_host,
    }

    # prefect.yaml's own commands: the pool (its base job template comes from prefect-docker),
    # then the deployment, which needs no Docker daemon (the image is built beforehand).
    prefect_cli("work-pool", "create", POOL, "--type", "docker", "--overwrite", env=env)
    prefect_cli("--no-prompt", "deploy", "--name", "docker", env=env)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", POOL, "--type", "docker"],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    image_env = json.loads(podman.run("image", "inspect", image).stdout)[0]["Config"]["Env"]
    image_home = next(v.split("=", 1)[1] for v in image_env if v.startswith("PREFECT_HOME="))
    config = offline_config(tmp_path / "backtest.yaml")
    config.chmod(0o644)  # read in the container by its unprivileged user
    api = prefect_api(prefect_server)
    try:
        with postgres_database(f"aitrader_docker_pool_{os.getpid()}") as store:
            deployment = api.get("/deployments/name/backtest/docker").json()
            variables = deployment["job_variables"]
            assert variables["image_pull_policy"] == "Never" and not variables["auto_remove"]
            body = {
                "parameters": {
                    "start": "2025-01-06",
                    "end": "2025-01-07",
                    "config": CONFIG_IN_CONTAINER,
                },
                # Per run, over the deployment's: the image the test built (prefect.yaml names
                # aitrader:latest), the store on the host (reached through the host network,
                # as is the server), and the config file mounted beside the data volume. The
                # worker hands the container every Prefect setting set in its own environment,
                # this test's PREFECT_HOME and quiet logging too: the image's home instead, and
                # INFO logs, which the worker streams (stream_output) into its own output.
                "job_variables": {
                    "image": image,
                    "network_mode": "host",
                    "env": {
                        **variables.get("env", {}),
                        "DATABASE_URL": store,
                        "PREFECT_HOME": image_home,
                        "PREFECT_LOGGING_LEVEL": "INFO",
                    },
                    "volumes": [*variables["volumes"], f"{config}:{CONFIG_IN_CONTAINER}:ro"],
                },
            }
            created = api.post(f"/deployments/{deployment['id']}/create_flow_run", json=body)
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]

            def flow_run() -> dict:
                return api.get(f"/flow_runs/{run_id}").json()

            wait_for(
                lambda: flow_run()["state"]["type"] in FINAL_STATES, 600, "the flow run", worker
            )
            finished = flow_run()
            assert finished["state"]["type"] == "COMPLETED", finished["state"]
            # The worker started it as a container through the podman socket ("<base url>:<id>").
            assert finished["work_pool_name"] == POOL
            container = finished["infrastructure_pid"].rsplit(":", 1)[1]
            assert finished["infrastructure_pid"].startswith("http+docker://")

            # Kept after exit (auto_remove: false) so the worker could read how it exited. Looked
            # at before the cleanup below: removing the data volume removes its containers too.
            def container_state() -> dict:
                return json.loads(podman.run("container", "inspect", container).stdout)[0]["State"]

            wait_for(lambda: container_state()["Status"] == "exited", 60, "the container's exit")
            assert container_state()["ExitCode"] == 0
            podman.run("container", "rm", container)

            engine = create_store_engine(store)
            with Session(engine) as session:
                (run,) = session.exec(select(Run)).all()
                days = session.exec(select(ModelDay)).all()
            engine.dispose()
    finally:
        stop(worker)
        log.close()
        api.close()
        if not volume_existed:
            podman.run("volume", "rm", "--force", DATA_VOLUME, check=False)

    assert run.flow_run_id == run_id and run.status == "completed"
    assert run.config["name"] == "e2e"  # the mounted config, not the image's default
    assert {d.status for d in days} == {"completed"}
    assert sorted((d.model, d.day) for d in days) == [
        (model, date(2025, 1, day)) for model in DEFAULT_MODELS for day in (6, 7)
    ]
    # The flow run's own log lines, streamed from the container's output by the worker.
    streamed = (tmp_path / "worker.log").read_text()
    assert "Finished in state Completed()" in streamed
    assert "Failed to create the Prefect home directory" not in streamed
