"""The one place that wires convlife: settings -> Celery app with its tasks.

Tasks are transport adapters: decode, call a handler with the runtime and the clock, map
errors to retries. The logic lives in worker/ingest.py and worker/deadlines.py.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from celery import Celery, Task
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import OperationalError

from events.names import INGEST_TASK, PRUNE_TASK, RELAY_TASK, SWEEP_TASK, WEBHOOKS_TASK
from events.parsing import raw_text
from store import outbox
from webhooks.dispatch import LazyDispatcher
from worker import deadlines, ingest, logs, metrics, retention
from worker.celery_config import celery_config
from worker.runtime import LazyRuntime, Runtime
from worker.settings import Settings

log = logging.getLogger("convlife.worker")

TRANSIENT = (OperationalError, RedisConnectionError, RedisTimeoutError)
"""Errors that pass: the database or Redis is away, a deadlock. The task is retried."""

MAX_POISON_RETRIES = 3
"""How often a single event that makes the handler fail unexpectedly is tried."""


def utcnow() -> datetime:
    """convlife's one clock: the worker's, in UTC."""
    return datetime.now(UTC)


def _retry_delay(retries: int) -> int:
    # Short and capped, well under the visibility timeout: an ETA this short is harmless.
    return min(1 << min(retries, 5), 30)


def create_app(settings: Settings) -> Celery:
    """A Celery app for these settings, with convlife's tasks. Connects to nothing yet."""
    app = Celery("convlife", set_as_current=False)
    app.conf.update(celery_config(settings))
    runtime = LazyRuntime(settings)
    app.conf.convlife_runtime = runtime

    @app.task(name=INGEST_TASK, bind=True, max_retries=None)
    def ingest_task(self: Task, payload: Any) -> dict[str, int]:
        """Apply a batch of events (or one event)."""
        try:
            result = ingest.ingest(payload, runtime.get(), utcnow())
        except TRANSIENT as error:
            log.warning("ingest: %s; retrying", _first_line(error))
            raise self.retry(countdown=_retry_delay(self.request.retries)) from None
        except Exception as error:
            items = ingest.split_payload(payload)
            if len(items) > 1:
                # Find the poison: each event alone, so one bad event cannot hold up the rest.
                log.error("ingest batch failed (%s); splitting it", _first_line(error))
                for item in items:
                    self.apply_async(args=[[item]])
                return {"split": len(items)}
            if self.request.retries < MAX_POISON_RETRIES:
                raise self.retry(countdown=_retry_delay(self.request.retries)) from None
            _dead_letter_poison(runtime, items[0] if items else payload, error)
            return {"dead_lettered": 1}
        if result.decisions or result.dead_lettered:
            outbox.relay(
                runtime.get().engine,
                runtime.get().redis,
                utcnow(),
                only=[decision.decision_id for decision in result.decisions],
                with_dead_letters=result.dead_lettered > 0,
            )
        observe(
            runtime.get(),
            event_types=result.applied_types,
            dead_letter_errors=result.dead_letter_errors,
            made=result.decisions,
        )
        return {
            "applied": result.applied,
            "duplicates": result.duplicates,
            "dead_lettered": result.dead_lettered,
        }

    @app.task(name=SWEEP_TASK, bind=True, max_retries=3)
    def sweep_task(self: Task) -> int:
        """Close every conversation that is due (batch after batch, time-bounded)."""
        try:
            return deadlines.sweep(runtime.get(), utcnow)
        except TRANSIENT as error:
            # The next beat tick sweeps again; no retry needed, nothing is lost.
            log.warning("sweep: %s", _first_line(error))
            return 0

    @app.task(name=PRUNE_TASK)
    def prune_task() -> int:
        """Forget applied event ids older than the retention, in bounded deletes."""
        try:
            return retention.prune(runtime.get(), utcnow())
        except TRANSIENT as error:
            log.warning("prune: %s", _first_line(error))
            return 0

    @app.task(name=RELAY_TASK)
    def relay_task() -> int:
        """Publish decisions and dead letters that are committed but not yet on Redis."""
        try:
            return outbox.relay(runtime.get().engine, runtime.get().redis, utcnow())
        except TRANSIENT as error:
            log.warning("relay: %s", _first_line(error))
            return 0

    webhook_dispatcher = LazyDispatcher(settings.webhook_delivery)

    @app.task(name=WEBHOOKS_TASK)
    def webhooks_task() -> int:
        """Fan decisions out to webhook subscriptions; send what is due (time-bounded)."""
        try:
            return webhook_dispatcher.get().run(runtime.get().engine, utcnow).delivered
        except TRANSIENT as error:
            log.warning("webhooks: %s", _first_line(error))
            return 0

    return app


def _dead_letter_poison(runtime: LazyRuntime, item: Any, error: Exception) -> None:
    reason = f"processing failed: {type(error).__name__}: {_first_line(error)}"
    now = utcnow()
    with runtime.get().engine.begin() as connection:
        outbox.add_dead_letter(connection, raw=raw_text(item), error=reason, received_at=now)
    logs.dead_letter(reason, None, None)
    outbox.relay(runtime.get().engine, runtime.get().redis, now)
    observe(runtime.get(), dead_letter_errors=[reason])


def observe(runtime: Runtime, **counts: Any) -> None:
    """Add to the shared metrics; a metrics failure never fails work already committed."""
    try:
        metrics.record(runtime.redis, **counts)
    except TRANSIENT as error:
        log.warning("metrics not recorded: %s", _first_line(error))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
