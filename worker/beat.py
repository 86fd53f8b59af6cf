"""Beat that never grows a queue nobody consumes.

Celery's own scheduler sends every due task whether or not anything took the previous one, and
a message's `expires` is only looked at when a worker takes it. With beat running and no closer,
sweeps (every 0.5 s) and relays (every 2 s) piled up at 2.5 messages a second, about 200 MB a day
in a Redis that must never evict (issue 9, item 6).

`BoundedScheduler` sends a scheduled task only while the queue it goes to holds fewer than
`max_waiting` (1) messages, i.e. once the previous one was taken. Otherwise the entry stays due
and is looked at again within a second (or its interval, if shorter); the moment a worker takes
the waiting message, the next one goes out. With nobody consuming, each of `convlife.closes` and
`convlife.outbox` holds one beat message, however long that lasts.

The check is the queue's length (kombu's queue size: one LLEN per priority list), and the
scheduler keeps no state of its own: a purged queue, a flushed Redis or an expired message that a
worker dropped simply make room, so nothing can stop the schedule for good. Only beat feeds these
two queues (ingest goes to `convlife.events`, retries of ingest too). If the broker cannot be
asked (it is away, or a failed send closed the channel), the entry is sent as Celery would have
sent it: that send reconnects, or reports the broker's error, and the next look works again.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery.beat import ScheduleEntry, Scheduler

log = logging.getLogger("convlife.beat")

RECHECK_AT_MOST = 1.0
"""Seconds between two looks at a queue that was full when its entry came due."""


class BoundedScheduler(Scheduler):  # type: ignore[misc]
    """A Celery beat scheduler that holds a due task back while its queue is not empty."""

    max_waiting = 1
    """Messages a queue may hold before beat sends no more to it."""

    def is_due(self, entry: ScheduleEntry) -> tuple[bool, float]:
        due, next_check = super().is_due(entry)
        if not due:
            return due, next_check
        queue = self._queue_of(entry)
        try:
            waiting = self._waiting(queue)
        except Exception as error:
            # The broker is away, or the channel died with a failed send: send as Celery would
            # (its send reconnects and revives the channel, and logs what fails). Raising here
            # would make Celery put the entry off for beat_max_loop_interval (5 minutes).
            log.warning("beat: cannot read the length of %s (%s); sending anyway", queue, error)
            return due, next_check
        if waiting < self.max_waiting:
            return due, next_check
        log.debug("beat: %s holds %d message(s); %s waits", queue, waiting, entry.name)
        return False, min(_interval(entry), RECHECK_AT_MOST)

    def _queue_of(self, entry: ScheduleEntry) -> str:
        routes: dict[str, Any] = self.app.conf.task_routes or {}
        queue = entry.options.get("queue") or routes.get(entry.task, {}).get("queue")
        return str(queue or self.app.conf.task_default_queue)

    def _waiting(self, queue: str) -> int:
        return messages_waiting(self.app, queue, self.producer.channel)


def messages_waiting(app: Any, queue: str, channel: Any) -> int:
    """Messages in `queue` that no worker has taken yet (on Redis, kombu's queue size: one LLEN
    per priority list). Beat reads it before sending; a sweep reads it to give way to ingest."""
    declared = app.amqp.queues[queue].queue_declare(channel=channel)
    return int(declared.message_count)


def _interval(entry: ScheduleEntry) -> float:
    run_every = getattr(entry.schedule, "run_every", None)
    if isinstance(run_every, timedelta):
        return max(run_every.total_seconds(), 0.05)
    return RECHECK_AT_MOST
