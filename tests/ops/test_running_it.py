"""Ops, for real: the stack's processes run locally, metrics move, health tells the truth.

Uses a redis-server of its own (so it may stop it) and a SQLite store in a temp dir.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from events.publish import publish
from tests.processes import RedisServer, convlife, free_port, run_convlife, stop, wait_until
from tests.support import conversation_event, event, new_id, settings_event


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_the_stack_runs_locally_metrics_move_and_health_follows_redis(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    env = {
        "CONVLIFE_BROKER_URL": own_redis.url,
        "CONVLIFE_DATABASE_URL": f"sqlite:///{tmp_path / 'convlife.db'}",
        "CONVLIFE_SWEEP_INTERVAL": "0.5",
    }
    migrated = run_convlife(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    log = tmp_path / "stack.log"
    processes = [
        convlife(["worker", "--queues", "convlife.events", "--concurrency", "1"], env, log),
        convlife(["worker", "--queues", "convlife.closes,convlife.outbox", "-c", "1"], env, log),
        convlife(["beat"], env, log),
        convlife(["metrics", "--port", str(port), "--host", "127.0.0.1"], env, log),
    ]
    try:
        wait_until(lambda: _scrapes(port), 30, "the metrics endpoint")
        before = scrape(port)
        account = new_id("acct")
        now = datetime.now(UTC)
        publish(
            [
                settings_event(account, now, close_after="PT1S", bot=True),
                conversation_event("conversation.opened", account, "c1", now),
                event("contact.inbound", account, now, contact_id="new", line_id="line-1"),
                "not json",
            ],
            broker_url=own_redis.url,
        )

        def moved() -> bool:
            after = scrape(port)
            return after.get(
                'convlife_decisions_total{route="",type="conversation.auto_closed"}', 0
            ) >= 1 and after.get('convlife_dead_letters_total{reason="not_json"}', 0) > before.get(
                'convlife_dead_letters_total{reason="not_json"}', 0
            )

        wait_until(moved, 30, f"metrics to move:\n{log.read_text()[-3000:]}")
        after = scrape(port)
        assert after['convlife_events_ingested_total{type="conversation.opened"}'] >= 1
        assert after['convlife_decisions_total{route="bot",type="contact.routed"}'] >= 1
        assert after["convlife_close_lag_seconds_count"] >= 1
        assert after['convlife_queue_depth{queue="convlife.events"}'] == 0
        assert "convlife_outbox_backlog" in after
        assert "convlife_open_conversations" in after
        assert after["convlife_sweep_errors_total"] >= 0
        assert after["convlife_sweep_quarantined_total"] >= 0

        healthy = run_convlife(["health"], env)
        assert healthy.returncode == 0, healthy.stdout

        own_redis.stop()
        sick = run_convlife(["health"], env)
        assert sick.returncode == 1
        assert "FAIL redis" in sick.stdout

        own_redis.start()  # same port, empty: the workers reconnect, beat's next sweep counts
        wait_until(
            lambda: run_convlife(["health"], env).returncode == 0,
            60,
            "health to pass again after Redis came back",
        )
        for process in processes:
            assert process.poll() is None, f"a process died:\n{log.read_text()[-3000:]}"
    finally:
        for process in processes:
            stop(process)


def _scrapes(port: int) -> bool:
    try:
        scrape(port)
        return True
    except OSError:
        return False


def test_a_worker_freezes_its_start_up_objects_before_it_forks_its_pool(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    env = {
        "CONVLIFE_BROKER_URL": own_redis.url,
        "CONVLIFE_DATABASE_URL": f"sqlite:///{tmp_path / 'convlife.db'}",
    }
    assert run_convlife(["migrate"], env).returncode == 0
    log = tmp_path / "worker.log"
    worker = convlife(["worker", "--concurrency", "1"], env, log)
    try:
        wait_until(lambda: " ready." in log.read_text(), 30, "the worker to be ready")
        text = log.read_text()
        settled = text.find("garbage collector: ")
        assert settled >= 0, text[-3000:]
        assert settled < text.find(" ready.")
        frozen = int(text[settled:].split()[2])
        assert frozen > 10_000  # Celery, SQLAlchemy and pydantic, imported
    finally:
        stop(worker)
