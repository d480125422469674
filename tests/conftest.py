"""Shared fixtures: a migrated store on SQLite and on the local PostgreSQL, and the shared data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, SQLModel

from models.engine import create_store_engine, dispose_engines, upgrade

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("AITRADER_SHARED_DATA", ROOT.parent / "shared" / "data"))
POSTGRES_URL = os.environ.get(
    "AITRADER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# One database per test process, so concurrent test runs on one server never collide.
POSTGRES_TEST_DB = f"aitrader_test_{os.getpid()}"


def pytest_configure(config: pytest.Config) -> None:
    # Keep Prefect and the store away from the user's home and cwd during tests.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


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


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A dedicated, freshly migrated database on the local PostgreSQL server."""
    try:
        _admin_execute(f"DROP DATABASE IF EXISTS {POSTGRES_TEST_DB} WITH (FORCE)")
        _admin_execute(f"CREATE DATABASE {POSTGRES_TEST_DB}")
    except Exception as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is not available: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    url = make_url(POSTGRES_URL).set(database=POSTGRES_TEST_DB)
    url_text = url.render_as_string(hide_password=False)
    engine = create_store_engine(url_text)
    upgrade(engine)
    engine.dispose()
    yield url_text
    dispose_engines()
    _admin_execute(f"DROP DATABASE IF EXISTS {POSTGRES_TEST_DB} WITH (FORCE)")


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
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """An empty, migrated SQLite store only (for tests that are not about the database)."""
    path = tmp_path / "aitrader.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"
