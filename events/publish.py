"""Send events to convlife from upstream code, without importing the worker (or Celery).

Events travel as the Celery task `convlife.ingest` on queue `convlife.events`, one message per
batch (a JSON list), in Celery's message protocol v2 with the JSON serializer.

    with Publisher("redis://localhost:6379/0") as publisher:
        publisher.publish({"type": "contact.inbound", ...})   # buffered
    # leaving the block flushes

A Publisher buffers: it sends when `batch_size` events are waiting or when the oldest has
waited `linger` seconds, whichever comes first. It is safe to share between threads.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Producer
from pydantic import BaseModel

from events.names import EVENTS_QUEUE, INGEST_TASK

_exchange = Exchange(EVENTS_QUEUE, type="direct")
events_queue = Queue(EVENTS_QUEUE, _exchange, routing_key=EVENTS_QUEUE)


def _as_json_object(event: BaseModel | Mapping[str, Any] | str) -> Any:
    if isinstance(event, BaseModel):
        return event.model_dump(mode="json", exclude_none=False)
    if isinstance(event, Mapping):
        return dict(event)
    return event  # a JSON string: the worker parses it (and dead-letters it if it is not JSON)


def ingest_message(events: list[Any]) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Body, headers and properties of one `convlife.ingest` task message (protocol v2)."""
    task_id = str(uuid.uuid4())
    headers = {
        "lang": "py",
        "task": INGEST_TASK,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": f"[<{len(events)} events>]",
        "kwargsrepr": "{}",
        "origin": f"convlife-publisher@{socket.gethostname()}",
        "ignore_result": True,
    }
    body = [[events], {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}]
    return body, headers, {"correlation_id": task_id}


class Publisher:
    """Buffers events and sends them in batches; see the module docstring."""

    def __init__(
        self,
        broker_url: str = "redis://localhost:6379/0",
        *,
        batch_size: int = 500,
        linger: float = 0.05,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.linger = linger
        self._connection = Connection(broker_url)
        self._producer: Producer | None = None
        self._buffer: list[Any] = []
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self.sent_messages = 0
        self.sent_events = 0

    def publish(self, events: BaseModel | Mapping[str, Any] | str | Iterable[Any]) -> None:
        """Queue one event or many; sends full batches at once, the rest within `linger` s."""
        batch: Iterable[Any] = [events] if isinstance(events, BaseModel | Mapping | str) else events
        with self._lock:
            for event in batch:
                self._buffer.append(_as_json_object(event))
                if len(self._buffer) >= self.batch_size:
                    self._send_buffer()
            if self._buffer and self._timer is None:
                self._timer = threading.Timer(self.linger, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Send whatever is buffered now."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._buffer:
                self._send_buffer()

    def close(self) -> None:
        self.flush()
        self._connection.release()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _send_buffer(self) -> None:
        batch, self._buffer = self._buffer, []
        body, headers, properties = ingest_message(batch)
        if self._producer is None:
            self._producer = Producer(self._connection)
        publish = self._connection.ensure(self._producer, self._producer.publish, max_retries=3)
        publish(
            body,
            exchange=_exchange,
            routing_key=EVENTS_QUEUE,
            serializer="json",
            headers=headers,
            declare=[events_queue],
            retry=True,
            **properties,
        )
        self.sent_messages += 1
        self.sent_events += len(batch)


def publish(
    events: BaseModel | Mapping[str, Any] | str | Iterable[Any],
    *,
    broker_url: str = "redis://localhost:6379/0",
    batch_size: int = 500,
) -> int:
    """Send events now (in messages of at most `batch_size`); returns how many were sent."""
    with Publisher(broker_url, batch_size=batch_size) as publisher:
        publisher.publish(events)
        publisher.flush()
        return publisher.sent_events
