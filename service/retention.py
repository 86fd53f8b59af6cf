"""Retention of the idempotency records (`processed_events`), so the table does not grow forever."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from service.runtime import Runtime
from store import idempotency

_BATCH = 10_000
_TIME_BUDGET = 20.0
# Days of partitions made ahead of today: a few missed runs (every 10 minutes) never leave
# today's events in the DEFAULT partition.
PARTITIONS_AHEAD = 3

log = logging.getLogger(__name__)


def prune(runtime: Runtime, now: datetime) -> int:
    """Forget applied-event records older than the retention (`now` is UTC); returns how many
    rows were deleted.

    PostgreSQL: make the next days' partitions and drop the days that ended more than the
    retention ago (a whole partition each, no row deleted), then prune the DEFAULT partition.
    Rows are deleted 10,000 per transaction, for at most 20 s (the next run goes on).
    """
    before = now - runtime.settings.idempotency_retention
    with runtime.engine.begin() as connection:
        done = idempotency.maintain(connection, now, before, ahead=PARTITIONS_AHEAD)
    if done.created or done.dropped:
        log.info(
            "processed_events partitions: made %s, dropped %s",
            [day.isoformat() for day in done.created],
            [day.isoformat() for day in done.dropped],
        )
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < _TIME_BUDGET:
        with runtime.engine.begin() as connection:
            deleted = idempotency.forget_before(connection, before, _BATCH)
        total += deleted
        if deleted < _BATCH:
            break
    return total
