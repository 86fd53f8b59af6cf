"""Put one request's events on `convlife.events` as one `convlife.ingest` message, now.

Not the buffering `events.Publisher`: an HTTP 202 promises the events are on the broker, so the
send is synchronous, one message per request (all of it or none of it, never half), and a broker
that refuses raises `BrokerUnavailable` (the route answers 503 and the client retries the whole
request; event ids make the retry harmless). The message is the one `events.publish` builds
(`ingest_message`, same exchange and queue), so workers cannot tell where it came from.
"""

from __future__ import annotations

from typing import Any

from kombu.connection import Connection
from kombu.exceptions import KombuError
from kombu.messaging import Producer
from redis.exceptions import RedisError

from events.names import EVENTS_QUEUE
from events.publish import events_queue, ingest_message

# Fail fast: a request waits at most about this long for a broker that is down, then gets 503.
_CONNECT_TIMEOUT = 2.0
_SOCKET_TIMEOUT = 5.0
_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


class BrokerUnavailable(RuntimeError):
    """The broker did not take the message; nothing of the request was enqueued."""


class Enqueuer:
    """A pool of broker connections shared by the gateway's request threads."""

    # As many as the request threads that may send at once (Starlette's thread pool: 40), so a
    # request never waits for a connection; one that still waits 5 s gets a 503.
    def __init__(self, broker_url: str, *, pool_size: int = 40) -> None:
        self._connection = Connection(
            broker_url,
            connect_timeout=_CONNECT_TIMEOUT,
            transport_options={
                "socket_connect_timeout": _CONNECT_TIMEOUT,
                "socket_timeout": _SOCKET_TIMEOUT,
                **_RETRY_POLICY,
            },
        )
        self._pool = self._connection.Pool(limit=pool_size)
        self.sent_messages = 0

    def send(self, items: list[Any]) -> None:
        """Enqueue `items` (events as decoded JSON) as one ingest message, or raise
        BrokerUnavailable. Returns once the broker has the message."""
        body, headers, properties = ingest_message(items)
        try:
            with self._pool.acquire(block=True, timeout=_SOCKET_TIMEOUT) as connection:
                try:
                    producer = Producer(connection)
                    producer.publish(
                        body,
                        exchange=events_queue.exchange,
                        routing_key=EVENTS_QUEUE,
                        serializer="json",
                        headers=headers,
                        declare=[events_queue],
                        retry=True,
                        retry_policy=_RETRY_POLICY,
                        **properties,
                    )
                except (KombuError, RedisError, OSError):
                    # A connection that failed mid-send may hold a broken socket: drop it so
                    # the pool opens a fresh one for the next request.
                    connection.collect()
                    raise
        except (KombuError, RedisError, OSError) as error:
            raise BrokerUnavailable(f"{type(error).__name__}: {error}") from error
        self.sent_messages += 1

    def close(self) -> None:
        self._pool.force_close_all()
        self._connection.release()
