"""The counters the units of work add to: Redis hashes, one pipelined HINCRBY round trip per
task (after its commit), so every prefork child and every worker host adds to the same numbers.
observability/metrics.py reads them back for Prometheus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from redis import Redis

from events.decisions import AutoClosed, ContactRouted, Decision
from events.names import (
    METRICS_CLOSE_LAG_KEY,
    METRICS_DEAD_LETTERS_KEY,
    METRICS_DECISIONS_KEY,
    METRICS_EVENTS_KEY,
    METRICS_SWEEP_KEY,
)
from policies.inactivity import deadline_after

CLOSE_LAG_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds from a conversation's deadline to its auto_closed decision."""


def record(
    redis: Redis,
    *,
    event_types: Iterable[str] = (),
    dead_letter_reasons: Iterable[str] = (),
    made: Iterable[Decision] = (),
) -> None:
    """Add a task's counts to the shared counters, in one round trip.

    Counted in Python first, so the round trip carries one command per counter that moved,
    whatever the batch's size (a sweep batch of 500 closes is a dozen commands, not 5,000)."""
    pipeline = redis.pipeline(transaction=False)
    for type_, n in Counter(event_types).items():
        pipeline.hincrby(METRICS_EVENTS_KEY, type_, n)
    for reason, n in Counter(dead_letter_reasons).items():  # events.parsing.ReasonCode
        pipeline.hincrby(METRICS_DEAD_LETTERS_KEY, reason, n)
    kinds: Counter[str] = Counter()
    lags: Counter[str] = Counter()
    lag_sum = 0.0
    for decision in made:
        route = decision.route.value if isinstance(decision, ContactRouted) else ""
        kinds[f"{decision.type}|{route}"] += 1
        if isinstance(decision, AutoClosed):
            lag = close_lag(decision)
            lags.update(f"le:{bucket}" for bucket in CLOSE_LAG_BUCKETS if lag <= bucket)
            lags["count"] += 1
            lag_sum += lag
    for kind, n in kinds.items():
        pipeline.hincrby(METRICS_DECISIONS_KEY, kind, n)
    for field, n in lags.items():
        pipeline.hincrby(METRICS_CLOSE_LAG_KEY, field, n)
    if lags:
        pipeline.hincrbyfloat(METRICS_CLOSE_LAG_KEY, "sum", lag_sum)
    if len(pipeline):
        pipeline.execute()


def close_lag(decision: AutoClosed) -> float:
    """Seconds from the conversation's deadline to the close (0 if, by clocks, before it)."""
    deadline = deadline_after(
        decision.last_activity_at, decision.inactivity_close_after, decision.business_hours
    )
    # A close was decided, so its deadline came: never None here.
    lag = 0.0 if deadline is None else (decision.decided_at - deadline).total_seconds()
    return max(lag, 0.0)


def record_sweep(redis: Redis, *, errors: int = 0, quarantined: int = 0) -> None:
    """Count sweeps that failed and rows a sweep quarantined."""
    pipeline = redis.pipeline(transaction=False)
    if errors:
        pipeline.hincrby(METRICS_SWEEP_KEY, "errors", errors)
    if quarantined:
        pipeline.hincrby(METRICS_SWEEP_KEY, "quarantined", quarantined)
    if len(pipeline):
        pipeline.execute()
