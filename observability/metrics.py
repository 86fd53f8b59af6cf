"""Prometheus metrics that hold across processes and hosts.

Counters live in Redis hashes that the units of work add to (service/counters.py), so every
prefork child and every worker host adds to the same numbers; gauges are read from the
database and the broker when Prometheus scrapes. `convlife metrics` serves them: no
multiprocess directory to share, and any number of workers.

A scrape must cost the same with ten conversations or ten million, and a flood of scrapes no
more than one: database gauges are bounded index reads (counts stop at GAUGE_COUNT_CAP) or the
planner's estimate, cached for GAUGE_CACHE_SECONDS.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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
from sqlalchemy import Select, Table, func, select, text
from sqlalchemy.engine import Connection, Engine

from events.names import (
    HEARTBEAT_KEY,
    METRICS_CLOSE_LAG_KEY,
    METRICS_DEAD_LETTERS_KEY,
    METRICS_DECISIONS_KEY,
    METRICS_EVENTS_KEY,
    METRICS_SWEEP_KEY,
    QUEUES,
)
from service.counters import CLOSE_LAG_BUCKETS
from store.tables import (
    conversations,
    dead_letters,
    decision_outbox,
    due_scans,
    webhook_deliveries,
    webhook_outbox,
    webhook_subscriptions,
)
from store.webhooks import WAITING

log = logging.getLogger("convlife.metrics")


def sweep_counters(redis: Redis) -> Iterator[CounterMetricFamily]:
    """`convlife_sweep_errors` and `convlife_sweep_quarantined` (from Redis, O(1))."""
    raw: Any = redis.hgetall(METRICS_SWEEP_KEY)
    counts = {_text(k): float(_text(v)) for k, v in raw.items()}
    yield CounterMetricFamily(
        "convlife_sweep_errors",
        "Sweeps that failed (any failure, the database away included); see convlife health.",
        value=counts.get("errors", 0.0),
    )
    yield CounterMetricFamily(
        "convlife_sweep_quarantined",
        "Conversations a sweep could not read or close, set aside with a dead letter.",
        value=counts.get("quarantined", 0.0),
    )


class ConvlifeCollector(Collector):
    """Everything ops watch, read at scrape time."""

    def __init__(
        self,
        engine: Engine,
        redis: Redis,
        broker: Redis,
        *,
        cache_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.redis = redis
        self.broker = broker
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._cached: DatabaseGauges | None = None
        self._cached_at = 0.0

    def collect(self) -> Iterator[Any]:
        yield from self._counters()
        yield from sweep_counters(self.redis)
        gauges = self._cached_database_gauges(datetime.now().astimezone())
        yield from self._database_gauges(gauges)
        yield from self._webhook_gauges(gauges)
        depth = GaugeMetricFamily(
            "convlife_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        for queue in QUEUES:
            depth.add_metric([queue], float(self.broker.llen(queue)))
        yield depth

    def _webhook_gauges(self, gauges: DatabaseGauges) -> Iterator[Any]:
        counts = {
            "pending": gauges.webhooks_pending,
            "failed": gauges.webhooks_failed,
            "paused_endpoints": gauges.webhook_paused_endpoints,
        }
        waiting = GaugeMetricFamily(
            "convlife_webhook_backlog",
            "Webhook deliveries waiting to be sent (pending: never tried; failed: retrying). "
            f"Counted up to {GAUGE_COUNT_CAP} each: {GAUGE_COUNT_CAP} means at least that many.",
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

    def _database_gauges(self, gauges: DatabaseGauges) -> Iterator[Any]:
        yield GaugeMetricFamily(
            "convlife_open_conversations",
            "Conversations open now. On PostgreSQL an estimate from the planner's statistics "
            f"once the table is over {SMALL_TABLE_BYTES // 2**20} MiB (exact below); on SQLite "
            f"exact up to {GAUGE_COUNT_CAP}. A value of {GAUGE_COUNT_CAP} from an exact count "
            "means at least that many.",
            value=gauges.open_conversations,
        )
        yield GaugeMetricFamily(
            "convlife_due_not_closed",
            "Conversations past their deadline and not closed yet (should stay near 0). "
            f"Counted up to {GAUGE_COUNT_CAP}: {GAUGE_COUNT_CAP} means at least that many. "
            "Those a settings change made due at once are not counted here (they wait in a "
            "due scan); convlife_oldest_due_seconds includes them.",
            value=gauges.due_not_closed,
        )
        yield GaugeMetricFamily(
            "convlife_oldest_due_seconds",
            "How long the longest-waiting due conversation has been past its deadline "
            "(0 when none is due). Over 60 s: closes are not happening.",
            value=gauges.oldest_due_seconds,
        )
        yield GaugeMetricFamily(
            "convlife_outbox_backlog",
            "Decisions and dead letters committed but not yet on their Redis stream. Each "
            f"table counted up to {GAUGE_COUNT_CAP}: {2 * GAUGE_COUNT_CAP} means at least that "
            "many.",
            value=gauges.outbox_backlog,
        )
        yield GaugeMetricFamily(
            "convlife_webhook_fan_out_backlog",
            "Decisions committed but not yet fanned out to webhook deliveries (the webhook "
            f"outbox). Counted up to {GAUGE_COUNT_CAP}: {GAUGE_COUNT_CAP} means at least that "
            "many.",
            value=gauges.webhook_fan_out_backlog,
        )
        yield GaugeMetricFamily(
            "convlife_last_sweep_timestamp_seconds",
            "Unix time of the last sweep (beat's heartbeat); 0 when none has run. Alert on "
            "time() minus this.",
            value=self._last_sweep_timestamp(),
        )

    def _cached_database_gauges(self, now: datetime) -> DatabaseGauges:
        # One query round per cache window, however many scrapes arrive: a scrape flood (or a
        # scraper anyone can reach) must not become database load. The lock makes concurrent
        # scrapes wait for the one refresh instead of each running its own.
        with self._lock:
            at = self.clock()
            if self._cached is None or at - self._cached_at >= self.cache_seconds:
                self._cached = read_database_gauges(self.engine, now)
                self._cached_at = at
            return self._cached

    def _last_sweep_timestamp(self) -> float:
        raw: Any = self.redis.get(HEARTBEAT_KEY)
        if raw is None:
            return 0.0
        try:
            return datetime.fromisoformat(_text(raw)).timestamp()
        except ValueError:
            log.warning("heartbeat %s is not an ISO 8601 time: %r", HEARTBEAT_KEY, raw[:64])
            return 0.0


GAUGE_COUNT_CAP = 10_000
"""Counting gauges stop here: a count reads at most this many index entries."""
GAUGE_CACHE_SECONDS = 5.0
"""Database gauges are read at most once per this many seconds, whatever the scrape rate."""
SMALL_TABLE_BYTES = 8 * 2**20
"""Below this size (PostgreSQL), open conversations are counted exactly: a scan this small is
cheap. Above it, the planner's estimate: never a scan of a table that can hold millions."""


@dataclass(frozen=True)
class DatabaseGauges:
    open_conversations: float
    due_not_closed: int
    oldest_due_seconds: float
    outbox_backlog: int
    webhooks_pending: int = 0
    webhooks_failed: int = 0
    webhook_paused_endpoints: int = 0
    webhook_fan_out_backlog: int = 0


def read_database_gauges(engine: Engine, now: datetime) -> DatabaseGauges:
    """The database gauges at `now` (aware), in a bounded number of statements.

    Every count walks an index and stops at GAUGE_COUNT_CAP; open conversations come from the
    planner's statistics on PostgreSQL, whose cost does not grow with the table.
    """
    due = (
        select(conversations.c.close_due_at)
        .where(conversations.c.close_due_at <= now)
        .order_by(conversations.c.close_due_at)
    )
    # An outbox holds a row per batch: the decisions in its oldest GAUGE_COUNT_CAP rows.
    unpublished_decisions = _decisions_in_oldest_rows(decision_outbox)
    not_fanned_out = _decisions_in_oldest_rows(webhook_outbox)
    unpublished_dead_letters = (
        select(dead_letters.c.id)
        .where(dead_letters.c.published_at.is_(None))
        .order_by(dead_letters.c.id)
    )
    with engine.connect() as connection:
        postgresql = connection.dialect.name == "postgresql"
        columns = [
            _capped_count(due),
            due.limit(1).scalar_subquery(),
            unpublished_decisions,
            _capped_count(unpublished_dead_letters),
            *[_capped_count(_webhooks_waiting(status)) for status in WAITING],
            select(func.count())
            .where(webhook_subscriptions.c.paused_until > now)
            .scalar_subquery(),
            not_fanned_out,
            # Conversations a settings change made due at once wait in a due scan, their
            # stored deadline untouched (store.conversations.reschedule_open): due since then.
            select(func.min(due_scans.c.since)).scalar_subquery(),
        ]
        if not postgresql:
            columns.append(_capped_count(_open_conversations()))
        row = connection.execute(select(*columns)).one()
        if postgresql:
            open_conversations = _postgresql_open_conversations(connection)
        else:
            open_conversations = float(row[9])
    oldest_due: datetime | None = min((t for t in (row[1], row[8]) if t is not None), default=None)
    return DatabaseGauges(
        open_conversations=open_conversations,
        due_not_closed=int(row[0]),
        oldest_due_seconds=0.0
        if oldest_due is None
        else max((now - oldest_due).total_seconds(), 0),
        outbox_backlog=min(int(row[2]), GAUGE_COUNT_CAP) + int(row[3]),
        webhooks_pending=int(row[4]),
        webhooks_failed=int(row[5]),
        webhook_paused_endpoints=int(row[6]),
        webhook_fan_out_backlog=min(int(row[7]), GAUGE_COUNT_CAP),
    )


def _decisions_in_oldest_rows(outbox: Table) -> Any:
    oldest_batches = (
        select(outbox.c.size).order_by(outbox.c.made_at).limit(GAUGE_COUNT_CAP).subquery()
    )
    return select(func.coalesce(func.sum(oldest_batches.c.size), 0)).scalar_subquery()


def _open_conversations() -> Select[Any]:
    return select(conversations.c.account_id).where(conversations.c.status == "open")


def _webhooks_waiting(status: str) -> Select[Any]:
    return select(webhook_deliveries.c.id).where(webhook_deliveries.c.status == status)


def _capped_count(rows: Select[Any]) -> Any:
    return (
        select(func.count()).select_from(rows.limit(GAUGE_COUNT_CAP).subquery()).scalar_subquery()
    )


_POSTGRESQL_OPEN_ESTIMATE = text(
    """
    SELECT c.reltuples, c.relpages, pg_relation_size(c.oid) AS bytes,
           current_setting('block_size')::int AS block_size,
           s.most_common_freqs[array_position(s.most_common_vals::text::text[], 'open')]
             AS open_fraction,
           s.attname IS NOT NULL AS analyzed
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_stats s
        ON s.schemaname = n.nspname AND s.tablename = c.relname AND s.attname = 'status'
     WHERE c.oid = to_regclass('conversations')
    """
)


def _postgresql_open_conversations(connection: Connection) -> float:
    """Exact below SMALL_TABLE_BYTES; above, what the planner would estimate for the rows with
    status 'open' (its tuple density times the table's current size times the 'open' fraction
    ANALYZE saw). NaN on a large table never analyzed (autovacuum analyzes it soon)."""
    stats = connection.execute(_POSTGRESQL_OPEN_ESTIMATE).one()
    if stats.bytes <= SMALL_TABLE_BYTES:
        return float(connection.execute(select(_capped_count(_open_conversations()))).scalar_one())
    if not stats.analyzed or stats.reltuples < 0:
        return math.nan
    pages_now = stats.bytes / stats.block_size
    rows = stats.reltuples / stats.relpages * pages_now if stats.relpages > 0 else stats.reltuples
    return float(round(rows * (stats.open_fraction or 0.0)))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def serve(
    engine: Engine,
    redis: Redis,
    broker: Redis,
    port: int,
    host: str = "0.0.0.0",
    cache_seconds: float = GAUGE_CACHE_SECONDS,
) -> None:
    """Serve /metrics on `port` until interrupted; database gauges cached `cache_seconds`."""
    registry = CollectorRegistry()
    registry.register(ConvlifeCollector(engine, redis, broker, cache_seconds=cache_seconds))
    start_http_server(port, addr=host, registry=registry)
    log.info("serving metrics on http://%s:%d/metrics", host, port)
    while True:
        time.sleep(3600)
