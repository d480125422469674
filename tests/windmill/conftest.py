"""Fixtures for the Windmill workspace's tests: its JS tools, the wmill mock mode, a database."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import POSTGRES_URL, ROOT

WINDMILL = ROOT / "windmill"
NODE_BIN = WINDMILL / "node_modules" / ".bin"
DATABASE_RESOURCE = "f/trading/trading_db"
# One database per test process, so concurrent runs on one server never collide.
TRADING_DB = f"aitrader_windmill_{os.getpid()}"


def unavailable(reason: str) -> None:
    """Skip locally, but fail under CI: CI must really run the Windmill tests."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def js_tool(name: str) -> Path:
    """windmill/node_modules/.bin/<name>, installed by `npm ci` (quickstart.py test runs it)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        unavailable("node/npm not installed: the Windmill tests need them (apt-get install npm)")
    tool = NODE_BIN / name
    if not tool.exists():
        unavailable(f"{tool} missing: run `npm ci` in windmill/ (python3 quickstart.py test does)")
    return tool


@pytest.fixture(scope="session")
def bun() -> Path:
    return js_tool("bun")


@pytest.fixture(scope="session")
def wmill_cli() -> Path:
    return js_tool("wmill")


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(_conninfo("postgres"), autocommit=True) as connection:
        connection.execute(statement)


def _conninfo(dbname: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL).set(drivername="postgresql", database=dbname)
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def trading_db() -> Iterator[dict]:
    """A fresh database on the local PostgreSQL, as the value of a Windmill `postgresql`
    resource; dropped at the end of the session."""
    from sqlalchemy.engine import make_url

    try:
        _admin(f"DROP DATABASE IF EXISTS {TRADING_DB} WITH (FORCE)")
        _admin(f"CREATE DATABASE {TRADING_DB}")
    except Exception as exc:
        unavailable(f"PostgreSQL at {POSTGRES_URL} is not available: {exc}")
    url = make_url(POSTGRES_URL)
    yield {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password or "",
        "dbname": TRADING_DB,
        "sslmode": "disable",
    }
    _admin(f"DROP DATABASE IF EXISTS {TRADING_DB} WITH (FORCE)")


@pytest.fixture
def empty_trading_db(trading_db: dict) -> dict:
    """The session's trading database with no result tables (each test starts from nothing)."""
    import psycopg

    with psycopg.connect(_conninfo(TRADING_DB), autocommit=True) as connection:
        connection.execute(
            "DROP TABLE IF EXISTS simulation_daily_value, simulation_leaderboard, simulation_run"
        )
    return trading_db


@pytest.fixture
def mocked_wmill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_trading_db: dict):
    """The `wmill` SDK in its file-backed mock mode, with the trading_db resource in it.

    A resource missing from the mock falls back to the real API: BASE_INTERNAL_URL points at a
    closed loopback port so that such a call fails at once instead of reaching anything.
    """
    mock = tmp_path / "wmill-mock.json"
    resources = {DATABASE_RESOURCE: empty_trading_db}
    mock.write_text(json.dumps({"variables": {}, "resources": resources}))
    monkeypatch.setenv("WM_MOCKED_API_FILE", str(mock))
    monkeypatch.setenv("WM_WORKSPACE", "test")
    monkeypatch.setenv("WM_TOKEN", "test-token")
    monkeypatch.setenv("BASE_INTERNAL_URL", "http://127.0.0.1:9")
    import wmill.client

    monkeypatch.setattr(wmill.client, "_client", None)  # a fresh client reads this mock file
    return empty_trading_db


def workspace_script(name: str) -> ModuleType:
    """Import windmill/f/trading/<name>.py as Windmill would (module path f.trading.<name>)."""
    if str(WINDMILL) not in sys.path:
        sys.path.insert(0, str(WINDMILL))
    return importlib.import_module(f"f.trading.{name}")
