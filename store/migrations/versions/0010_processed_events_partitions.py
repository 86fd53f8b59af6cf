"""processed_events: keyed by the event's UTC day too; partitioned by that day on PostgreSQL

Ingest with millions of remembered event ids writes into today's partition, whose index stays
small, and retention drops whole days (service/retention.py) instead of deleting rows.

The rows stored before the upgrade do not know when their event occurred: they take the day they
were processed. A redelivery of such an event dated on another day (it occurred just before
midnight and was applied just after) is then applied again, as one past the retention is:
state moves only forward in time and decision ids are stable, so nothing changes twice.

PostgreSQL: a partition for each day the rows were processed on and for today and the next 3
days (UTC), and a DEFAULT partition. Upgrade and downgrade copy every row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from datetime import date, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_AHEAD = 3


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    op.drop_index("ix_processed_events_processed_at", table_name="processed_events")
    if op.get_bind().dialect.name == "postgresql":  # the name the plain table's key takes
        op.execute(
            "ALTER TABLE processed_events "
            "RENAME CONSTRAINT processed_events_pkey TO processed_events_partitioned_pkey"
        )
    op.rename_table("processed_events", "processed_events_partitioned")
    _create_plain("processed_events", with_day=False)
    op.execute(
        "INSERT INTO processed_events (account_id, event_id, processed_at) "
        "SELECT account_id, event_id, min(processed_at) FROM processed_events_partitioned "
        "GROUP BY account_id, event_id"
    )
    op.drop_table("processed_events_partitioned")  # its partitions go with it
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])


def _create_plain(name: str, *, with_day: bool) -> None:
    columns = [
        sa.Column("account_id", sa.String(length=200), primary_key=True),
        sa.Column("event_id", sa.String(length=200), primary_key=True),
    ]
    if with_day:
        columns.append(sa.Column("occurred_on", sa.Date(), primary_key=True))
    columns.append(sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False))
    op.create_table(name, *columns)


def _upgrade_sqlite() -> None:
    op.drop_index("ix_processed_events_processed_at", table_name="processed_events")
    op.rename_table("processed_events", "processed_events_plain")
    _create_plain("processed_events", with_day=True)
    # processed_at is naive UTC text on SQLite; date() gives the 'YYYY-MM-DD' sa.Date reads.
    op.execute(
        "INSERT INTO processed_events (account_id, event_id, occurred_on, processed_at) "
        "SELECT account_id, event_id, date(processed_at), processed_at FROM processed_events_plain"
    )
    op.drop_table("processed_events_plain")
    op.create_index("ix_processed_events_processed_at", "processed_events", ["processed_at"])


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE processed_events RENAME TO processed_events_plain")
    op.execute(
        "ALTER TABLE processed_events_plain "
        "RENAME CONSTRAINT processed_events_pkey TO processed_events_plain_pkey"
    )
    op.execute(
        "ALTER INDEX ix_processed_events_processed_at "
        "RENAME TO ix_processed_events_plain_processed_at"
    )
    op.execute(
        "CREATE TABLE processed_events ("
        " account_id VARCHAR(200) NOT NULL,"
        " event_id VARCHAR(200) NOT NULL,"
        " occurred_on DATE NOT NULL,"
        " processed_at TIMESTAMP WITH TIME ZONE NOT NULL,"
        " CONSTRAINT processed_events_pkey PRIMARY KEY (account_id, event_id, occurred_on)"
        ") PARTITION BY RANGE (occurred_on)"
    )
    op.execute("CREATE INDEX ix_processed_events_processed_at ON processed_events (processed_at)")
    op.execute("CREATE TABLE processed_events_default PARTITION OF processed_events DEFAULT")
    today: date = bind.scalar(sa.text("SELECT (now() AT TIME ZONE 'UTC')::date"))
    stored = bind.scalars(
        sa.text(
            "SELECT DISTINCT (processed_at AT TIME ZONE 'UTC')::date FROM processed_events_plain"
        )
    )
    days = set(stored) | {today + timedelta(days=n) for n in range(_AHEAD + 1)}
    for day in sorted(days):
        op.execute(
            f"CREATE TABLE processed_events_p{day:%Y%m%d} PARTITION OF processed_events "
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')"
        )
    op.execute(
        "INSERT INTO processed_events (account_id, event_id, occurred_on, processed_at) "
        "SELECT account_id, event_id, (processed_at AT TIME ZONE 'UTC')::date, processed_at "
        "FROM processed_events_plain"
    )
    op.execute("DROP TABLE processed_events_plain")
