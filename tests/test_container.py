"""The container image, built and run with podman; the compose file and the docker deployment.

The commands are docs/containers.md's.

No registry image can be pulled where CI runs, so the image is built on a local base: a Debian
bookworm root made by debootstrap (python3, python3-venv, ca-certificates), imported with
`podman import`. Both the debootstrap tarball (in ~/.cache/aitrader) and the imported base image
(in podman's storage) are reused by later runs. Containers share the host's network, so a backtest
inside one writes to a Postgres database on the host, which the test then reads from outside.

Without podman the container tests skip, except under CI (env CI set), where they fail: CI
installs podman (.ci/run) and must not pass without having built the image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml
from sqlalchemy import text
from sqlmodel import Session, select

from models.engine import create_store_engine
from models.tables import ModelDay, Run
from tests.conftest import ROOT, free_port, postgres_database, prefect_api, wait_for

IMAGE = "localhost/aitrader:test"
# Bump the suffix when the recipe below changes, so cached bases are rebuilt.
BASE_IMAGE = "localhost/aitrader-base:bookworm-1"
# A first build on a new machine debootstraps Debian and installs every dependency: minutes.
BUILD_TIMEOUT_S = 2400
DEBIAN_PACKAGES = "python3,python3-venv,ca-certificates"
DEBIAN_MIRROR = os.environ.get("AITRADER_DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(
    os.environ.get("AITRADER_CACHE_DIR")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "aitrader"
)
# What this podman needs to run containers here (no systemd, runc rather than crun, and the
# default ulimits above what the sandbox allows).
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]

[engine]
runtime = "runc"
"""
# Trading days of 2025-01-02..2025-01-10 on XNYS: 2025-01-09 was a market holiday (national
# day of mourning for President Carter), the weekend 4-5 January too.
BACKTEST_DAYS = [date(2025, 1, d) for d in (2, 3, 6, 7, 8, 10)]
DEFAULT_MODELS = ["equal-weight", "momentum", "random"]
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def missing(reason: str) -> None:
    """Skip locally, fail under CI: there the container path is part of what CI proves."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must run the container tests)")
    pytest.skip(reason)


class Podman:
    """The podman CLI with this machine's containers.conf."""

    def __init__(self, conf: Path) -> None:
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def run(self, *args: str, check: bool = True, timeout: float = 600, **kwargs):
        """`podman ARGS`, output captured as text; fails the test with the output on error."""
        result = subprocess.run(
            ["podman", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            **kwargs,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"podman {' '.join(args[:3])} ... exited with {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def image_exists(self, name: str) -> bool:
        """Whether `name` is in podman's local storage."""
        return self.run("image", "exists", name, check=False).returncode == 0

    def container(self, *args: str, timeout: float = 600, **kwargs):
        """A one-shot container of IMAGE on the host network, with the healthcheck timers off
        (they need systemd, which this machine lacks)."""
        return self.run(
            "run",
            "--rm",
            "--network",
            "host",
            "--health-cmd",
            "none",
            *args,
            timeout=timeout,
            **kwargs,
        )


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """The podman CLI, or a skip (a failure under CI) when it is not installed."""
    if shutil.which("podman") is None:
        missing("podman is not installed (apt-get install podman runc debootstrap)")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return Podman(conf)


def debootstrap_tarball() -> Path:
    """A trimmed Debian bookworm minbase root with python3 as a tarball, made once and cached."""
    tarball = CACHE / f"bookworm-minbase-{DEBIAN_PACKAGES.replace(',', '-')}.tar"
    if tarball.exists():
        return tarball
    if shutil.which("debootstrap") is None:
        missing("debootstrap is not installed and no cached base tarball exists")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        root = Path(work) / "root"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={DEBIAN_PACKAGES}",
                "bookworm",
                str(root),
                DEBIAN_MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=1200,
        )
        # Downloaded packages, package lists and documentation are dead weight in an image.
        for junk in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/locale",
            "usr/share/info",
        ):
            shutil.rmtree(root / junk, ignore_errors=True)
        partial = Path(work) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        partial.rename(tarball)  # atomic: a half-written tarball is never reused
    return tarball


@pytest.fixture(scope="session")
def base_image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The local base image: the debootstrap root plus the host's CA bundle.

    The host's bundle is what lets pip in the build reach PyPI through whatever TLS-inspecting
    proxy the host trusts; on an ordinary host it is just Debian's bundle.
    """
    if podman.image_exists(BASE_IMAGE):
        return BASE_IMAGE
    imported = f"{BASE_IMAGE}-root"
    podman.run("import", str(debootstrap_tarball()), imported, timeout=600)
    context = tmp_path_factory.mktemp("base-context")
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", context / "ca-certificates.crt")
    (context / "Containerfile").write_text(
        f"FROM {imported}\n"
        "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
        "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \\\n"
        "    PIP_CERT=/etc/ssl/certs/ca-certificates.crt\n"
        'CMD ["python3"]\n'
    )
    podman.run("build", "--isolation", "chroot", "-t", BASE_IMAGE, str(context), timeout=600)
    podman.run("rmi", imported, check=False)
    return BASE_IMAGE


@pytest.fixture(scope="session")
def image(podman: Podman, base_image: str) -> str:
    """The project image built from the Dockerfile on the local base (layers cached by podman)."""

    def image_id() -> str:
        found = podman.run("image", "inspect", "--format", "{{.Id}}", IMAGE, check=False)
        return found.stdout.strip() if found.returncode == 0 else ""

    previous = image_id()
    # --format docker: the OCI format has no HEALTHCHECK and podman would drop it.
    podman.run(
        "build",
        "--isolation",
        "chroot",
        "--format",
        "docker",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
        "-t",
        IMAGE,
        str(ROOT),
        timeout=1800,
    )
    # The image of an earlier build, untagged now: drop it (and its layers no other image uses),
    # so repeated CI runs do not fill the disk. Layers the new image shares stay cached.
    if previous and previous != image_id():
        podman.run("rmi", previous, check=False)
    return IMAGE


@pytest.fixture
def container_store() -> Iterator[str]:
    """An empty (unmigrated) Postgres database on the host: the container migrates it itself."""
    with postgres_database(f"aitrader_container_{os.getpid()}") as url:
        yield url


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.xdist_group("podman")
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_image_runs_as_an_unprivileged_user_on_read_only_code(podman: Podman, image: str) -> None:
    config = json.loads(podman.run("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "aitrader"
    probe = podman.container(
        image,
        "sh",
        "-c",
        "id -u; test -w /opt/aitrader/flows && echo code-writable; "
        'test -w /opt/aitrader/data && test -w /opt/aitrader/reports && test -w "$PREFECT_HOME"'
        " && echo state-writable; command -v aitrader; command -v prefect",
    ).stdout.split()
    assert probe[0] != "0"
    assert "code-writable" not in probe and "state-writable" in probe
    assert probe[-2:] == ["/opt/venv/bin/aitrader", "/opt/venv/bin/prefect"]


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.xdist_group("podman")
@pytest.mark.timeout(BUILD_TIMEOUT_S)
@pytest.mark.postgres
def test_backtest_in_a_container_writes_its_results_to_a_store_outside(
    podman: Podman, image: str, container_store: str
) -> None:
    # The default config (packaged in the image): three built-in strategies on the synthetic
    # market, an ephemeral Prefect server inside the container, the store on the host.
    result = podman.container(
        "-e",
        f"DATABASE_URL={container_store}",
        image,
        "aitrader",
        "backtest",
        "--start",
        "2025-01-02",
        "--end",
        "2025-01-10",
        timeout=900,
    )
    assert "Completed: 6 day(s), 18 model-day(s)" in result.stdout

    engine = create_store_engine(container_store)
    with Session(engine) as session:
        (run,) = session.exec(select(Run)).all()
        days = session.exec(select(ModelDay)).all()
    engine.dispose()
    assert run.status == "completed" and run.flow_run_id
    assert run.config["name"] == "offline-default" and sorted(run.models) == DEFAULT_MODELS
    assert (run.start_date, run.end_date) == (BACKTEST_DAYS[0], BACKTEST_DAYS[-1])
    assert {d.status for d in days} == {"completed"}
    assert sorted((d.model, d.day) for d in days) == [
        (model, day) for model in DEFAULT_MODELS for day in BACKTEST_DAYS
    ]
    assert all(d.value_end and d.value_end > 0 for d in days)


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.xdist_group("podman")
@pytest.mark.timeout(BUILD_TIMEOUT_S)
@pytest.mark.postgres
def test_healthcheck_reports_the_store_it_can_and_cannot_reach(
    podman: Podman, image: str, container_store: str
) -> None:
    inspected = json.loads(podman.run("image", "inspect", image).stdout)[0]
    assert inspected["Healthcheck"]["Test"] == ["CMD", "aitrader", "health"]

    def health(store: str) -> int:
        """Start a long-running container on `store`, run its healthcheck once, remove it."""
        started = podman.run(
            "run", "-d", "--network", "host", "-e", f"DATABASE_URL={store}", image, "sleep", "300"
        )
        container = started.stdout.strip().splitlines()[-1]
        try:
            return podman.run("healthcheck", "run", container, check=False, timeout=120).returncode
        finally:
            podman.run("rm", "--force", "--time", "0", container, check=False)

    assert health(container_store) == 0
    assert health("postgresql+psycopg://postgres@127.0.0.1:1/nowhere") != 0


@pytest.mark.container
@pytest.mark.slow
@pytest.mark.xdist_group("podman")
@pytest.mark.timeout(BUILD_TIMEOUT_S)
@pytest.mark.postgres
def test_compose_services_run_a_deployment_in_containers(podman: Podman, image: str) -> None:
    """compose.yaml's server, deploy job and worker, as its commands say, on the host network.

    No compose engine runs here and no postgres image can be pulled: the services run as plain
    containers of the image, with the host's Postgres in place of the `postgres` service.
    """
    services = load_yaml("compose.yaml")["services"]
    port = str(free_port())
    server_command = list(services["prefect-server"]["command"])
    server_command[server_command.index("--port") + 1] = port
    api = f"http://127.0.0.1:{port}/api"
    started: list[str] = []

    def start(*args: str) -> str:
        """A long-running container of the image on the host network; its id."""
        output = podman.run("run", "-d", "--network", "host", "--health-cmd", "none", *args)
        started.append(output.stdout.strip().splitlines()[-1])
        return started[-1]

    pid = os.getpid()
    with (
        postgres_database(f"aitrader_compose_prefect_{pid}") as prefect_db,
        postgres_database(f"aitrader_compose_store_{pid}") as store,
        prefect_api(api) as client,
    ):
        try:
            prefect_db_async = prefect_db.replace("postgresql+psycopg://", "postgresql+asyncpg://")
            start(
                "-e",
                f"PREFECT_API_DATABASE_CONNECTION_URL={prefect_db_async}",
                image,
                *server_command,
            )
            wait_for(lambda: client.get("/health").status_code == 200, 300, "the server")
            podman.container("-e", f"PREFECT_API_URL={api}", image, *services["deploy"]["command"])
            start(
                "-e",
                f"PREFECT_API_URL={api}",
                "-e",
                f"DATABASE_URL={store}",
                "-e",
                "PREFECT_WORKER_QUERY_SECONDS=2",
                image,
                *services["worker"]["command"],
            )

            deployment = client.get("/deployments/name/backtest/manual").json()
            body = {"parameters": {"start": "2025-01-06", "end": "2025-01-07"}}
            created = client.post(f"/deployments/{deployment['id']}/create_flow_run", json=body)
            assert created.status_code == 201, created.text
            run_id = created.json()["id"]

            def state() -> dict:
                return client.get(f"/flow_runs/{run_id}").json()["state"]

            wait_for(lambda: state()["type"] in FINAL_STATES, 300, "the flow run")
            assert state()["type"] == "COMPLETED", state()
        finally:
            for container in reversed(started):  # the worker before the server
                podman.run("rm", "--force", "--time", "5", container, check=False)

        engine = create_store_engine(store)
        with Session(engine) as session:
            (run,) = session.exec(select(Run)).all()
            days = session.exec(select(ModelDay)).all()
        engine.dispose()
        # The server kept its own state in its Postgres database, not in a container's SQLite.
        engine = create_store_engine(prefect_db)
        with engine.connect() as connection:
            query = text("SELECT state_type FROM flow_run WHERE id = :id")
            recorded = connection.execute(query, {"id": run_id}).scalar_one()
        engine.dispose()
    assert recorded == "COMPLETED"
    assert run.flow_run_id == run_id and run.status == "completed"
    assert sorted((d.model, d.day) for d in days) == [
        (model, date(2025, 1, day)) for model in DEFAULT_MODELS for day in (6, 7)
    ]


# The files that wire the image into deployments, checked without a container engine: no compose
# engine runs here, so compose.yaml is validated for structure and for agreement with the
# Dockerfile and prefect.yaml, not run.


def load_yaml(name: str) -> dict:
    return yaml.safe_load((ROOT / name).read_text())


def dockerfile_workdir() -> str:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    return next(line.split()[1] for line in lines if line.startswith("WORKDIR "))


def test_compose_runs_server_worker_and_store_on_postgres() -> None:
    services = load_yaml("compose.yaml")["services"]
    assert {"postgres", "prefect-server", "deploy", "worker"} <= set(services)
    server, worker, deploy = services["prefect-server"], services["worker"], services["deploy"]

    prefect_db = server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert prefect_db.startswith("postgresql+asyncpg://") and "@postgres:5432/" in prefect_db
    store = worker["environment"]["DATABASE_URL"]
    assert store.startswith("postgresql+psycopg://") and "@postgres:5432/" in store
    assert store.rsplit("/", 1)[1] != prefect_db.rsplit("/", 1)[1]  # two databases
    init_sql = load_yaml("compose.yaml")["configs"]["create-store-database"]["content"]
    assert f"CREATE DATABASE {store.rsplit('/', 1)[1]}" in init_sql

    port = server["command"][server["command"].index("--port") + 1]
    api = f"http://prefect-server:{port}/api"
    assert worker["environment"]["PREFECT_API_URL"] == deploy["environment"]["PREFECT_API_URL"]
    assert worker["environment"]["PREFECT_API_URL"] == api

    # Start order: Postgres healthy, then the server healthy, then the deployments, then the
    # worker; each waited-on service has a healthcheck to wait for.
    assert server["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert deploy["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    assert worker["depends_on"]["deploy"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in services["postgres"] and "healthcheck" in server
    for name in ("prefect-server", "deploy", "worker"):
        assert services[name]["build"] == "." and services[name]["image"] == "aitrader:latest"

    # The worker serves the pool that prefect.yaml's process deployments use, and the deploy
    # job deploys exactly those.
    pools = {d["name"]: d["work_pool"]["name"] for d in load_yaml("prefect.yaml")["deployments"]}
    pool = worker["command"][worker["command"].index("--pool") + 1]
    deployed = [n for n in pools if f"--name {n}" in " ".join(deploy["command"])]
    assert deployed == ["daily", "manual"] and {pools[n] for n in deployed} == {pool}
    assert f"create {pool} --type process" in " ".join(deploy["command"])


def test_docker_deployment_runs_the_image_from_its_workdir() -> None:
    config = load_yaml("prefect.yaml")
    deployments = {d["name"]: d for d in config["deployments"]}
    assert {"daily", "manual", "docker"} <= set(deployments)
    assert deployments["daily"]["work_pool"]["name"] == "aitrader-pool"  # process pool intact

    docker = deployments["docker"]
    assert docker["entrypoint"] == deployments["manual"]["entrypoint"]
    assert docker["work_pool"]["name"] == "aitrader-docker"
    variables = docker["work_pool"]["job_variables"]
    assert variables["image"] == load_yaml("compose.yaml")["services"]["worker"]["image"]
    (step,) = docker["pull"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert directory == dockerfile_workdir()
    assert any(v.endswith(":/opt/aitrader/data") for v in variables["volumes"])
