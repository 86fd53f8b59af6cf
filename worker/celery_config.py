"""Every Celery setting convlife relies on, in one place, with the reason for each."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kombu.entity import Exchange, Queue

from events.names import (
    CLOSES_QUEUE,
    EVENTS_QUEUE,
    INGEST_TASK,
    OUTBOX_QUEUE,
    PRUNE_TASK,
    RELAY_TASK,
    SWEEP_TASK,
    WEBHOOKS_QUEUE,
    WEBHOOKS_TASK,
)
from service.settings import Settings


def _queue(name: str) -> Queue:
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def celery_config(settings: Settings) -> dict[str, Any]:
    return {
        "broker_url": settings.broker_url.get_secret_value(),
        # kombu's Redis transport, except that taking a message off its queue and recording it
        # as unacked is one atomic step: stock kombu does them in two round trips, and a worker
        # killed in between lost the message for good (worker/transport.py).
        "broker_transport": "worker.transport:Transport",
        # JSON only: a message must never be able to run code (pickle). A pickled message is
        # refused by kombu before any task sees it.
        "task_serializer": "json",
        "result_serializer": "json",
        "event_serializer": "json",
        "accept_content": ["json"],
        # Decisions go to the database and the streams; results would only fill Redis.
        "task_ignore_result": True,
        "result_backend": None,
        # Ack after the task ran, and hand back a task whose worker died: with idempotent
        # handlers, running twice is harmless and losing is not.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message at a time per process: a message is a batch of up to hundreds of events.
        "worker_prefetch_multiplier": 1,
        # A crash must not strand a batch. Redis hands an unacked message (one a worker took and
        # never acked: it was SIGKILLed, OOM-killed, lost its machine) to another worker only
        # after the visibility timeout. So the timeout is short, 60 s by default (it was an
        # hour: a killed worker's batch waited an hour), and every task is bounded well under
        # it, so a live worker's message is not handed out twice (were it, the handlers are
        # idempotent: twice is harmless, lost is not):
        # - a task is stopped at a third of the timeout (hard limit, 20 s by default; the soft
        #   limit at a quarter, 15 s, raises inside the handler, which retries the batch), and a
        #   hard-limited task's message is put back at once (task_acks_on_timeout False);
        # - a message waits in a worker's prefetch behind at most one task (prefetch 1), so
        #   from taking it to acking it is at most two hard limits: two thirds of the timeout;
        # - a retry's countdown is capped at a sixth of it, 10 s (service/failures.py),
        #   since the Redis transport holds an ETA message unacked until it runs;
        # - the sweep stops after its time budget (5 s), an ingest message carries at most
        #   CONVLIFE_MAX_EVENTS_PER_MESSAGE events (1,000: about a second).
        # We chose this over reclaiming a dead worker's messages at start (Sidekiq's
        # super_fetch): kombu's `unacked` hash does not record which worker holds a message, so
        # a reclaim needs a registry of its own and still needs this timeout for a worker that
        # never comes back; the short timeout covers both.
        #
        # kombu looks for such messages every unacked_restore_interval x unacked_restore_throttle
        # seconds (10 x 10 by default: 100 s, whatever the timeout). Scan every tenth of the
        # timeout instead (at most a minute), so a dead worker's batch comes back at most a
        # tenth after the timeout: 66 s by default; the scan is one ZRANGE. The scan's mutex
        # expires within a sixth of the timeout, so a worker killed while scanning does not
        # hold the others off.
        "broker_transport_options": {
            "visibility_timeout": settings.visibility_timeout,
            "unacked_restore_interval": max(1, min(60, settings.visibility_timeout // 10)),
            "unacked_restore_throttle": 1,
            "unacked_mutex_expire": max(2, min(300, settings.visibility_timeout // 6)),
        },
        "task_soft_time_limit": settings.visibility_timeout / 4,
        "task_time_limit": settings.visibility_timeout / 3,
        "task_acks_on_timeout": False,
        "broker_connection_retry_on_startup": True,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_queues": [
            _queue(EVENTS_QUEUE),
            _queue(CLOSES_QUEUE),
            _queue(OUTBOX_QUEUE),
            _queue(WEBHOOKS_QUEUE),
        ],
        "task_default_queue": EVENTS_QUEUE,
        "task_routes": {
            INGEST_TASK: {"queue": EVENTS_QUEUE},
            SWEEP_TASK: {"queue": CLOSES_QUEUE},
            RELAY_TASK: {"queue": OUTBOX_QUEUE},
            PRUNE_TASK: {"queue": OUTBOX_QUEUE},
            WEBHOOKS_TASK: {"queue": WEBHOOKS_QUEUE},
        },
        # Beat keeps no file (a few fixed intervals, nothing to remember) and sends a task only
        # once its queue is empty, so nothing piles up while no worker consumes (worker/beat.py).
        "beat_scheduler": "worker.beat:BoundedScheduler",
        "beat_schedule": {
            "sweep-due-conversations": {
                "task": SWEEP_TASK,
                "schedule": timedelta(seconds=settings.sweep_interval),
                # A sweep nobody ran in time is useless: the next one does its work.
                "options": {"expires": max(settings.sweep_interval * 2, 2.0)},
            },
            "relay-outbox": {
                "task": RELAY_TASK,
                "schedule": timedelta(seconds=settings.relay_interval),
                "options": {"expires": max(settings.relay_interval * 2, 2.0)},
            },
            # Each run loops up to its budget; several at once share the work through the
            # database (claims are leased), so a run still busy with a slow endpoint never
            # holds back the next tick's.
            "dispatch-webhooks": {
                "task": WEBHOOKS_TASK,
                "schedule": timedelta(seconds=settings.webhook_dispatch_interval),
                "options": {"expires": max(settings.webhook_dispatch_interval * 2, 2.0)},
            },
            "prune-applied-event-ids": {
                "task": PRUNE_TASK,
                "schedule": timedelta(minutes=10),
                "options": {"expires": 600},
            },
        },
        "timezone": "UTC",
        "enable_utc": True,
        "worker_hijack_root_logger": False,
    }
