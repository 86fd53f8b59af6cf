"""The one place that wires convlife: settings -> Celery app with its tasks.

Tasks are transport adapters: decode, call a handler with the runtime and the clock, map its
outcome to ack or retry. The logic lives in service/deliveries.py (what to do with a message that
fails), service/ingest.py and service/deadlines.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

from celery import Celery, Task, signals
from celery.exceptions import Reject
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from events.names import (
    EVENTS_QUEUE,
    INGEST_TASK,
    PRUNE_TASK,
    RELAY_TASK,
    SWEEP_TASK,
    WEBHOOKS_TASK,
)
from service import deadlines, deliveries, retention
from service.failures import (
    Fault,
    drop_pooled_connections_after,
    fault_of,
    first_line,
    retry_delay,
)
from service.runtime import LazyRuntime, Runtime
from service.settings import Settings
from store import outbox
from webhooks.dispatch import LazyDispatcher
from worker.beat import messages_waiting
from worker.celery_config import celery_config
from worker.collector import settle_for_a_long_run

log = logging.getLogger("convlife.worker")


def utcnow() -> datetime:
    """convlife's one clock: the worker's, in UTC."""
    return datetime.now(UTC)


def create_app(settings: Settings) -> Celery:
    """A Celery app for these settings, with convlife's tasks. Connects to nothing yet."""
    app = Celery("convlife", set_as_current=False)
    app.conf.update(celery_config(settings))
    runtime = LazyRuntime(settings)
    app.conf.convlife_runtime = runtime
    # shared=False: the tasks belong to this app only (Celery would otherwise add them to every
    # app the process creates, and a second app, as in the tests, warns of duplicates).

    @app.task(name=INGEST_TASK, bind=True, max_retries=None, shared=False)
    def ingest_task(self: Task, payload: Any, own_failures: int = 0) -> dict[str, int]:
        """Apply a batch of events (or one event): the handler decides, this maps its outcome
        onto the broker. Only an applied, split or dead-lettered message is acked."""
        outcome = _handle(payload, runtime, self.request.retries, own_failures)
        if isinstance(outcome, deliveries.RetryLater):
            _retry(self, outcome.delay, outcome.own_failures)
        if isinstance(outcome, deliveries.Split):
            _publish_parts(self, outcome.parts)
            return {"split": len(outcome.parts)}
        if isinstance(outcome, deliveries.DeadLettered):
            return {"dead_lettered": 1}
        return {
            "applied": outcome.result.applied,
            "duplicates": outcome.result.duplicates,
            "dead_lettered": outcome.result.dead_lettered,
        }

    @app.task(name=SWEEP_TASK, shared=False)
    def sweep_task() -> int:
        """Close every conversation that is due (batch after batch, time-bounded)."""
        return _periodic(
            "sweep",
            runtime,
            lambda ready: deadlines.sweep(
                ready,
                utcnow,
                events_waiting=lambda: _waiting(app),
                shares_with_ingest=_consumes(app, EVENTS_QUEUE),
            ),
        )

    @app.task(name=PRUNE_TASK, shared=False)
    def prune_task() -> int:
        """Forget applied event ids older than the retention, in bounded deletes."""
        return _periodic("prune", runtime, lambda ready: retention.prune(ready, utcnow()))

    @app.task(name=RELAY_TASK, shared=False)
    def relay_task() -> int:
        """Publish decisions and dead letters that are committed but not yet on Redis."""
        return _periodic(
            "relay", runtime, lambda ready: outbox.relay(ready.engine, ready.redis, utcnow())
        )

    webhook_dispatcher = LazyDispatcher(
        settings.webhook_delivery, echo_redis_url=settings.streams_redis_url
    )

    @app.task(name=WEBHOOKS_TASK, shared=False)
    def webhooks_task() -> int:
        """Fan decisions out to webhook subscriptions; send what is due (time-bounded)."""
        return _periodic(
            "webhooks",
            runtime,
            lambda ready: webhook_dispatcher.get().run(ready.engine, utcnow).delivered,
        )

    return app


def run_worker(app: Celery, argv: list[str]) -> None:
    """Run a worker of `app` in this process (`convlife run` and `convlife worker`), its
    collector settled just before the pool forks."""

    def before_the_fork(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app:
            settle_for_a_long_run()

    # Connected here, not in create_app: tests build apps, and run workers, in the test
    # process, whose collector this must not change.
    signals.worker_init.connect(before_the_fork, weak=False)
    try:
        app.worker_main(argv)
    finally:
        signals.worker_init.disconnect(before_the_fork)


def _waiting(app: Celery, queue: str = EVENTS_QUEUE) -> int | None:
    """Messages in `queue` that no worker has taken yet (`worker.beat.messages_waiting`); None
    if the broker cannot say (it is away: a look then takes seconds to fail)."""
    try:
        with app.pool.acquire(block=True, timeout=1) as connection:
            return messages_waiting(app, queue, connection.default_channel)
    except (KombuError, RedisError, OSError) as error:
        log.warning("the length of %s is unknown: %s", queue, first_line(error))
        return None


def _consumes(app: Celery, queue: str) -> bool:
    """Whether this worker takes messages from `queue` (all queues unless started with -Q)."""
    chosen = app.amqp.queues.consume_from
    return not chosen or queue in chosen


def _periodic(name: str, runtime: LazyRuntime, work: Callable[[Runtime], int]) -> int:
    """Run a periodic task's work. An error of the surroundings is only logged: the next tick
    does the same work, nothing is lost."""
    try:
        return work(runtime.get())
    except Exception as error:
        if fault_of(error) is not Fault.ENVIRONMENT:
            raise
        log.warning("%s: %s", name, first_line(error))
        drop_pooled_connections_after(error, runtime.get().engine)
        return 0


def _handle(
    payload: Any, runtime: LazyRuntime, retries: int, own_failures: int
) -> deliveries.Outcome:
    try:
        return deliveries.handle(
            payload, runtime.get(), utcnow(), attempt=retries, own_failures=own_failures
        )
    except Exception as error:
        # The handler maps every failure it knows; anything else is a bug of ours, never the
        # message's fault: retry, do not ack.
        log.exception("ingest handler failed unexpectedly; retrying")
        delay = retry_delay(retries, runtime.settings.visibility_timeout)
        return deliveries.RetryLater(delay, first_line(error), own_failures)


def _retry(task: Task, countdown: float, own_failures: int = 0) -> NoReturn:
    """Re-publish the message with a countdown, then ack this delivery (Celery's retry).

    When the broker cannot take the retry, Celery's retry rejects the message without
    requeueing it, which on Redis deletes it. Hand it back instead; if the broker cannot even
    take it back, the message stays unacked in the broker and comes back after the visibility
    timeout. Either way nothing is acked away.
    """
    try:
        raise task.retry(countdown=countdown, kwargs={"own_failures": own_failures})
    except Reject as unscheduled:
        log.warning("retry not scheduled (%s); message handed back", unscheduled.reason)
        raise Reject(unscheduled.reason, requeue=True) from None


def _publish_parts(task: Task, parts: list[list[object]]) -> None:
    """Publish each part as its own message; if any cannot be published, hand the whole
    message back (parts already sent are applied twice at worst, which changes nothing)."""
    try:
        for part in parts:
            task.apply_async(args=[part])
    except Exception as error:
        log.warning("split not published (%s); message handed back", first_line(error))
        raise Reject(first_line(error), requeue=True) from None
