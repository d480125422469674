"""an hourly day traded live is sealed session group by session group

`sessionseal` holds the chain entries written while a day is in progress (status `partial`): the
sessions begun so far, their orders, fills and conversation, and the book after them, hashed into
the portfolio's chain before the rest of the day is known (models/seals.py).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = sqlmodel.sql.sqltypes.AutoString
    op.create_table(
        "sessionseal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_day_id", sa.Integer(), nullable=False),
        sa.Column("portfolio", text(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("entry", sa.JSON(), nullable=False),
        sa.Column("seal", text(), nullable=False),
        sa.ForeignKeyConstraint(["model_day_id"], ["modelday.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("portfolio", "seq", name="uq_session_seal_portfolio_seq"),
    )
    op.create_index("ix_sessionseal_model_day_id", "sessionseal", ["model_day_id"])
    op.create_index("ix_sessionseal_portfolio", "sessionseal", ["portfolio"])


def downgrade() -> None:
    op.drop_index("ix_sessionseal_portfolio", table_name="sessionseal")
    op.drop_index("ix_sessionseal_model_day_id", table_name="sessionseal")
    op.drop_table("sessionseal")
