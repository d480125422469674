"""a completed model-day is sealed into its portfolio's hash chain, with when it was decided

`decided_at` is when the model's decision was made (wall clock, UTC) and `track` whether that was
before its session closed (`live`) or not (`backtest`). `seal_seq`, `seal_prev` and `seal` are the
day's place in its portfolio's chain, the previous entry's hash and its own (models/seals.py).
Days completed before this revision have none: `aitrader results verify` reports them as unsealed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("decided_at", "track", "seal_seq", "seal_prev", "seal")


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.add_column(
        "modelday", sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
    )
    op.add_column("modelday", sa.Column("track", text(), nullable=True))
    op.add_column("modelday", sa.Column("seal_seq", sa.Integer(), nullable=True))
    op.add_column("modelday", sa.Column("seal_prev", text(), nullable=True))
    op.add_column("modelday", sa.Column("seal", text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("modelday") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
