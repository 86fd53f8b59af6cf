"""Which events were already applied: the guard that makes redelivery harmless.

A record is keyed by (account_id, event_id, the UTC day of occurred_at). A redelivery carries
the event's own occurred_at, so it always meets its first delivery's key.

On PostgreSQL `processed_events` is partitioned by that day (migration 0010): one partition per
day, made a few days ahead by `maintain`, and a DEFAULT partition for the days that have none
(an event that occurred before the oldest partition, or beyond the ones made ahead). Ingest
writes into today's partition, whose index stays small whatever the table holds, and retention
drops a whole day instead of deleting its rows. SQLite has the same table, unpartitioned.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import column, delete, select, table, text, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import TableClause

from store.db import UTCDateTime, bulk_insert, keys_json
from store.tables import processed_events

EventKey = tuple[str, str]
"""(account_id, event_id)"""

DEFAULT_PARTITION = "processed_events_default"
_DAY_PARTITION = re.compile(r"^processed_events_p(\d{8})$")
# A partition DDL waits at most this long for ingest's short transactions to let go of the
# table: claims queue behind a waiting DDL, so a long transaction ahead of it must not stall
# ingest for longer; the next run tries again.
_DDL_LOCK_TIMEOUT = "1s"
_LOCK = 0x636F6E766C696665  # "convlife": the advisory lock of the partition maintenance


def claim(
    connection: Connection, occurred: Mapping[EventKey, datetime], now: datetime
) -> set[EventKey]:
    """Record these events as applied; return the keys that were not already.

    `occurred` maps each key to the event's occurred_at (aware); its UTC day is part of the
    record. Within the caller's transaction: if it rolls back, the claim goes with it. A
    concurrent transaction claiming the same key waits for this one and then finds it taken.
    """
    rows = [
        {
            "account_id": account_id,
            "event_id": event_id,
            "occurred_on": occurred_at.astimezone(UTC).date(),
            "processed_at": now,
        }
        for (account_id, event_id), occurred_at in sorted(occurred.items())
    ]
    inserted = bulk_insert(
        connection,
        processed_events,
        rows,
        key=["account_id", "event_id", "occurred_on"],
        on_conflict="nothing",
        returning=[processed_events.c.account_id, processed_events.c.event_id],
    )
    return {(row.account_id, row.event_id) for row in inserted}


def applied_already(connection: Connection, occurred: Mapping[EventKey, datetime]) -> set[EventKey]:
    """Of these keys, those already recorded as applied: a read, claiming nothing (SQLite: the
    ingest's guess made before its write turn, which `claim` confirms or refutes)."""
    if connection.dialect.name != "sqlite":
        raise NotImplementedError("applied_already reads SQLite's table only")
    keys = [
        (account_id, event_id, occurred_at.astimezone(UTC).date().isoformat())
        for (account_id, event_id), occurred_at in occurred.items()
    ]
    found = connection.execute(_APPLIED_ALREADY, {"keys": keys_json(keys)})
    return {(account_id, event_id) for account_id, event_id in found}


# Each key probes the primary key (CROSS JOIN keeps the keys the outer loop).
_APPLIED_ALREADY = text(
    "SELECT p.account_id, p.event_id FROM json_each(:keys) AS k"
    " CROSS JOIN processed_events AS p ON p.account_id = k.value ->> 0"
    " AND p.event_id = k.value ->> 1 AND p.occurred_on = k.value ->> 2"
)


def forget_before(connection: Connection, before: datetime, limit: int) -> int:
    """Delete up to `limit` records processed before `before`; returns how many.

    On SQLite that is the whole retention. On PostgreSQL only the DEFAULT partition is pruned
    row by row (the day partitions are dropped whole by `maintain`). A redelivery older than
    that is no longer recognised as a duplicate, but its effect is still idempotent (state
    moves only forward in time, decision ids are stable).
    """
    target: TableClause = processed_events
    if connection.dialect.name == "postgresql":
        target = table(
            DEFAULT_PARTITION,
            column("account_id"),
            column("event_id"),
            column("occurred_on"),
            column("processed_at", UTCDateTime()),
        )
    key = tuple_(target.c.account_id, target.c.event_id, target.c.occurred_on)
    oldest = (
        select(target.c.account_id, target.c.event_id, target.c.occurred_on)
        .where(target.c.processed_at < before)
        .order_by(target.c.processed_at)
        .limit(limit)
    )
    result = connection.execute(delete(target).where(key.in_(oldest)))
    return int(result.rowcount)


@dataclass(frozen=True)
class Maintenance:
    """What `maintain` did: the days whose partition it made, and those it dropped."""

    created: list[date] = field(default_factory=list)
    dropped: list[date] = field(default_factory=list)


def day_partitions(connection: Connection) -> list[date]:
    """The days that have a partition of their own, oldest first (none on SQLite)."""
    if connection.dialect.name != "postgresql":
        return []
    names = connection.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'processed_events'::regclass"
        )
    )
    days = []
    for name in names:
        matched = _DAY_PARTITION.match(name)
        if matched:
            days.append(datetime.strptime(matched.group(1), "%Y%m%d").date())
    return sorted(days)


def maintain(connection: Connection, now: datetime, before: datetime, ahead: int) -> Maintenance:
    """PostgreSQL: make the partitions of today (UTC) and the `ahead` days after it, and drop
    those of the days that ended at or before `before`. Nothing to do on SQLite.

    Run it in a transaction of its own: it takes short table locks, waiting at most 1 s.
    A day partition made after rows of that day went to the DEFAULT partition takes them over.
    """
    if connection.dialect.name != "postgresql":
        return Maintenance()
    connection.execute(text(f"SET LOCAL lock_timeout = '{_DDL_LOCK_TIMEOUT}'"))
    # Two runs at once (a slow one overlapping the next tick) would both make the same day.
    if not connection.scalar(text("SELECT pg_try_advisory_xact_lock(:lock)"), {"lock": _LOCK}):
        return Maintenance()
    existing = set(day_partitions(connection))
    today = now.astimezone(UTC).date()
    wanted = [today + timedelta(days=n) for n in range(ahead + 1)]
    created = [day for day in wanted if day not in existing]
    for day in created:
        create_day_partition(connection, day)
    cutoff = before.astimezone(UTC)
    dropped = [
        day
        for day in sorted(existing)
        if datetime.combine(day + timedelta(days=1), time(), UTC) <= cutoff
    ]
    for day in dropped:
        connection.execute(text(f'DROP TABLE "{partition_name(day)}"'))
    return Maintenance(created=created, dropped=dropped)


def partition_name(day: date) -> str:
    return f"processed_events_p{day:%Y%m%d}"


def create_day_partition(connection: Connection, day: date) -> None:
    """Attach a partition for `day`, moving that day's rows out of the DEFAULT partition
    (PostgreSQL refuses a partition whose rows the DEFAULT one already holds)."""
    name = partition_name(day)
    bounds = {"day": day, "next": day + timedelta(days=1)}
    # The DEFAULT partition is locked first so no claim adds a row of that day between the
    # move and the attach (which would make the attach fail).
    connection.execute(text(f'LOCK TABLE "{DEFAULT_PARTITION}" IN SHARE ROW EXCLUSIVE MODE'))
    connection.execute(
        text(
            f'CREATE TABLE "{name}" '
            "(LIKE processed_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
        )
    )
    connection.execute(
        text(
            f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" '
            "WHERE occurred_on >= :day AND occurred_on < :next RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM moved'
        ),
        bounds,
    )
    connection.execute(
        text(
            f'ALTER TABLE processed_events ATTACH PARTITION "{name}" '
            f"FOR VALUES FROM ('{day.isoformat()}') TO ('{bounds['next'].isoformat()}')"
        )
    )
