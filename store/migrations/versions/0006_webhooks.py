"""webhooks: subscriptions, one delivery row per (subscription, decision), an attempts log, and
decisions.webhooks_fanned_out_at (the fan-out's outbox mark)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.add_column(
            sa.Column("webhooks_fanned_out_at", sa.DateTime(timezone=True), nullable=True)
        )
    # Decisions made before webhooks existed had no subscriber: mark them fanned out, so the
    # first fan-out does not walk the whole history.
    op.execute(
        "UPDATE decisions SET webhooks_fanned_out_at = published_at "
        "WHERE webhooks_fanned_out_at IS NULL AND published_at IS NOT NULL"
    )
    op.execute(
        "UPDATE decisions SET webhooks_fanned_out_at = decided_at "
        "WHERE webhooks_fanned_out_at IS NULL"
    )
    op.create_index(
        "ix_decisions_not_fanned_out",
        "decisions",
        ["decided_at"],
        postgresql_where=sa.text("webhooks_fanned_out_at IS NULL"),
        sqlite_where=sa.text("webhooks_fanned_out_at IS NULL"),
    )
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("account_id", sa.String(200), nullable=True),
        sa.Column("types", sa.Text(), nullable=True),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id",
            sa.Integer(),
            sa.ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("decision_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index(
        "ux_webhook_deliveries_once",
        "webhook_deliveries",
        ["subscription_id", "decision_id"],
        unique=True,
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["subscription_id", "next_attempt_at"],
        postgresql_where=sa.text("status IN ('pending', 'failed')"),
        sqlite_where=sa.text("status IN ('pending', 'failed')"),
    )
    op.create_index(
        "ix_webhook_deliveries_in_flight",
        "webhook_deliveries",
        ["subscription_id"],
        postgresql_where=sa.text("leased_until IS NOT NULL"),
        sqlite_where=sa.text("leased_until IS NOT NULL"),
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "delivery_id",
            sa.Integer(),
            sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_decisions_not_fanned_out", table_name="decisions")
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("webhooks_fanned_out_at")
