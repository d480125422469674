"""The temporary Prefect server's database, copied from a migrated template.

When PREFECT_API_URL is unset, Prefect starts a temporary server on a SQLite database under
PREFECT_HOME. In a new home that database is empty, and migrating it (a hundred Alembic revisions)
is most of the server's first start. The first such start on a machine migrates a template,
kept in the user's cache (`AITRADER_CACHE`, else `~/.cache/aitrader`) and named after Prefect's
version; every later new home starts from a copy of it:

    new PREFECT_HOME ─► template for this Prefect version? ─ no ─► migrate it (once) ─┐
                                                        └─ yes ─────────────────────┴─► copy

A Prefect upgrade names a new template, so a copy never lags the server's schema; the server still
runs its migrations on start, which on an up-to-date copy only check the revision.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

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
    server's database is not a SQLite file."""
    from prefect.settings import Settings

    settings = Settings()  # from the environment as it is now, as the server will read it
    if settings.api.url:
        return None
    url = settings.server.database.connection_url
    url = url.get_secret_value() if url is not None else None
    if url is None:
        return settings.home / "prefect.db"
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix) or url.endswith(":memory:"):
        return None
    return Path(url.removeprefix(prefix))


def cache_folder() -> Path:
    """`AITRADER_CACHE`, else `$XDG_CACHE_HOME/aitrader` (`~/.cache/aitrader`)."""
    configured = os.environ.get(CACHE_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(cache_home) / "aitrader"


def template_path() -> Path:
    """Where this Prefect version's migrated, empty database is kept."""
    import prefect

    return cache_folder() / f"prefect-{prefect.__version__}-empty.db"


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
