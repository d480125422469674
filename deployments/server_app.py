"""Prefect's server as aitrader runs it: on SQLite, every transaction begins IMMEDIATE.

Prefect's SQLite server begins the API's write transactions DEFERRED: they read, then take the
write lock. When one of its background writers (the task-run recorder, the event persister)
commits in between, SQLite answers "database is locked" at once (waiting cannot help a stale
snapshot), the API returns 503, and Prefect's client backs off for 2 s: measured, a stall every
twenty or so trading days of a backtest. Begun IMMEDIATE, a transaction takes the write lock
first and, while another writer holds it, waits (the busy timeout) instead of failing.

Two ways in, both applying the change before the server's app exists:
- `create_app`, uvicorn's `--factory` for the temporary server (deployments/ephemeral_server.py);
- `python -m deployments.server_app server start ...`: Prefect's own CLI, for `aitrader server`.
"""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from typing import Any


def begin_sqlite_transactions_immediately() -> None:
    """Make Prefect's SQLite configuration begin every transaction IMMEDIATE."""
    from prefect.server.database.configurations import AioSqliteConfiguration

    deferred = AioSqliteConfiguration.begin_transaction
    if getattr(deferred, "immediate", False):
        return

    def immediate(
        self: AioSqliteConfiguration, session: Any, with_for_update: bool = False
    ) -> AbstractAsyncContextManager[Any]:
        return deferred(self, session, with_for_update=True)

    immediate.immediate = True  # type: ignore[attr-defined]
    AioSqliteConfiguration.begin_transaction = immediate  # type: ignore[method-assign]


def create_app() -> Any:
    """Prefect's server app with IMMEDIATE transactions (uvicorn `--factory`)."""
    from prefect.server.api.server import create_app as prefect_app

    begin_sqlite_transactions_immediately()
    return prefect_app()


if __name__ == "__main__":
    begin_sqlite_transactions_immediately()
    from prefect.cli import app

    sys.argv[0] = "prefect"
    sys.exit(app())
