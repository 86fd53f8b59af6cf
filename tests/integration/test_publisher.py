"""The publisher never loses an event without telling its caller (events/publish.py).

Each test runs a redis-server of its own, stops it under the publisher and starts it again.
The server keeps no data across the restart, so what reaches the queue after it is exactly
what the publisher sent after it.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from events.names import EVENTS_QUEUE
from events.publish import Publisher, PublisherFull, PublishError, publish
from tests.processes import RedisServer, run_convlife
from tests.support import new_id


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def queued_events(url: str) -> list[Any]:
    """Every event in the messages waiting on the ingest queue, oldest message first."""
    client = Redis.from_url(url)
    try:
        raw_messages = client.lrange(EVENTS_QUEUE, 0, -1)
    finally:
        client.close()
    found: list[Any] = []
    for raw in reversed(raw_messages):  # kombu pushes on the left, workers pop on the right
        message = json.loads(raw)
        body = json.loads(base64.b64decode(message["body"]))
        found.extend(body[0][0])
    return found


def numbered(count: int, run: str) -> list[dict[str, Any]]:
    return [{"event_id": f"{run}-{n}"} for n in range(count)]


def test_a_batch_the_linger_timer_could_not_send_is_kept_and_close_raises(
    broker: RedisServer,
) -> None:
    run = new_id("pub")
    publisher = Publisher(broker.url, batch_size=100, linger=0.05)
    publisher.publish(numbered(3, run))  # connect once, then lose the broker
    publisher.flush()
    broker.stop()

    publisher.publish(numbered(5, run + "-late"))
    time.sleep(2.5)  # the linger timer tries, fails (in its own thread) and gives up

    assert publisher.unsent == 5
    with pytest.raises(PublishError) as raised:
        publisher.close()
    assert raised.value.unsent == 5
    assert "5 events not sent" in str(raised.value)

    broker.start()
    publisher.close()  # the same publisher: its events were kept for this retry
    assert [e["event_id"] for e in queued_events(broker.url)] == [
        f"{run}-late-{n}" for n in range(5)
    ]
    assert publisher.sent_events == 8


def test_a_failure_in_the_linger_timer_surfaces_on_the_next_publish_which_takes_nothing(
    broker: RedisServer,
) -> None:
    run = new_id("pub")
    publisher = Publisher(broker.url, batch_size=100, linger=0.05)
    broker.stop()
    publisher.publish(numbered(2, run))
    time.sleep(2.5)

    with pytest.raises(PublishError) as raised:
        publisher.publish({"event_id": f"{run}-refused"})
    assert raised.value.unsent == 2
    assert publisher.unsent == 2  # the refused event was not taken

    broker.start()
    publisher.publish({"event_id": f"{run}-again"})  # retries the kept events first
    publisher.close()
    assert [e["event_id"] for e in queued_events(broker.url)] == [
        f"{run}-0",
        f"{run}-1",
        f"{run}-again",
    ]


def test_a_full_batch_that_cannot_be_sent_stays_buffered_in_order(broker: RedisServer) -> None:
    run = new_id("pub")
    publisher = Publisher(broker.url, batch_size=4, linger=60)
    broker.stop()
    publisher.publish(numbered(10, run))  # two full batches fail; all ten are kept

    assert publisher.unsent == 10
    assert publisher.sent_events == 0
    broker.start()
    publisher.close()
    assert [e["event_id"] for e in queued_events(broker.url)] == [f"{run}-{n}" for n in range(10)]
    assert publisher.sent_messages == 3


def test_publish_refuses_events_beyond_max_buffered_while_the_broker_is_down(
    broker: RedisServer,
) -> None:
    run = new_id("pub")
    publisher = Publisher(broker.url, batch_size=5, linger=60, max_buffered=10)
    broker.stop()
    publisher.publish(numbered(10, run))

    with pytest.raises(PublisherFull) as raised:
        publisher.publish({"event_id": f"{run}-over"})
    assert raised.value.unsent == 10
    assert publisher.unsent == 10  # bounded: nothing more was taken

    broker.start()
    publisher.publish({"event_id": f"{run}-over"})  # room again once the broker takes them
    publisher.close()
    assert len(queued_events(broker.url)) == 11


def test_the_publish_function_raises_when_the_broker_is_down(broker: RedisServer) -> None:
    broker.stop()
    started = time.monotonic()
    with pytest.raises(PublishError) as raised:
        publish(numbered(3, new_id("pub")), broker_url=broker.url)
    assert raised.value.unsent == 3
    assert time.monotonic() - started < 15  # told within seconds, not left hanging


def test_convlife_publish_to_a_broker_that_is_gone_says_so_in_one_line_and_exits_2(
    broker: RedisServer, tmp_path: Path
) -> None:
    """A broker that does not answer at the start is an operator's problem to fix (exit 2, one
    line, as every command says it); one that fails mid-file is reported with what was sent
    and the line it stopped at (exit 1: `cli/main.py _publish`)."""
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(json.dumps(e) for e in numbered(3, new_id("pub"))) + "\n")
    env = {"CONVLIFE_BROKER_URL": broker.url}

    sent = run_convlife(["publish", str(source)], env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "published 3 events in 1 messages"

    broker.stop()
    refused = run_convlife(["publish", str(source)], env)
    assert refused.returncode == 2
    assert len(refused.stderr.strip().splitlines()) == 1
    assert f"127.0.0.1:{broker.port}" in refused.stderr
    assert "Traceback" not in refused.stderr
