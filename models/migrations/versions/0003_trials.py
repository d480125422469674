"""repeated trials: each model-day names its trial, each run its trial count

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every existing model-day and run is trial 1 of a single-trial backtest.
    with op.batch_alter_table("modelday", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trial", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trials", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_column("trials")
    with op.batch_alter_table("modelday", schema=None) as batch_op:
        batch_op.drop_column("trial")
