"""Retention of the idempotency records (`processed_events`), so the table does not grow forever."""

from __future__ import annotations

import time
from datetime import datetime

from service.runtime import Runtime
from store import idempotency

_BATCH = 10_000
_TIME_BUDGET = 20.0


def prune(runtime: Runtime, now: datetime) -> int:
    """Delete applied-event records older than the retention, 10,000 per transaction, for at
    most 20 s (the next run goes on); returns how many were deleted."""
    before = now - runtime.settings.idempotency_retention
    started = time.monotonic()
    total = 0
    while time.monotonic() - started < _TIME_BUDGET:
        with runtime.engine.begin() as connection:
            deleted = idempotency.forget_before(connection, before, _BATCH)
        total += deleted
        if deleted < _BATCH:
            break
    return total
