"""trades and holdings hold fractional quantities; a trade knows its session; a run its currency

Crypto trades fractions of a coin; whole stock shares keep their values (an integer is stored
as the same float). An hourly model-day's trades say which of the day's sessions they filled in.
Runs before this one counted dollars.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("trade", "holding")


def upgrade() -> None:
    op.add_column("trade", sa.Column("session_at", sa.DateTime(), nullable=True))
    op.add_column("run", sa.Column("currency", sa.String(), nullable=False, server_default="USD"))
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "shares", existing_type=sa.Integer(), type_=sa.Float(), existing_nullable=False
            )


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_column("currency")
    with op.batch_alter_table("trade") as batch:
        batch.drop_column("session_at")
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "shares", existing_type=sa.Float(), type_=sa.Integer(), existing_nullable=False
            )
