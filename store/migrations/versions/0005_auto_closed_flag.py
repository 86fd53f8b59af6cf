"""conversations.auto_closed: the status is the sweep's automatic close

An automatic close keeps status_changed_at at the open that started the idle period it ended, so
that a close (or open) dated within that period and delivered after the sweep replaces it. Rows
closed by earlier code keep false and behave as before (their status_changed_at is the sweep's
time).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(
            sa.Column("auto_closed", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("auto_closed")
