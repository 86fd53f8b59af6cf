"""PostgreSQL: two writes every ingest message makes, lightened

- `processed_events.processed_at` is indexed in the DEFAULT partition only. Retention reads it
  there alone (store/idempotency.py `forget_before`); the day partitions are dropped whole, so
  their index on it was written at every claimed event and never read: about 1 µs of the
  database's time per event (scratch: 50 claims of 500 events, 9.2-9.4 µs an event without it,
  10.3-10.5 with it).
- The outboxes' `decision_ids` (a JSON array of a batch's ids, 19 KB for 500 decisions) are stored
  out of line uncompressed (STORAGE EXTERNAL): compressing each batch's list, to read it back
  once and delete it within the second, cost about 1 µs a decision (scratch: 13.3-13.5 µs a
  decision for the decisions' statement against 14.2-14.6).

SQLite keeps its index on the whole table and has no storage settings: nothing changes there.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_INDEX = "ix_processed_events_default_processed_at"
_OUTBOXES = ("decision_outbox", "webhook_outbox")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_processed_events_processed_at", table_name="processed_events")
    op.create_index(DEFAULT_INDEX, "processed_events_default", ["processed_at"])
    for outbox in _OUTBOXES:
        op.execute(f"ALTER TABLE {outbox} ALTER COLUMN decision_ids SET STORAGE EXTERNAL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for outbox in _OUTBOXES:
        op.execute(f"ALTER TABLE {outbox} ALTER COLUMN decision_ids SET STORAGE EXTENDED")
    op.drop_index(DEFAULT_INDEX, table_name="processed_events_default")
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])
