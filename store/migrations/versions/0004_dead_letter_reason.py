"""dead letters keep their reason code; dead letters by account and decisions by time are indexed

`dead_letters.reason` is the code of `events.parsing.ReasonCode` (NULL for rows from before).
`ix_dead_letters_account` serves `convlife dead-letters list --account`;
`ix_decisions_decided_at` serves `convlife decisions export --since`, page by page.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letters") as batch_op:
        batch_op.add_column(sa.Column("reason", sa.String(16), nullable=True))
        batch_op.create_index("ix_dead_letters_account", ["account_id", "id"])
    op.create_index("ix_decisions_decided_at", "decisions", ["decided_at", "decision_id"])


def downgrade() -> None:
    op.drop_index("ix_decisions_decided_at", table_name="decisions")
    with op.batch_alter_table("dead_letters") as batch_op:
        batch_op.drop_index("ix_dead_letters_account")
        batch_op.drop_column("reason")
