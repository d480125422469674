"""The temporary Prefect server's database: a new PREFECT_HOME gets a copy of a migrated template
(deployments/ephemeral_server.py), built once per machine and Prefect version."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from deployments import ephemeral_server
from deployments.ephemeral_server import (
    ephemeral_database,
    provide_ephemeral_database,
    start_early,
    template_path,
)
from tests.conftest import run_command

# Stands in for Prefect's migrations (a minute of CPU): an SQLite database left in WAL mode with
# its rows still in the write-ahead log, as Prefect's server leaves it.
FAKE_MIGRATE = """
import os, sqlite3
path = os.environ["PREFECT_API_DATABASE_CONNECTION_URL"].removeprefix("sqlite+aiosqlite:///")
connection = sqlite3.connect(path)
connection.execute("PRAGMA journal_mode=WAL")
connection.execute("PRAGMA wal_autocheckpoint=0")
connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
connection.execute("INSERT INTO alembic_version VALUES ('head')")
connection.commit()
os._exit(0)  # no checkpoint on close: the row stays in the WAL file
"""


@pytest.fixture
def new_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty PREFECT_HOME, no server configured, and an empty cache."""
    home = tmp_path / "prefect-home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.setenv("AITRADER_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_API_DATABASE_CONNECTION_URL", raising=False)
    monkeypatch.setattr(ephemeral_server, "MIGRATE", FAKE_MIGRATE)
    return home


def version(database: Path) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchall()


def test_the_first_new_home_builds_the_template_and_later_ones_copy_it(new_home: Path) -> None:
    database = provide_ephemeral_database()
    assert database == new_home / "prefect.db" == ephemeral_database()
    template = template_path()
    # One self-contained file: the rows left in the log were checkpointed into it.
    assert (
        version(template) == [("head",)] and not template.with_name(template.name + "-wal").exists()
    )
    assert version(database) == [("head",)]

    built_at = template.stat().st_mtime_ns
    database.unlink()
    assert provide_ephemeral_database() == database
    assert template.stat().st_mtime_ns == built_at  # copied, not built again


def test_an_existing_database_is_left_alone(new_home: Path) -> None:
    new_home.mkdir()
    (new_home / "prefect.db").write_bytes(b"a user's runs")
    assert provide_ephemeral_database() is None
    assert (new_home / "prefect.db").read_bytes() == b"a user's runs"
    assert not template_path().exists()  # nothing was built


@pytest.mark.parametrize(
    "setting, value",
    [
        ("PREFECT_API_URL", "http://127.0.0.1:4200/api"),
        ("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://postgres@127.0.0.1/prefect"),
    ],
)
def test_no_copy_for_a_configured_server_or_a_server_database_elsewhere(
    new_home: Path, monkeypatch: pytest.MonkeyPatch, setting: str, value: str
) -> None:
    monkeypatch.setenv(setting, value)
    assert ephemeral_database() is None
    assert provide_ephemeral_database() is None
    assert not new_home.exists()


def fake_template() -> Path:
    """A template database as the first new home would leave it (its migrations stood in for)."""
    template = template_path()
    template.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(template) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num TEXT)")
        connection.execute("INSERT INTO alembic_version VALUES ('head')")
    return template


@pytest.mark.parametrize(
    "arguments, template",
    [
        (["results"], True),  # no flow: no server
        (["backtest", "--help"], True),
        (["backtest", "--start", "2025-02-30"], False),  # no template: none built before checks
    ],
)
def test_the_server_starts_early_only_for_a_backtest_with_a_database_to_copy(
    new_home: Path, arguments: list[str], template: bool
) -> None:
    if template:
        fake_template()
    start_early(arguments)
    assert not new_home.exists()
    assert template_path().exists() == template
    assert "PREFECT_API_URL" not in os.environ


def test_a_backtest_starts_its_server_as_it_begins_and_stops_it_when_refused(
    new_home: Path, tmp_path: Path
) -> None:
    fake_template()
    env = {
        **os.environ,
        "AITRADER_HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/s.db",
    }
    # `run_command` fails the test if the server outlives the command.
    done = run_command(
        [sys.executable, "-m", "deployments", "backtest", "--start", "2025-02-30"], env
    )
    assert done.returncode != 0 and "2025-02-30" in done.stdout + done.stderr
    # Its database was copied as the command began, before the date was refused.
    assert version(new_home / "prefect.db") == [("head",)]
