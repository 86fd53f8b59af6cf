"""Send events to convlife from upstream code, without importing the worker (or Celery).

Events travel as the Celery task `convlife.ingest` on queue `convlife.events`, one message per
batch (a JSON list), in Celery's message protocol v2 with the JSON serializer.

    with Publisher("redis://localhost:6379/0") as publisher:
        publisher.publish({"type": "contact.inbound", ...})   # buffered
    # leaving the block flushes, and raises PublishError if anything could not be sent

A Publisher buffers: it sends when `batch_size` events are waiting or when the oldest has
waited `linger` seconds, whichever comes first. It is safe to share between threads.

It never loses an event without telling its caller:

- An event leaves the buffer only once the broker accepted the message that carries it. A send
  that fails (after a few reconnection attempts, about two seconds) leaves its batch in the
  buffer, in order.
- `flush()` and `close()` raise `PublishError` while any event is still unsent; the error says
  how many (`unsent`), the events stay buffered, and a later `flush()` retries them. `close()`
  releases the connection only once everything is sent.
- A send that fails where no caller waits (the linger timer's thread, or the batch a
  `publish()` call filled) is kept: the next `publish()`, `flush()` or `close()` first retries
  everything buffered, and raises if the broker still refuses it.
- `publish()` either takes all the events it is given or raises; when it raises, it took none of
  them (publish them again later). Events it took stay buffered until sent.

Memory is bounded while the broker is down: once `max_buffered` events (10,000 by default) wait
unsent, `publish()` raises `PublisherFull` (a `PublishError`) instead of buffering more, after one
more attempt to send. The caller decides: slow down and retry, or keep the events elsewhere. A
single call may take more than `max_buffered` events when the buffer is below the bound (the
caller held them in memory already).

Sending an event twice is harmless (convlife applies each `event_id` once per account), so a
caller that is unsure what was sent may simply send everything again.
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

DEFAULT_MAX_BUFFERED = 10_000
"""Events a Publisher keeps unsent before `publish()` refuses more (about 10 MB at 1 KB each)."""


class PublishError(Exception):
    """Events could not be sent. They are kept in the publisher; `flush()` retries them.

    `unsent` is how many events the publisher holds that the broker has not accepted."""

    def __init__(self, message: str, unsent: int) -> None:
        super().__init__(message)
        self.unsent = unsent


class PublisherFull(PublishError):
    """`publish()` refused its events: `max_buffered` events already wait for the broker.

    None of the refused call's events were taken."""


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
        max_buffered: int = DEFAULT_MAX_BUFFERED,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_buffered < batch_size:
            raise ValueError("max_buffered must be at least batch_size")
        self.batch_size = batch_size
        self.linger = linger
        self.max_buffered = max_buffered
        # A bounded connect: a broker that does not answer fails a send within seconds.
        self._connection = Connection(broker_url, connect_timeout=2)
        self._producer: Producer | None = None
        self._buffer: list[Any] = []
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None
        self._failure: PublishError | None = None
        self.sent_messages = 0
        self.sent_events = 0

    @property
    def unsent(self) -> int:
        """Events taken by `publish()` that the broker has not accepted yet."""
        with self._lock:
            return len(self._buffer)

    def publish(self, events: BaseModel | Mapping[str, Any] | str | Iterable[Any]) -> None:
        """Take one event or many; sends full batches at once, the rest within `linger` s.

        Raises PublishError (PublisherFull when `max_buffered` events wait) without taking any
        of `events` when earlier events could not be sent and still cannot."""
        items: list[Any] = (
            [events] if isinstance(events, BaseModel | Mapping | str) else list(events)
        )
        with self._lock:
            if self._failure is not None or len(self._buffer) >= self.max_buffered:
                # Retry what waits before taking more; raise (taking nothing) if still refused.
                self._send_waiting(everything=True, full=len(self._buffer) >= self.max_buffered)
            self._buffer.extend(_as_json_object(event) for event in items)
            try:
                self._send_waiting(everything=False)
            except PublishError as error:
                # These events are taken and kept; the caller hears of it on its next call.
                self._failure = error
            if self._buffer and self._timer is None:
                self._timer = threading.Timer(self.linger, self._linger_expired)
                self._timer.daemon = True
                self._timer.start()

    def flush(self) -> None:
        """Send everything buffered now; raise PublishError (keeping them) if any is refused."""
        with self._lock:
            self._cancel_timer()
            self._send_waiting(everything=True)

    def close(self) -> None:
        """Flush, then release the connection. If the flush raises, the publisher stays open
        with its unsent events: flush() or close() again, or give them up knowingly."""
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

    def _linger_expired(self) -> None:
        with self._lock:
            self._timer = None
            try:
                self._send_waiting(everything=True)
            except PublishError as error:
                # Nobody waits in this thread: keep the failure for the next call.
                self._failure = error

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send_waiting(self, *, everything: bool, full: bool = False) -> None:
        """Send full batches (and the last partial one if `everything`), oldest first.

        An event leaves the buffer only after the broker accepted its message."""
        self._failure = None
        while self._buffer and (everything or len(self._buffer) >= self.batch_size):
            batch = self._buffer[: self.batch_size]
            try:
                self._send(batch)
            except Exception as error:
                kind = PublisherFull if full else PublishError
                raise kind(
                    f"{len(self._buffer)} events not sent (kept; flush() retries): "
                    f"{type(error).__name__}: {error}",
                    unsent=len(self._buffer),
                ) from error
            del self._buffer[: len(batch)]
            self.sent_messages += 1
            self.sent_events += len(batch)

    def _send(self, batch: list[Any]) -> None:
        body, headers, properties = ingest_message(batch)
        if self._producer is None:
            self._producer = Producer(self._connection, auto_declare=False)
        # A few quick reconnection attempts (about 2 s in all), then the error reaches us.
        publish = self._connection.ensure(
            self._producer,
            self._producer.publish,
            max_retries=2,
            interval_start=0.2,
            interval_step=0.3,
            interval_max=1,
        )
        publish(
            body,
            exchange=_exchange,
            routing_key=EVENTS_QUEUE,
            serializer="json",
            headers=headers,
            declare=[events_queue],
            **properties,
        )


def publish(
    events: BaseModel | Mapping[str, Any] | str | Iterable[Any],
    *,
    broker_url: str = "redis://localhost:6379/0",
    batch_size: int = 500,
) -> int:
    """Send events now (in messages of at most `batch_size`); returns how many were sent.

    Raises PublishError if any could not be sent (sending them all again is safe)."""
    items = [events] if isinstance(events, BaseModel | Mapping | str) else list(events)
    publisher = Publisher(
        broker_url, batch_size=batch_size, max_buffered=max(len(items), batch_size)
    )
    try:
        publisher.publish(items)
        publisher.flush()
        return publisher.sent_events
    finally:
        publisher._cancel_timer()
        publisher._connection.release()
