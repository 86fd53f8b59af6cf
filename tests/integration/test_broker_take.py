"""A worker that dies right after taking a message off its queue must not take the message
with it: worker/transport.py records it as unacked in the same atomic step that takes it.

The death is simulated deterministically: the consumer sends its take command, the reply is
left unread, and the connection is dropped (what the kernel does for a SIGKILLed worker).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.messaging import Consumer, Producer
from kombu.transport import redis as kombu_redis
from redis import Redis

from tests.support import redis_user_denied
from worker.transport import Transport


def _take_and_die(redis_url: str, transport: Any, names: dict[str, str]) -> None:
    queue = Queue(names["queue"], Exchange(names["queue"], type="direct"), names["queue"])
    options = {"unacked_key": names["unacked"], "unacked_index_key": names["index"]}
    with Connection(redis_url, transport=transport, transport_options=options) as connection:
        Producer(connection).publish(
            {"n": 1},
            exchange=queue.exchange,
            routing_key=queue.name,
            declare=[queue],
            serializer="json",
        )
        consumer = Consumer(connection, [queue], callbacks=[lambda body, message: None])
        consumer.consume()
        channel: Any = consumer.channel
        channel.basic_qos(0, 1, False)
        connection.transport.cycle._register_BRPOP(channel)  # the take goes to Redis ...
        time.sleep(0.3)
        channel.client.connection.disconnect()  # ... and the worker dies before reading it
        channel._in_poll = None


@pytest.fixture
def names(redis_url: str) -> Any:
    run = uuid.uuid4().hex[:8]
    made = {"queue": f"take-{run}", "unacked": f"unacked-{run}", "index": f"unacked_index-{run}"}
    yield made
    client = Redis.from_url(redis_url)
    client.delete(*made.values(), f"_kombu.binding.{made['queue']}")
    client.close()


def test_a_message_taken_by_a_worker_that_dies_before_reading_it_stays_unacked(
    redis_url: str, names: dict[str, str]
) -> None:
    _take_and_die(redis_url, Transport, names)
    client = Redis.from_url(redis_url)
    assert client.llen(names["queue"]) == 0  # taken ...
    assert client.hlen(names["unacked"]) == 1  # ... and recorded: it comes back after the
    assert client.zcard(names["index"]) == 1  # visibility timeout
    tags: list[Any] = client.zrange(names["index"], 0, -1)
    assert client.hget(names["unacked"], tags[0]) is not None
    client.close()


def test_stock_kombu_loses_that_message(redis_url: str, names: dict[str, str]) -> None:
    """The window the transport closes. If this starts failing, kombu closed it itself."""
    _take_and_die(redis_url, kombu_redis.Transport, names)
    client = Redis.from_url(redis_url)
    assert client.llen(names["queue"]) == 0
    assert client.hlen(names["unacked"]) == 0  # in no queue and not unacked: gone for good
    client.close()


def test_a_recorded_message_is_restored_and_delivered_once_acked(
    redis_url: str, names: dict[str, str]
) -> None:
    _take_and_die(redis_url, Transport, names)
    queue = Queue(names["queue"], Exchange(names["queue"], type="direct"), names["queue"])
    options = {
        "unacked_key": names["unacked"],
        "unacked_index_key": names["index"],
        "visibility_timeout": 0,
    }
    got: list[Any] = []
    with Connection(redis_url, transport=Transport, transport_options=options) as connection:
        channel = connection.default_channel
        channel.qos.restore_visible(num=10, interval=1)

        def on_message(body: Any, message: Any) -> None:
            got.append(body)
            message.ack()

        with Consumer(connection, [queue], callbacks=[on_message]):
            connection.drain_events(timeout=5)
    assert got == [{"n": 1}]
    client = Redis.from_url(redis_url)
    assert client.hlen(names["unacked"]) == 0
    assert client.zcard(names["index"]) == 0
    client.close()


@pytest.fixture
def no_scripts_url(redis_url: str) -> Iterator[str]:
    """The URL of a Redis user (of this test only) whose ACL denies EVAL, EVALSHA and BLMOVE."""
    with redis_user_denied(redis_url, "eval", "evalsha", "blmove") as url:
        yield url


def test_where_redis_refuses_scripts_messages_are_taken_with_brpop_and_a_warning(
    no_scripts_url: str, names: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    queue = Queue(names["queue"], Exchange(names["queue"], type="direct"), names["queue"])
    options = {"unacked_key": names["unacked"], "unacked_index_key": names["index"]}
    got: list[Any] = []
    with Connection(no_scripts_url, transport=Transport, transport_options=options) as connection:
        producer = Producer(connection)
        for n in (1, 2):
            producer.publish(
                {"n": n},
                exchange=queue.exchange,
                routing_key=queue.name,
                declare=[queue],
                serializer="json",
            )

        def on_message(body: Any, message: Any) -> None:
            got.append(body)
            message.ack()

        with Consumer(connection, [queue], callbacks=[on_message]):
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    connection.drain_events(timeout=1)
    assert sorted(body["n"] for body in got) == [1, 2]
    assert any("refuses EVAL" in record.getMessage() for record in caplog.records)
