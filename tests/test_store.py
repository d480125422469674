"""The results store: migrations on first use, connection settings, and its integrity guards."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from models.engine import (
    alembic_config,
    create_store_engine,
    current_revision,
    database_url,
    get_engine,
    head_revision,
    session_scope,
    shown_url,
    store_key,
    upgrade,
)
from models.tables import Holding, ModelDay, Run, Trade
from tests.conftest import add_model_day


def test_a_new_sqlite_store_is_migrated_on_first_use(tmp_path, monkeypatch) -> None:
    path = tmp_path / "nested" / "store.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    assert database_url() == f"sqlite:///{path}"
    engine = get_engine()
    assert path.exists()
    assert current_revision(engine) == head_revision()
    assert get_engine() is engine  # one engine per URL and process
    assert {
        "run",
        "modelday",
        "trade",
        "holding",
        "message",
        "toolcall",
        "llmcall",
        "pricebar",
        "newsitem",
    } <= set(inspect(engine).get_table_names())


def test_default_store_is_one_file_whatever_the_working_folder(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("AITRADER_HOME", raising=False)
    project = Path(__file__).resolve().parent.parent  # this checkout
    for folder in (tmp_path, project / "deployments" / "notebooks"):
        monkeypatch.chdir(folder)
        assert database_url() == f"sqlite:///{project / 'data' / 'aitrader.db'}"
    monkeypatch.setenv("AITRADER_HOME", str(tmp_path / "home"))
    assert database_url() == f"sqlite:///{tmp_path / 'home' / 'data' / 'aitrader.db'}"


def test_two_stores_have_distinct_keys_and_no_password_is_shown() -> None:
    first, second = "sqlite:////a/one/aitrader.db", "sqlite:////b/two/aitrader.db"
    assert store_key(first) != store_key(second)
    assert store_key(first).startswith("aitrader-") and store_key(first) == store_key(first)
    url = "postgresql+psycopg://u:s3cret@db/aitrader"
    assert "s3cret" not in shown_url(url) and "s3cret" not in store_key(url)


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
    engine.dispose()


def test_the_migrations_match_the_tables(engine: Engine) -> None:
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []


def test_downgrade_and_upgrade_round_trip(engine: Engine) -> None:
    command.downgrade(alembic_config(engine), "base")
    assert current_revision(engine) is None
    assert upgrade(engine) == head_revision()
    assert "modelday" in inspect(engine).get_table_names()


def _model_day(session: Session, portfolio: str = "p", day: date = date(2025, 10, 2)) -> ModelDay:
    return add_model_day(session, day, portfolio)


def test_a_portfolio_day_can_be_simulated_only_once(session: Session) -> None:
    _model_day(session, portfolio="gpt-5")
    session.commit()
    with pytest.raises(IntegrityError):
        _model_day(session, portfolio="gpt-5")
    session.rollback()
    assert len(session.exec(select(ModelDay)).all()) == 1


def test_foreign_keys_hold_and_deleting_a_run_cascades(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Trade(
                model_day_id=12345,
                seq=1,
                side="buy",
                symbol="A",
                shares=1,
                price=1.0,
                cash_after=0.0,
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()
    with session_scope(engine) as session:
        model_day = _model_day(session)
        session.add(Holding(model_day_id=model_day.id, symbol="AAPL", shares=3, value=1.0))
    with session_scope(engine) as session:
        session.delete(session.exec(select(Run)).one())
    with Session(engine) as session:
        assert session.exec(select(ModelDay)).all() == []
        assert session.exec(select(Holding)).all() == []


def test_session_scope_rolls_back_on_error(engine: Engine) -> None:
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.add(Run(name="doomed"))
        session.flush()
        raise RuntimeError("boom")
    with Session(engine) as session:
        assert session.exec(select(Run)).all() == []


def test_timestamps_come_back_as_aware_utc(session: Session) -> None:
    run = Run(name="t")
    session.add(run)
    session.commit()
    session.expire_all()
    stored = session.get(Run, run.id)
    assert stored.created_at.utcoffset() is not None
    assert stored.created_at.utcoffset().total_seconds() == 0


def test_an_unreachable_store_is_one_clear_error() -> None:
    from models.errors import StoreError

    engine = create_store_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2")
    with pytest.raises(StoreError, match="cannot migrate the store"):
        upgrade(engine)


def test_concurrent_first_uses_migrate_the_store_once(store_url: str) -> None:
    import threading

    from sqlalchemy import inspect as inspect_db

    engine = create_store_engine(store_url)
    command.downgrade(alembic_config(engine), "base")
    errors: list[Exception] = []

    def first_use() -> None:
        other = create_store_engine(store_url)
        try:
            upgrade(other)
        except Exception as exc:
            errors.append(exc)
        finally:
            other.dispose()

    workers = [threading.Thread(target=first_use) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    assert current_revision(engine) == head_revision()
    assert "modelday" in inspect_db(engine).get_table_names()
