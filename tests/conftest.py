"""Shared fixtures: a migrated store on SQLite and on the local PostgreSQL, and the shared data."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel, select

from models.engine import create_store_engine, dispose_engines, upgrade
from models.tables import ModelDay, Run

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AITRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
POSTGRES_URL = os.environ.get(
    "AITRADER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# One database per test process, so concurrent test runs on one server never collide.
POSTGRES_TEST_DB = f"aitrader_test_{os.getpid()}"
# The six LLMs of the original's October 2025 run (the shared data's legacy daily run).
ORIGINAL_SIX = (
    "MiniMax-M2",
    "claude-3.7-sonnet",
    "deepseek-chat-v3.1",
    "gemini-2.5-flash",
    "gpt-5",
    "qwen3-max",
)


def pytest_configure(config: pytest.Config) -> None:
    # Prefect reads its settings when first imported: set them before any test imports it, and
    # keep its home (database, result cache) out of the user's.
    from deployments.prefect_settings import apply_local_defaults

    apply_local_defaults()
    home = Path(os.environ.setdefault("AITRADER_TEST_PREFECT_HOME", "/tmp/aitrader-test-prefect"))
    os.environ["PREFECT_HOME"] = str(home / str(os.getpid()))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    # One cache for the session (xdist workers inherit it): its first new Prefect home migrates
    # the template database, as a user's first run does, and the later ones copy it.
    os.environ.setdefault("AITRADER_CACHE", str(home / f"cache-{os.getpid()}"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.pop("PREFECT_API_URL", None)
    # Output goes to a pipe, as in a user's script: no terminal width unless a test sets one
    # (an xdist worker may find COLUMNS set).
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


# Fixtures that start a Prefect server: a test using one is slow whether or not it says so.
SERVER_FIXTURES = {"prefect_server", "prefect_harness"}


@pytest.hookimpl(tryfirst=True)  # before `-m "not slow"` deselects by the marks set here
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests that start a Prefect server slow, then put the slow tests first: the longest
    start while the other worker takes the many short ones, so both finish together."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real NASDAQ-100 data shipped beside the repository (`../shared/data`)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA}; set AITRADER_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite store, copied for each test (migrating once is the slow part)."""
    path = tmp_path_factory.mktemp("store") / "template.db"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def _admin_execute(statement: str) -> None:
    admin = create_engine(make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


@contextlib.contextmanager
def postgres_database(name: str) -> Iterator[str]:
    """A fresh, empty database `name` on the local PostgreSQL server; dropped afterwards.

    Skips the test when the server is down, except under CI, where that is a failure.
    """
    try:
        _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _admin_execute(f"CREATE DATABASE {name}")
    except Exception as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is not available: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        dispose_engines()
        _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@functools.cache
def postgres_available() -> bool:
    """Whether the local PostgreSQL answers (under CI it must: then this fails the test)."""
    try:
        _admin_execute("SELECT 1")
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is not available: {exc}")
        return False
    return True


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A dedicated, freshly migrated database on the local PostgreSQL server."""
    with postgres_database(POSTGRES_TEST_DB) as url:
        engine = create_store_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """The URL of an empty, migrated store: once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "aitrader.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        engine = create_store_engine(url)
        _truncate_all(engine)
        engine.dispose()
    yield url
    dispose_engines()


def _import_nasdaq100_daily(url: str, shared_data: Path) -> None:
    from market_data.aitrader_files import import_prices

    engine = create_store_engine(url)
    with Session(engine) as session:
        import_prices(session, shared_data / "nasdaq100_daily")
        session.commit()
    engine.dispose()


@pytest.fixture(scope="session")
def nasdaq100_daily_sqlite(sqlite_template: Path, shared_data: Path, tmp_path_factory) -> Path:
    """A migrated SQLite store holding ../shared/data/nasdaq100_daily, imported once."""
    path = tmp_path_factory.mktemp("nasdaq100-daily") / "template.db"
    _import_nasdaq100_daily(store_copy(sqlite_template, path), shared_data)
    return path


@pytest.fixture(scope="session")
def nasdaq100_daily_postgres(shared_data: Path) -> Iterator[str]:
    """The name of a PostgreSQL database holding nasdaq100_daily, imported once: the template
    that `CREATE DATABASE ... TEMPLATE` copies in a fraction of the import's time."""
    name = f"{POSTGRES_TEST_DB}_nasdaq100_daily"
    with postgres_database(name) as url:
        engine = create_store_engine(url)
        upgrade(engine)
        engine.dispose()
        _import_nasdaq100_daily(url, shared_data)
        dispose_engines()  # a template database must have no connections
        yield name


@pytest.fixture(params=["sqlite", "postgres"])
def nasdaq100_daily_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new store holding the real NASDAQ-100 daily prices and nothing else: once
    on SQLite, once on PostgreSQL, each a copy of a template imported once per test process."""
    if request.param == "sqlite":
        yield store_copy(request.getfixturevalue("nasdaq100_daily_sqlite"), tmp_path / "s.db")
    else:
        template = request.getfixturevalue("nasdaq100_daily_postgres")
        name = f"{POSTGRES_TEST_DB}_copy"
        _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _admin_execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        dispose_engines()
        _admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    dispose_engines()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """An engine on the empty store of `store_url`."""
    engine = create_store_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def flow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """An engine on a new SQLite store that DATABASE_URL names, for flows run in this process."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    yield create_store_engine(url)
    dispose_engines()


def store_copy(template: Path, path: Path) -> str:
    """The URL of a copy, at `path`, of the SQLite store file `template` (made once per module
    or session: copying is fast, migrating and importing are not)."""
    shutil.copy(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """An empty, migrated SQLite store only (for tests that are not about the database)."""
    return store_copy(sqlite_template, tmp_path / "aitrader.db")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served_in_thread(app, probe: str) -> Iterator[str]:
    """An ASGI `app` served by uvicorn on a free port in a thread, answering `probe` (a path);
    its base URL. The server stops when the block ends."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, 20, "the server to start")
    base = f"http://127.0.0.1:{server.config.port}"
    httpx.get(f"{base}{probe}", timeout=5).raise_for_status()
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_for(predicate, timeout: float, what: str, process=None) -> None:
    """Poll `predicate` until true; fail clearly on timeout or if `process` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited with {process.returncode}")
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def prefect_cli(*arguments: str, env: dict[str, str]) -> str:
    """`prefect ARGUMENTS` from the project folder; its output, or a test failure showing it.

    Prefect's CLI is not our code: coverage does not trace it."""
    done = run_command([sys.executable, "-m", "prefect", *arguments], env)
    assert done.returncode == 0, f"prefect {' '.join(arguments)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def prefect_api(url: str, **options) -> httpx.Client:
    """An HTTP client for a Prefect API that retries 503 answers, as Prefect's own client does.

    A SQLite-backed server answers 503 when its database is locked, more often on a loaded machine.
    """

    class RetryBusy(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            for attempt in range(5):
                response = super().handle_request(request)
                if response.status_code != 503:
                    break
                response.close()
                time.sleep(0.5 * 2**attempt)
            return response

    return httpx.Client(base_url=url, transport=RetryBusy(), timeout=30, **options)


@contextlib.contextmanager
def running_prefect_server(home: Path, *arguments: str, **settings: str) -> Iterator[str]:
    """`aitrader server` (a dedicated `prefect server start`) on a free port; yields its API URL.

    `arguments` go to `aitrader server` (e.g. `--database-url`); `settings` go into the server's
    environment, e.g. `PREFECT_SERVER_API_AUTH_STRING` for basic auth.
    """
    import signal
    import subprocess

    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), **settings}
    auth = (
        tuple(settings["PREFECT_SERVER_API_AUTH_STRING"].split(":", 1))
        if ("PREFECT_SERVER_API_AUTH_STRING" in settings)
        else None
    )
    log = (home / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "deployments", "server", "--port", str(port), "--no-ui", *arguments],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(
            lambda: httpx.get(f"{url}/health", auth=auth).status_code == 200,
            180,
            "the Prefect server",
            process,
        )
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Prefect server per test process, shared by its end-to-end and in-process flow tests.

    On the local PostgreSQL where it runs (it starts in about half the time and never answers
    503 for a locked database), else on SQLite; under CI PostgreSQL must be there.
    """
    home = tmp_path_factory.mktemp("prefect-server")
    with contextlib.ExitStack() as stack:
        arguments: list[str] = []
        if postgres_available():
            name = f"aitrader_prefect_session_{os.getpid()}"
            database = stack.enter_context(postgres_database(name))
            plain = make_url(database).set(drivername="postgresql")
            arguments = ["--database-url", plain.render_as_string(hide_password=False)]
        url = stack.enter_context(running_prefect_server(home, *arguments))
        yield url


@pytest.fixture(scope="session")
def prefect_harness(
    prefect_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Flows run in this process talk to the session's Prefect server; yields the result folder."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    results = tmp_path_factory.mktemp("prefect-results")
    with temporary_settings(
        updates={PREFECT_API_URL: prefect_server, PREFECT_RESULTS_LOCAL_STORAGE_PATH: results}
    ):
        yield results


@dataclass(frozen=True)
class FinishedBacktest:
    """An `aitrader backtest` that ran to its end in its own process."""

    folder: Path  # its AITRADER_HOME, holding its store and its Prefect home
    store: Path  # its SQLite store file
    output: str  # what it printed
    seconds: float  # its wall time, the temporary Prefect server's start included


def quickstart_job() -> list[str]:
    """The backtest `python3 quickstart.py run` runs, read from quickstart.py."""
    source = (ROOT / "quickstart.py").read_text()
    call = re.search(r"sh\(aitrader, ((?:\"[^\"]*\", )+)\*sys\.argv", source)
    assert call, "quickstart.py's run() no longer calls `aitrader backtest …` as expected"
    return ["aitrader", *re.findall(r"\"([^\"]*)\"", call.group(1))]


@pytest.fixture(scope="session")
def quickstart_backtest(tmp_path_factory: pytest.TempPathFactory) -> FinishedBacktest:
    """The quick start's backtest once per test process, as a user runs it: its own process and
    temporary Prefect server (no PREFECT_API_URL), a new store and Prefect home.

    Tests that add to its store work on a copy (`sqlite_backup`).
    """
    folder = tmp_path_factory.mktemp("quickstart")
    (folder / "prefect").mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{folder / 'aitrader.db'}",
        "PREFECT_HOME": str(folder / "prefect"),
        "AITRADER_HOME": str(folder),
    }
    env.pop("PREFECT_API_URL", None)
    started = time.monotonic()
    done = run_command([sys.executable, "-m", "deployments", *quickstart_job()[1:]], env, 600)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    return FinishedBacktest(folder, folder / "aitrader.db", done.stdout, seconds)


def sqlite_backup(source: Path, target: Path) -> str:
    """A consistent copy of the SQLite store `source` at `target` (its WAL included); its URL."""
    with (
        contextlib.closing(sqlite3.connect(source)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
    return f"sqlite:///{target}"


def add_model_day(session: Session, day: date, portfolio: str = "p") -> ModelDay:
    """A pending model-day of model `m` in the store's first run (made if there is none)."""
    run = session.exec(select(Run)).first()
    if run is None:
        run = Run(name="r", models=["m"])
        session.add(run)
        session.flush()
    model_day = ModelDay(run_id=run.id, model="m", portfolio=portfolio, day=day)
    session.add(model_day)
    session.flush()
    return model_day


def completed_day(run: Run, model: str, day: date, value: float) -> ModelDay:
    """A completed model-day of `run` whose end-of-day cash and value are both `value`."""
    return ModelDay(
        run_id=run.id,
        model=model,
        portfolio=run.portfolios[model],
        day=day,
        status="completed",
        cash_end=value,
        value_end=value,
    )


def run_command(argv: list[str], env: dict[str, str], timeout: float = 300):
    """Run a command from the project folder, capturing its text output; nothing it started (a
    temporary Prefect server, say) may outlive it."""
    import signal
    import subprocess

    process = subprocess.Popen(
        argv, env=env, cwd=ROOT, text=True, start_new_session=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        left = live_group_members(process.pid)
        if left:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert not left, f"{' '.join(argv[2:4])} left processes running: {left}"
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def live_group_members(pgid: int) -> list[int]:
    """Processes of process group `pgid` still alive (a reaped-late zombie is not alive)."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            alive.append(int(stat.parent.name))
    return alive
