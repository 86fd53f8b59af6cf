"""conversations.previous_*: what the current open replaced, for routing

A platform's open dated when the contact wrote can arrive before the message; routing then counts
the conversation as it stood before that open (policies.routing). Rows stored before the upgrade
have NULLs, so their current open is taken as the conversation's first; their next open or close
sets them right.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("previous_closed_at", sa.DateTime(timezone=True)))
        batch_op.add_column(sa.Column("previous_closed_by", sa.String(length=8)))
        batch_op.add_column(sa.Column("previous_closing_agent_id", sa.String(length=200)))
        batch_op.add_column(sa.Column("previous_close_reason", sa.String(length=500)))
        batch_op.add_column(sa.Column("previous_opened_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        for name in (
            "previous_opened_at",
            "previous_close_reason",
            "previous_closing_agent_id",
            "previous_closed_by",
            "previous_closed_at",
        ):
            batch_op.drop_column(name)
