"""Migration 0010 on a store that already holds applied-event records: upgrade keys them by the
day they were processed (on PostgreSQL, into day partitions) and keeps every one; downgrade
brings them back to the plain table."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from store import idempotency
from store.db import make_engine
from store.migrate import alembic_config
from tests.support import utc

PROCESSED = [
    utc("2026-03-01T23:59:59.999999"),
    utc("2026-03-02T00:00:00"),
    utc("2026-03-05T10:00:00"),
]


def records(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT account_id, event_id FROM processed_events"))
        return sorted((row.account_id, row.event_id) for row in rows)


def test_the_upgrade_keeps_every_record_and_a_redelivery_is_still_a_duplicate(
    fresh_url: str,
) -> None:
    config = alembic_config(fresh_url)
    command.upgrade(config, "0009")
    engine = make_engine(fresh_url)
    stored = [("acct", f"e{n}") for n in range(len(PROCESSED))]
    with engine.begin() as connection:
        for (account, event), at in zip(stored, PROCESSED, strict=True):
            connection.execute(
                text("INSERT INTO processed_events VALUES (:a, :e, :at)"),
                {"a": account, "e": event, "at": at},
            )

    command.upgrade(config, "head")

    assert records(engine) == stored
    with engine.begin() as connection:
        # An event applied a moment after it occurred, redelivered after the upgrade.
        redelivered = dict(zip(stored, PROCESSED, strict=True))
        assert idempotency.claim(connection, redelivered, utc("2026-03-06T00:00:00")) == set()
        days = [day.isoformat() for day in idempotency.day_partitions(connection)]
    if engine.dialect.name == "postgresql":
        assert {"2026-03-01", "2026-03-02", "2026-03-05"} <= set(days)
        with engine.connect() as connection:
            partitions = connection.scalars(
                text("SELECT DISTINCT tableoid::regclass::text FROM processed_events")
            )
            assert sorted(partitions) == [
                "processed_events_p20260301",
                "processed_events_p20260302",
                "processed_events_p20260305",
            ]
    engine.dispose()


def test_the_downgrade_brings_every_record_back_to_the_plain_table(fresh_url: str) -> None:
    config = alembic_config(fresh_url)
    command.upgrade(config, "head")
    engine = make_engine(fresh_url)
    with engine.begin() as connection:
        idempotency.claim(connection, {("acct", "e1"): PROCESSED[0]}, PROCESSED[0])
        idempotency.claim(connection, {("acct", "e2"): PROCESSED[2]}, PROCESSED[2])

    command.downgrade(config, "0009")

    assert records(engine) == [("acct", "e1"), ("acct", "e2")]
    with engine.connect() as connection:
        columns = connection.execute(text("SELECT * FROM processed_events")).keys()
        assert list(columns) == ["account_id", "event_id", "processed_at"]
    command.upgrade(config, "head")  # and up again
    assert records(engine) == [("acct", "e1"), ("acct", "e2")]
    engine.dispose()
