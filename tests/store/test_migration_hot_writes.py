"""Migration 0014 on PostgreSQL: `processed_at` is indexed where retention reads it (the DEFAULT
partition) and nowhere else, and the outboxes keep their id lists uncompressed; downgrade puts
both back. SQLite keeps its index on the whole table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from store import idempotency
from store.db import make_engine
from store.migrate import alembic_config
from tests.support import utc

DAY = utc("2001-06-01T09:00:00")


def _indexed_on_processed_at(engine: Engine) -> set[str]:
    """The tables (partitions included) with an index on `processed_at`."""
    found = set()
    inspector = inspect(engine)
    for name in inspector.get_table_names():
        if name.startswith("processed_events"):
            indexes = inspector.get_indexes(name)
            if any(index["column_names"] == ["processed_at"] for index in indexes):
                found.add(name)
    return found


def _outbox_storage(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(
            connection.execute(
                text(
                    "SELECT attstorage FROM pg_attribute WHERE attname = 'decision_ids' "
                    "AND attrelid IN ('decision_outbox'::regclass, 'webhook_outbox'::regclass)"
                )
            ).scalars()
        )


def test_only_the_default_partition_indexes_when_its_records_were_processed(
    fresh_url: str,
) -> None:
    config = alembic_config(fresh_url)
    command.upgrade(config, "head")
    engine = make_engine(fresh_url)
    try:
        if engine.dialect.name != "postgresql":
            assert _indexed_on_processed_at(engine) == {"processed_events"}
            return
        with engine.begin() as connection:  # a day partition made after the upgrade
            idempotency.maintain(connection, DAY, DAY - timedelta(days=365), ahead=0)
        assert _indexed_on_processed_at(engine) == {"processed_events_default"}
        assert _outbox_storage(engine) == {"e"}  # EXTERNAL: out of line, not compressed

        command.downgrade(config, "0013")
        assert "processed_events_p20010601" in _indexed_on_processed_at(engine)
        assert "processed_events_default" in _indexed_on_processed_at(engine)
        assert _outbox_storage(engine) == {"x"}  # EXTENDED, PostgreSQL's default for text
    finally:
        engine.dispose()


def test_the_default_partitions_prune_reads_its_index(fresh_url: str) -> None:
    command.upgrade(alembic_config(fresh_url), "head")
    engine = make_engine(fresh_url)
    try:
        if engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no partitions")
        with engine.begin() as connection:
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                connection.execute(
                    text(
                        "EXPLAIN SELECT account_id FROM processed_events_default "
                        "WHERE processed_at < now() ORDER BY processed_at LIMIT 10"
                    )
                ).scalars()
            )
        assert "ix_processed_events_default_processed_at" in plan, plan
    finally:
        engine.dispose()
