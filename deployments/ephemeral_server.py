"""The temporary Prefect server a backtest starts when PREFECT_API_URL is unset.

It is Prefect's own server app under uvicorn, started as Prefect's `SubprocessASGIServer` starts
it, with three differences: its SQLite transactions begin IMMEDIATE (deployments/server_app.py
says why), and two that make a run start seconds sooner:
- it is started here, before Prefect is imported (by `aitrader backtest`, as the command begins:
  `start_early`), while the CLI and the flow's modules load and the plan is made, and the client
  never imports the server's modules (fastapi, its services: seconds of CPU);
- its SQLite database under PREFECT_HOME is copied from a migrated template.

In a new home that database is empty, and migrating it (a hundred Alembic revisions) is most of
the server's first start. The first such start on a machine migrates a template,
kept in the user's cache (`AITRADER_CACHE`, else `~/.cache/aitrader`) and named after Prefect's
version; every later new home starts from a copy of it:

    new PREFECT_HOME ─► template for this Prefect version? ─ no ─► migrate it (once) ─┐
                                                        └─ yes ─────────────────────┴─► copy

A Prefect upgrade names a new template, so a copy never lags the server's schema; the server still
runs its migrations on start, which on an up-to-date copy only check the revision.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path

import httpx

from models.errors import AITraderError

CACHE_VARIABLE = "AITRADER_CACHE"
# What the server does on its first start, block types included, so a copy skips both.
MIGRATE = """
import asyncio
from prefect.server.database import provide_database_interface
from prefect.server.models.block_registration import run_block_auto_registration

async def main():
    db = provide_database_interface()
    await db.create_db()
    async with await db.session() as session:
        await run_block_auto_registration(session=session)
        await session.commit()

asyncio.run(main())
"""


def ephemeral_database() -> Path | None:
    """The SQLite file the temporary server would use; None when a server is configured or the
    server's database is not a SQLite file. Read from the environment: Prefect is not imported."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    url = os.environ.get("PREFECT_SERVER_DATABASE_CONNECTION_URL") or os.environ.get(
        "PREFECT_API_DATABASE_CONNECTION_URL"
    )
    if url:
        prefix = "sqlite+aiosqlite:///"
        if not url.startswith(prefix) or url.endswith(":memory:"):
            return None
        return Path(url.removeprefix(prefix))
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser() / "prefect.db"


def cache_folder() -> Path:
    """`AITRADER_CACHE`, else `$XDG_CACHE_HOME/aitrader` (`~/.cache/aitrader`)."""
    configured = os.environ.get(CACHE_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(cache_home) / "aitrader"


def template_path() -> Path:
    """Where this Prefect version's migrated, empty database is kept."""
    return cache_folder() / f"prefect-{version('prefect')}-empty.db"


def provide_ephemeral_database() -> Path | None:
    """Give a new PREFECT_HOME a migrated database before the temporary server starts; the
    database copied in, or None when there was nothing to do."""
    target = ephemeral_database()
    if target is None or target.exists():
        return None
    template = template_path()
    if not template.exists():
        build_template(template)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.copyfile(template, partial)
    os.replace(partial, target)  # a server starting meanwhile sees no file or a whole one
    return target


def build_template(template: Path) -> None:
    """Migrate an empty database with Prefect's own migrations and keep it as `template`."""
    template.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=template.parent, prefix=".prefect-template-") as tmp:
        database = Path(tmp) / "prefect.db"
        env = {
            **os.environ,
            "PREFECT_HOME": tmp,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
        }
        env.pop("PREFECT_API_URL", None)
        subprocess.run([sys.executable, "-c", MIGRATE], env=env, check=True, capture_output=True)
        with sqlite3.connect(database) as connection:  # one self-contained file, no WAL beside it
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            connection.execute("PRAGMA journal_mode=DELETE")
        # Two processes building at once each move a whole file into place; either one serves.
        os.replace(database, template)


class TemporaryServer:
    """A Prefect server process for this process's flow runs, stopped when this process exits."""

    def __init__(self) -> None:
        with socket.socket() as probe:  # a free port, handed to uvicorn at once
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "--factory"),
                "deployments.server_app:create_app",  # Prefect's app, SQLite writes IMMEDIATE
                *("--host", "127.0.0.1", "--port", str(self.port)),
                *("--log-level", "error", "--lifespan", "on"),
            ],
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            },
        )
        self.used = False
        atexit.register(self.stop)

    def wait_until_ready(self, timeout_s: float | None = None) -> None:
        """Block until the server answers its health check; a clear error if it never does."""
        self.used = True
        if timeout_s is None:
            timeout_s = float(
                os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 180)
            )
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AITraderError(
                        f"the temporary Prefect server exited with {self.process.returncode}"
                    )
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise AITraderError(f"the temporary Prefect server did not start in {timeout_s:.0f} s")

    def stop(self) -> None:
        """Stop the server: gracefully once it has served (its services flush what they hold),
        at once if nothing used it (started early for an answer that needed no Prefect)."""
        if self.process.poll() is None:
            if not self.used:
                self.process.kill()  # SQLite's journal keeps its database whole
                self.process.wait()
                return
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_temporary_server() -> TemporaryServer | None:
    """Start the temporary server now and point this process at it (PREFECT_API_URL), when no
    server is configured and Prefect is not imported yet (an imported Prefect keeps the settings
    it read, and starts its own temporary server instead); call `wait_until_ready` before use.
    A server `start_early` started for this process is handed over instead, once."""
    global _started_early
    if _started_early is not None:
        server, _started_early = _started_early, None
        return server
    provide_ephemeral_database()
    if os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return None
    server = TemporaryServer()
    os.environ["PREFECT_API_URL"] = server.api_url
    return server


# The server `start_early` started as this process began, until a backtest takes it.
_started_early: TemporaryServer | None = None


def start_early(arguments: Sequence[str]) -> None:
    """Start the temporary server as `aitrader backtest` begins, before the CLI's imports and
    checks (a second or two, while the server takes seconds); stopped at exit if no flow runs.
    Only when its database is there to copy: building the template first would hold up an
    answer that needs no Prefect (a refused date, an up-to-date store)."""
    global _started_early
    if arguments[:1] != ["backtest"] or {"--help", "-h"} & set(arguments):
        return
    target = ephemeral_database()
    if target is None or not (target.exists() or template_path().exists()):
        return
    from deployments.prefect_settings import apply_local_defaults

    apply_local_defaults()
    _started_early = start_temporary_server()
