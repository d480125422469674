"""`aitrader server`: a dedicated Prefect server, on SQLite by default or on PostgreSQL at scale."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Prefect's server talks to its database through async drivers only.
ASYNC_DRIVERS = {"postgresql": "postgresql+asyncpg", "sqlite": "sqlite+aiosqlite"}


def server_database_url(url: str) -> str:
    """The URL as Prefect's server needs it (`postgresql+asyncpg://`, `sqlite+aiosqlite://`).

    A plain `postgresql://` or `sqlite://` URL gets the async driver; a sync driver such as
    `postgresql+psycopg` is refused with a message that says what to write instead.
    """
    try:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
    except ArgumentError:
        raise ValueError(f"not a database URL: {url!r}") from None
    backend, _, driver = parsed.drivername.partition("+")
    wanted = ASYNC_DRIVERS.get(backend)
    if wanted is None:
        raise ValueError(f"the Prefect server runs on PostgreSQL or SQLite, not {backend!r}")
    if driver and f"{backend}+{driver}" != wanted:
        raise ValueError(
            f"the Prefect server needs the async driver {wanted!r}, not {parsed.drivername!r}"
        )
    return parsed.set(drivername=wanted).render_as_string(hide_password=False)


def shown(url: str) -> str:
    """The URL with its password masked, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)
