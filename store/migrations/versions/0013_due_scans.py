"""due_scans: the scopes (an account, or a line of it) whose open conversations a settings
change made due at once, left for the sweep to find by last activity instead of rewriting each
one's next check before closing it

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "due_scans",
        sa.Column("account_id", sa.String(length=200), primary_key=True),
        sa.Column("line_id", sa.String(length=200), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_due_scans_since", "due_scans", ["since"])


def downgrade() -> None:
    # A pending scan's conversations keep next checks later than their settings give: the
    # schema before this revision has nothing that would find them. Run `convlife reindex`
    # after downgrading if any scan was pending.
    op.drop_table("due_scans")
