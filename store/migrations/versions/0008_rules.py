"""the rules of issue 13: per-line overrides, agent presence and capacity, close warnings,
business hours

- accounts: close_warning_before, business_hours (JSON), route_to_away_agents,
  window_counts_business_hours;
- lines: overrides (JSON of the settings the line overrides);
- agents: presence, capacity;
- conversations: close_warned_at; indexes for counting an agent's open conversations, an
  account's open conversations by last activity, and for paging a line's open conversations.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status = 'open'"


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.add_column(sa.Column("close_warning_before", sa.Interval(), nullable=True))
        batch_op.add_column(sa.Column("business_hours", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "route_to_away_agents", sa.Boolean(), nullable=False, server_default=sa.true()
            )
        )
        batch_op.add_column(
            sa.Column(
                "window_counts_business_hours",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    with op.batch_alter_table("lines") as batch_op:
        batch_op.add_column(sa.Column("overrides", sa.Text(), nullable=True))
    with op.batch_alter_table("agents") as batch_op:
        batch_op.add_column(
            sa.Column("presence", sa.String(8), nullable=False, server_default="online")
        )
        batch_op.add_column(sa.Column("capacity", sa.Integer(), nullable=True))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("close_warned_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_conversations_open_by_agent",
        "conversations",
        ["account_id", "assignee_agent_id"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_conversations_open_line",
        "conversations",
        ["account_id", "line_id", "conversation_id"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )
    op.create_index(
        "ix_conversations_open_activity",
        "conversations",
        ["account_id", "last_activity_at", "line_id"],
        postgresql_where=sa.text(_OPEN),
        sqlite_where=sa.text(_OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_open_activity", table_name="conversations")
    op.drop_index("ix_conversations_open_line", table_name="conversations")
    op.drop_index("ix_conversations_open_by_agent", table_name="conversations")
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("close_warned_at")
    with op.batch_alter_table("agents") as batch_op:
        batch_op.drop_column("capacity")
        batch_op.drop_column("presence")
    with op.batch_alter_table("lines") as batch_op:
        batch_op.drop_column("overrides")
    with op.batch_alter_table("accounts") as batch_op:
        batch_op.drop_column("window_counts_business_hours")
        batch_op.drop_column("route_to_away_agents")
        batch_op.drop_column("business_hours")
        batch_op.drop_column("close_warning_before")
