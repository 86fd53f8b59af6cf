"""webhook_outbox: a row per batch of decisions not yet fanned out to webhooks, instead of
decisions.webhooks_fanned_out_at

Marking each decision fanned out was an UPDATE of its wide row, and of every index on it, per
decision (a dispatch run did it for every decision, subscriptions or not), and its partial index
was written by every decision insert. The outbox row is one narrow insert (in the same statement
as decision_outbox's on PostgreSQL) and one delete per transaction's batch. The decisions not yet
fanned out at the upgrade are put in the outbox in batches of 500 (by decision time), so the next
dispatch run fans them out. `webhooks_fanned_out_at` and its partial index are dropped.

Downgrade: every decision not in the outbox is marked fanned out at its decision time.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-26
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500

_decisions = sa.table(
    "decisions",
    sa.column("decision_id", sa.String),
    sa.column("decided_at", sa.DateTime(timezone=True)),
    sa.column("webhooks_fanned_out_at", sa.DateTime(timezone=True)),
)
_outbox = sa.table(
    "webhook_outbox",
    sa.column("first_decision_id", sa.String),
    sa.column("decision_ids", sa.Text),
    sa.column("size", sa.Integer),
    sa.column("made_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "webhook_outbox",
        sa.Column("first_decision_id", sa.String(length=36), primary_key=True),
        sa.Column("decision_ids", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_webhook_outbox_made_at", "webhook_outbox", ["made_at"])
    waiting = (
        op.get_bind()
        .execute(
            sa.select(_decisions.c.decision_id, _decisions.c.decided_at)
            .where(_decisions.c.webhooks_fanned_out_at.is_(None))
            .order_by(_decisions.c.decided_at, _decisions.c.decision_id)
        )
        .all()
    )
    for start in range(0, len(waiting), _BATCH):
        batch = waiting[start : start + _BATCH]
        ids = [row.decision_id for row in batch]
        op.get_bind().execute(
            _outbox.insert().values(
                first_decision_id=min(ids),
                decision_ids=json.dumps(ids),
                size=len(ids),
                made_at=batch[0].decided_at,
            )
        )
    op.drop_index("ix_decisions_not_fanned_out", table_name="decisions")
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("webhooks_fanned_out_at")


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.add_column(sa.Column("webhooks_fanned_out_at", sa.DateTime(timezone=True)))
    bind = op.get_bind()
    bind.execute(_decisions.update().values(webhooks_fanned_out_at=_decisions.c.decided_at))
    waiting = [
        decision_id
        for (ids,) in bind.execute(sa.select(_outbox.c.decision_ids))
        for decision_id in json.loads(ids)
    ]
    for start in range(0, len(waiting), _BATCH):
        bind.execute(
            _decisions.update()
            .where(_decisions.c.decision_id.in_(waiting[start : start + _BATCH]))
            .values(webhooks_fanned_out_at=None)
        )
    op.create_index(
        "ix_decisions_not_fanned_out",
        "decisions",
        ["decided_at"],
        postgresql_where=sa.text("webhooks_fanned_out_at IS NULL"),
        sqlite_where=sa.text("webhooks_fanned_out_at IS NULL"),
    )
    op.drop_index("ix_webhook_outbox_made_at", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
