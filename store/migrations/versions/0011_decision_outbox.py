"""decision_outbox: a row per batch of decisions not yet on the stream, instead of
decisions.published_at

Marking each decision published was an UPDATE of its wide row, and of every index on it, per
decision; the outbox row is one narrow insert and one delete per transaction's batch. The
decisions still unpublished at the upgrade are put in the outbox in batches of 500 (by decision
time), so the next relay sends them. `published_at` and its partial index are dropped.

Downgrade: every decision not in the outbox is marked published at its decision time.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500

_decisions = sa.table(
    "decisions",
    sa.column("decision_id", sa.String),
    sa.column("decided_at", sa.DateTime(timezone=True)),
    sa.column("published_at", sa.DateTime(timezone=True)),
)
_outbox = sa.table(
    "decision_outbox",
    sa.column("first_decision_id", sa.String),
    sa.column("decision_ids", sa.Text),
    sa.column("size", sa.Integer),
    sa.column("made_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.create_table(
        "decision_outbox",
        sa.Column("first_decision_id", sa.String(length=36), primary_key=True),
        sa.Column("decision_ids", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_decision_outbox_made_at", "decision_outbox", ["made_at"])
    unpublished = (
        op.get_bind()
        .execute(
            sa.select(_decisions.c.decision_id, _decisions.c.decided_at)
            .where(_decisions.c.published_at.is_(None))
            .order_by(_decisions.c.decided_at, _decisions.c.decision_id)
        )
        .all()
    )
    for start in range(0, len(unpublished), _BATCH):
        batch = unpublished[start : start + _BATCH]
        ids = [row.decision_id for row in batch]
        op.get_bind().execute(
            _outbox.insert().values(
                first_decision_id=min(ids),
                decision_ids=json.dumps(ids),
                size=len(ids),
                made_at=batch[0].decided_at,
            )
        )
    op.drop_index("ix_decisions_unpublished", table_name="decisions")
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.drop_column("published_at")


def downgrade() -> None:
    with op.batch_alter_table("decisions") as batch_op:
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True)))
    bind = op.get_bind()
    bind.execute(_decisions.update().values(published_at=_decisions.c.decided_at))
    waiting = [
        decision_id
        for (ids,) in bind.execute(sa.select(_outbox.c.decision_ids))
        for decision_id in json.loads(ids)
    ]
    for start in range(0, len(waiting), _BATCH):
        bind.execute(
            _decisions.update()
            .where(_decisions.c.decision_id.in_(waiting[start : start + _BATCH]))
            .values(published_at=None)
        )
    op.create_index(
        "ix_decisions_unpublished",
        "decisions",
        ["decided_at"],
        postgresql_where=sa.text("published_at IS NULL"),
        sqlite_where=sa.text("published_at IS NULL"),
    )
    op.drop_index("ix_decision_outbox_made_at", table_name="decision_outbox")
    op.drop_table("decision_outbox")
