"""each store knows who it is: an id made when it is created

A store deleted and created again at the same URL is a new store: caches keyed by its id (the
model-day task cache) never answer for the old one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "storeidentity",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute(table.insert().values(id=uuid.uuid4().hex, created_at=sa.func.current_timestamp()))


def downgrade() -> None:
    op.drop_table("storeidentity")
