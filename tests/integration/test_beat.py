"""Beat never grows a queue nobody consumes, and still sweeps every interval when a worker runs.

`convlife beat` (and a worker) run as real processes against a redis-server of the test's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from events.names import CLOSES_QUEUE, HEARTBEAT_KEY, OUTBOX_QUEUE
from tests.processes import RedisServer, convlife, run_convlife, stop, wait_until

ALONE_FOR = 12.0
"""Seconds beat runs with nobody consuming."""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def environment(broker: RedisServer, tmp_path: Path, sweep: float, relay: float) -> dict[str, str]:
    return {
        "CONVLIFE_BROKER_URL": broker.url,
        "CONVLIFE_DATABASE_URL": f"sqlite:///{tmp_path / 'convlife.db'}",
        "CONVLIFE_SWEEP_INTERVAL": str(sweep),
        "CONVLIFE_RELAY_INTERVAL": str(relay),
    }


def test_beat_alone_leaves_at_most_one_message_per_queue_where_it_would_have_left_180(
    broker: RedisServer, tmp_path: Path
) -> None:
    # Celery's own scheduler would send 1/0.1 + 1/0.2 = 15 messages a second here: 180 in 12 s.
    env = environment(broker, tmp_path, sweep=0.1, relay=0.2)
    client = Redis.from_url(broker.url)
    beat = convlife(["beat"], env, tmp_path / "beat.log")
    try:
        wait_until(lambda: client.llen(CLOSES_QUEUE) >= 1, 30, "beat's first sweep")
        most = {CLOSES_QUEUE: 0, OUTBOX_QUEUE: 0}
        until = time.monotonic() + ALONE_FOR
        while time.monotonic() < until:
            for queue in most:
                most[queue] = max(most[queue], int(client.llen(queue)))
            time.sleep(0.05)

        assert most == {CLOSES_QUEUE: 1, OUTBOX_QUEUE: 1}

        # A worker taking the waiting sweep makes room: the next goes out within a second.
        taken = client.rpop(CLOSES_QUEUE)
        assert taken is not None
        wait_until(lambda: client.llen(CLOSES_QUEUE) == 1, 5, "the next sweep")
    finally:
        stop(beat)
        client.close()


def test_beat_sends_again_within_seconds_after_the_broker_was_away(
    broker: RedisServer, tmp_path: Path
) -> None:
    env = environment(broker, tmp_path, sweep=0.2, relay=0.5)
    client = Redis.from_url(broker.url)
    beat = convlife(["beat"], env, tmp_path / "beat.log")
    try:
        wait_until(lambda: client.llen(CLOSES_QUEUE) >= 1, 30, "beat's first sweep")
        broker.stop()
        time.sleep(3)  # beat's sends fail meanwhile, and close its channel
        broker.start()  # empty: nothing persisted

        # Not put off for beat_max_loop_interval (5 minutes) by a failed look at the queue.
        wait_until(lambda: client.llen(CLOSES_QUEUE) >= 1, 20, "a sweep after the outage")
        assert beat.poll() is None
    finally:
        stop(beat)
        client.close()


def test_with_a_worker_running_a_sweep_still_runs_every_interval(
    broker: RedisServer, tmp_path: Path
) -> None:
    env = environment(broker, tmp_path, sweep=0.5, relay=1)
    migrated = run_convlife(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "stack.log"
    client = Redis.from_url(broker.url, decode_responses=True)
    queues = f"{CLOSES_QUEUE},{OUTBOX_QUEUE}"
    worker = convlife(["worker", "--queues", queues, "--concurrency", "1"], env, log)
    beat = convlife(["beat"], env, log)
    try:
        wait_until(lambda: client.get(HEARTBEAT_KEY) is not None, 60, "the first sweep")
        beats: set[str] = set()
        most_waiting = 0
        until = time.monotonic() + 5
        while time.monotonic() < until:
            beats.add(str(client.get(HEARTBEAT_KEY)))
            most_waiting = max(most_waiting, int(client.llen(CLOSES_QUEUE)))
            time.sleep(0.05)

        # Every 0.5 s: about 10 sweeps in 5 s; a noisy machine gets a generous margin.
        assert len(beats) >= 5, f"only {len(beats)} sweeps in 5 s"
        assert most_waiting <= 1
    finally:
        stop(beat)
        stop(worker)
        client.close()
    assert "Traceback" not in log.read_text(errors="replace")
