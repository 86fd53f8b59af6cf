"""Prometheus metrics that hold across processes and hosts.

Counters live in Redis hashes (one pipelined HINCRBY round trip per task, after its commit), so
every prefork child and every worker host adds to the same numbers; gauges are read from the
database and the broker when Prometheus scrapes. `convlife metrics` serves them: no
multiprocess directory to share, and any number of workers.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from events.decisions import AutoClosed, ContactRouted
from events.names import (
    METRICS_CLOSE_LAG_KEY,
    METRICS_DEAD_LETTERS_KEY,
    METRICS_DECISIONS_KEY,
    METRICS_EVENTS_KEY,
    QUEUES,
)
from store import webhooks
from store.tables import conversations, dead_letters, decisions
from store.webhooks import WAITING

log = logging.getLogger("convlife.metrics")

CLOSE_LAG_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
"""Seconds from a conversation's deadline to its auto_closed decision."""


def dead_letter_reason(error: str) -> str:
    """A bounded label for a dead letter's error text."""
    if error.startswith("not JSON"):
        return "not_json"
    if error.startswith("type:"):
        return "unknown_type"
    if error.startswith("payload larger"):
        return "too_large"
    if error.startswith("occurred_at") and "ahead of convlife's clock" in error:
        return "future"
    if error.startswith("processing failed"):
        return "poison"
    if error.startswith("an event is a JSON object"):
        return "not_an_object"
    return "invalid_field"


def record(
    redis: Redis,
    *,
    event_types: Iterable[str] = (),
    dead_letter_errors: Iterable[str] = (),
    made: Iterable[AutoClosed | ContactRouted] = (),
) -> None:
    """Add a task's counts to the shared counters, in one round trip."""
    pipeline = redis.pipeline(transaction=False)
    for type_, n in Counter(event_types).items():
        pipeline.hincrby(METRICS_EVENTS_KEY, type_, n)
    for reason, n in Counter(dead_letter_reason(e) for e in dead_letter_errors).items():
        pipeline.hincrby(METRICS_DEAD_LETTERS_KEY, reason, n)
    for decision in made:
        route = decision.route.value if isinstance(decision, ContactRouted) else ""
        pipeline.hincrby(METRICS_DECISIONS_KEY, f"{decision.type}|{route}", 1)
        if isinstance(decision, AutoClosed):
            deadline = decision.last_activity_at + decision.inactivity_close_after
            lag = max((decision.decided_at - deadline).total_seconds(), 0.0)
            for bucket in CLOSE_LAG_BUCKETS:
                if lag <= bucket:
                    pipeline.hincrby(METRICS_CLOSE_LAG_KEY, f"le:{bucket}", 1)
            pipeline.hincrby(METRICS_CLOSE_LAG_KEY, "count", 1)
            pipeline.hincrbyfloat(METRICS_CLOSE_LAG_KEY, "sum", lag)
    if len(pipeline):
        pipeline.execute()


class ConvlifeCollector(Collector):
    """Everything ops watch, read at scrape time."""

    def __init__(self, engine: Engine, redis: Redis, broker: Redis) -> None:
        self.engine = engine
        self.redis = redis
        self.broker = broker

    def collect(self) -> Iterator[Any]:
        yield from self._counters()
        yield from self._database_gauges(datetime.now().astimezone())
        yield from self._webhook_gauges(datetime.now().astimezone())
        depth = GaugeMetricFamily(
            "convlife_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue in QUEUES:
            depth.add_metric([queue], float(self.broker.llen(queue)))
        yield depth

    def _hash(self, key: str) -> dict[str, str]:
        raw: Any = self.redis.hgetall(key)
        return {_text(k): _text(v) for k, v in raw.items()}

    def _counters(self) -> Iterator[Any]:
        events = CounterMetricFamily(
            "convlife_events_ingested", "Events applied, by type.", labels=["type"]
        )
        for type_, n in sorted(self._hash(METRICS_EVENTS_KEY).items()):
            events.add_metric([type_], float(n))
        yield events
        letters = CounterMetricFamily(
            "convlife_dead_letters", "Events refused, by reason.", labels=["reason"]
        )
        for reason, n in sorted(self._hash(METRICS_DEAD_LETTERS_KEY).items()):
            letters.add_metric([reason], float(n))
        yield letters
        made = CounterMetricFamily(
            "convlife_decisions", "Decisions made, by type and route.", labels=["type", "route"]
        )
        for key, n in sorted(self._hash(METRICS_DECISIONS_KEY).items()):
            type_, _, route = key.partition("|")
            made.add_metric([type_, route], float(n))
        yield made
        lag = self._hash(METRICS_CLOSE_LAG_KEY)
        buckets = [(str(b), float(lag.get(f"le:{b}", 0))) for b in CLOSE_LAG_BUCKETS]
        buckets.append(("+Inf", float(lag.get("count", 0))))
        histogram = HistogramMetricFamily(
            "convlife_close_lag_seconds", "From a conversation's deadline to its auto-close."
        )
        histogram.add_metric([], buckets, sum_value=float(lag.get("sum", 0)))
        yield histogram

    def _database_gauges(self, now: datetime) -> Iterator[Any]:
        with self.engine.connect() as connection:
            open_count = connection.execute(
                select(func.count()).where(conversations.c.status == "open")
            ).scalar_one()
            due = connection.execute(
                select(func.count()).where(conversations.c.close_due_at <= now)
            ).scalar_one()
            backlog = (
                connection.execute(
                    select(func.count()).where(decisions.c.published_at.is_(None))
                ).scalar_one()
                + connection.execute(
                    select(func.count()).where(dead_letters.c.published_at.is_(None))
                ).scalar_one()
            )
        yield GaugeMetricFamily(
            "convlife_open_conversations", "Conversations open now.", value=open_count
        )
        yield GaugeMetricFamily(
            "convlife_due_not_closed",
            "Conversations past their deadline and not closed yet (should stay near 0).",
            value=due,
        )
        yield GaugeMetricFamily(
            "convlife_outbox_backlog",
            "Decisions and dead letters committed but not yet on their Redis stream.",
            value=backlog,
        )

    def _webhook_gauges(self, now: datetime) -> Iterator[Any]:
        with self.engine.connect() as connection:
            counts = webhooks.backlog(connection, now)
        waiting = GaugeMetricFamily(
            "convlife_webhook_backlog",
            "Webhook deliveries waiting to be sent (pending: never tried; failed: retrying).",
            labels=["status"],
        )
        for status in WAITING:
            waiting.add_metric([status], counts[status])
        yield waiting
        yield GaugeMetricFamily(
            "convlife_webhook_paused_endpoints",
            "Webhook endpoints the circuit breaker rests now (failing in a row).",
            value=counts["paused_endpoints"],
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def serve(engine: Engine, redis: Redis, broker: Redis, port: int, host: str = "0.0.0.0") -> None:
    """Serve /metrics on `port` until interrupted."""
    registry = CollectorRegistry()
    registry.register(ConvlifeCollector(engine, redis, broker))
    start_http_server(port, addr=host, registry=registry)
    log.info("serving metrics on http://%s:%d/metrics", host, port)
    while True:
        time.sleep(3600)
