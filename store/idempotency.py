"""Which events were already applied: the guard that makes redelivery harmless."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.engine import Connection

from store.db import bulk_insert
from store.tables import processed_events

EventKey = tuple[str, str]
"""(account_id, event_id)"""


def claim(connection: Connection, keys: Collection[EventKey], now: datetime) -> set[EventKey]:
    """Record these events as applied; return those that were not already.

    Within the caller's transaction: if it rolls back, the claim goes with it. A concurrent
    transaction claiming the same key waits for this one and then finds it taken.
    """
    rows = [{"account_id": a, "event_id": e, "processed_at": now} for a, e in sorted(set(keys))]
    inserted = bulk_insert(
        connection,
        processed_events,
        rows,
        key=["account_id", "event_id"],
        on_conflict="nothing",
        returning=[processed_events.c.account_id, processed_events.c.event_id],
    )
    return {(row.account_id, row.event_id) for row in inserted}


def forget_before(connection: Connection, before: datetime, limit: int) -> int:
    """Drop the record of up to `limit` events applied before `before`; returns how many.

    Retention: a redelivery older than that is no longer recognised as a duplicate, but its
    effect is still idempotent (state moves only forward in time, decision ids are stable).
    """
    oldest = (
        select(processed_events.c.account_id, processed_events.c.event_id)
        .where(processed_events.c.processed_at < before)
        .order_by(processed_events.c.processed_at)
        .limit(limit)
    )
    result = connection.execute(
        delete(processed_events).where(
            tuple_(processed_events.c.account_id, processed_events.c.event_id).in_(oldest)
        )
    )
    return int(result.rowcount)
