"""Alembic environment: runs the store's migrations on the engine the caller passes in."""

from alembic import context
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables on SQLModel.metadata)
from models.engine import create_store_engine

target_metadata = SQLModel.metadata
config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_store_engine(
        config.get_main_option("sqlalchemy.url")
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
