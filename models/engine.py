"""Engine and session factory for the results store, migrated to the latest schema on first use.

SQLite (a file under `data/`, WAL mode) is the default; `DATABASE_URL` selects any SQLAlchemy URL,
e.g. `postgresql+psycopg://postgres@127.0.0.1:5432/aitrader`.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlmodel import Session, create_engine, select

from models.errors import StoreError

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
HOME_VARIABLE = "AITRADER_HOME"
DEFAULT_SQLITE_PATH = Path("data") / "aitrader.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK_KEY = 0x41495452  # "AITR": the Postgres advisory lock held while migrating

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def aitrader_home() -> Path:
    """Where the default store and the reports live, whatever the working folder.

    `AITRADER_HOME` if set; else the project folder this code runs from (a checkout, found by its
    `pyproject.toml` and `prefect.yaml`); else the user's data folder (`~/.local/share/aitrader`).
    """
    configured = os.environ.get(HOME_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    project = Path(__file__).resolve().parent.parent
    if (project / "pyproject.toml").is_file() and (project / "prefect.yaml").is_file():
        return project
    data_home = os.environ.get("XDG_DATA_HOME", "").strip() or Path.home() / ".local" / "share"
    return Path(data_home) / "aitrader"


def database_url() -> str:
    """The store URL: `DATABASE_URL`, else the SQLite file `data/aitrader.db` under the home."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        return url
    return f"sqlite:///{aitrader_home() / DEFAULT_SQLITE_PATH}"


def shown_url(url: str | None = None) -> str:
    """The store's URL as it may be printed: never with a password."""
    return make_url(url or database_url()).render_as_string(hide_password=True)


def store_key(url: str | None = None) -> str:
    """A short name of the store, unique per URL: report folders of two stores never collide."""
    parsed = make_url(url or database_url())
    name = (
        Path(parsed.database or "store").stem
        if parsed.get_backend_name() == "sqlite"
        else (parsed.database or parsed.get_backend_name())
    )
    digest = hashlib.sha256(shown_url(url).encode()).hexdigest()[:8]
    return f"{name}-{digest}"


def _set_sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def parse_store_url(url: str) -> URL:
    """`url` parsed; a StoreError naming where it came from (not echoing it) if it is no URL."""
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise StoreError(
            f"the store URL (DATABASE_URL or --db) is not a database URL: {exc}"
        ) from None


def create_store_engine(url: str | None = None) -> Engine:
    """An engine for `url` (default: `database_url()`) with the store's connection settings."""
    url = url or database_url()
    parsed = parse_store_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        )
        event.listen(engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def alembic_config(engine: Engine) -> Config:
    """An Alembic config pointing at the store's migrations, bound to `engine`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None for an empty database)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest schema revision shipped with this code."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None, "the migrations folder has no revision"
    return head


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migrating process at a time: two first uses of a new store may start together."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> str:
    """Apply every pending migration; return the revision the store is now at."""
    try:
        if current_revision(engine) != head_revision():
            with _migration_lock(engine):
                # Checked again under the lock: another process may have just migrated it.
                if current_revision(engine) != head_revision():
                    command.upgrade(alembic_config(engine), "head")
    except Exception as exc:  # the driver's own error says why; keep it in one line
        raise StoreError(f"cannot migrate the store at {engine.url!r}: {exc}") from exc
    return head_revision()


def existing_store(url: str | None = None) -> Engine | None:
    """An engine on the store if it exists at the latest schema; None otherwise.

    It never creates, migrates or writes anything: checks that must leave the store as it was
    (refusing a bad trigger) read through it.
    """
    url = url or database_url()
    parsed = parse_store_url(url)
    if parsed.get_backend_name() == "sqlite" and not (
        parsed.database and parsed.database != ":memory:" and Path(parsed.database).is_file()
    ):
        return None
    engine = create_store_engine(url)
    try:
        at_head = current_revision(engine) == head_revision()
    except Exception:  # unreachable, or not a store at all: nothing to check against
        at_head = False
    if not at_head:
        engine.dispose()
        return None
    return engine


def store_identity(session: Session) -> str:
    """The id the store was given when it was created (see `StoreIdentity`); a store whose row
    was removed (its tables emptied) is given a new one, as a new store."""
    from models.tables import StoreIdentity

    row = session.exec(select(StoreIdentity)).first()
    if row is None:
        row = StoreIdentity(id=uuid.uuid4().hex)
        session.add(row)
        session.commit()
    return row.id


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for `url`, created and migrated on first use."""
    url = url or database_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_store_engine(url)
            upgrade(engine)
            _engines[url] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, forks)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
