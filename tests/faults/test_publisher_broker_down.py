"""The broker goes down under a publisher: the caller is told, and after it retries, lost = 0.

A Publisher (events/publish.py) sends a workload in small batches while a worker applies it.
Mid-stream the broker (the test's own redis-server, append-only so what it had already accepted
survives) is stopped for a few seconds and started again. The publisher must raise to its
caller rather than drop a batch; the caller does what an upstream should: waits and retries the
call that raised, then flushes until the publisher holds nothing. Every event is then applied
exactly once, nothing doubled.

Run alone with `.venv/bin/python -m pytest tests/faults/test_publisher_broker_down.py`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from events.names import HEARTBEAT_KEY
from events.publish import Publisher, PublishError
from tests.faults.harness import Driver, Stack, assert_nothing_lost_or_doubled
from tests.processes import wait_until

CONVERSATIONS = 60
BROKER_DOWN_FOR = 4.0
"""Seconds the broker is away: longer than a send's reconnection attempts (about 1-2 s)."""


@dataclass
class Upstream:
    """Publishes events a few at a time, retrying whatever call the publisher refused."""

    broker_url: str
    events: list[dict[str, Any]]
    told: list[str] = field(default_factory=list)
    """Every PublishError the publisher raised to us."""
    publisher: Publisher | None = None

    def run(self) -> None:
        self.publisher = Publisher(self.broker_url, batch_size=10, linger=0.05)
        for start in range(0, len(self.events), 3):
            chunk = self.events[start : start + 3]
            self._until_taken(lambda chunk=chunk: self._publisher.publish(chunk))
            time.sleep(0.03)  # a steady stream, so the outage lands mid-stream
        self._until_taken(self._publisher.close)

    @property
    def _publisher(self) -> Publisher:
        assert self.publisher is not None
        return self.publisher

    def _until_taken(self, call: Any) -> None:
        for _attempt in range(120):
            try:
                call()
                return
            except PublishError as error:
                self.told.append(f"{type(error).__name__}: unsent={error.unsent}")
                time.sleep(0.5)
        raise AssertionError(f"the publisher still refuses after a minute: {self.told[-1:]}")


def test_the_broker_down_under_a_publisher_is_reported_and_after_a_retry_nothing_is_lost(
    stack: Stack,
) -> None:
    # The stack's redis-server again, now append-only: a restart keeps what it accepted.
    stack.redis_server.stop()
    stack.redis_server.extra = ("--appendonly", "yes", "--appendfsync", "always")
    stack.redis_server.start()
    driver = Driver()
    events = driver.workload(CONVERSATIONS)
    worker = stack.worker()
    beat = stack.start("beat")
    broker = stack.redis()
    wait_until(lambda: broker.get(HEARTBEAT_KEY) is not None, 60, "beat and a first sweep")
    upstream = Upstream(stack.broker_url, events)
    sender = threading.Thread(target=upstream.run)
    sender.start()
    wait_until(
        lambda: upstream.publisher is not None and upstream.publisher.sent_events >= 30,
        30,
        "the first batches",
    )

    stack.redis_server.stop()
    time.sleep(BROKER_DOWN_FOR)
    stack.redis_server.start()
    # Like compose's `restart: unless-stopped`: a process the outage ended is started again.
    # (kombu can end a worker that held unacked messages when the broker vanished.)
    if worker.poll() is not None:
        print(f"\nthe worker exited during the outage (code {worker.returncode}); restarted")
        stack.worker()
    if beat.poll() is not None:
        print(f"\nbeat exited during the outage (code {beat.returncode}); restarted")
        stack.start("beat")
    sender.join(timeout=120)

    assert not sender.is_alive()
    assert upstream.told, "the broker was down and the publisher never said so"
    assert upstream.publisher is not None
    assert upstream.publisher.unsent == 0
    print(f"\nthe publisher raised {len(upstream.told)} times: {upstream.told[:3]}")
    assert_nothing_lost_or_doubled(stack, driver, len(events))
    counts = stack.count(driver, len(events))
    assert counts.applied == len(events), counts.line()  # each exactly once, none dead-lettered
