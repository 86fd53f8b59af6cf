"""What the sweep task tells the sweep (worker/app.py): how many event messages wait, read from
the broker as beat reads a queue's length, and whether its worker also takes events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from redis import Redis

from events.names import CLOSES_QUEUE, EVENTS_QUEUE
from events.publish import Publisher
from service.settings import Settings
from tests.processes import free_port
from worker.app import _consumes, _waiting, create_app


@pytest.fixture
def app(redis_url: str, redis: Redis, tmp_path: Path) -> Iterator[Celery]:
    settings = Settings(
        broker_url=redis_url,  # type: ignore[arg-type]
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",  # type: ignore[arg-type]
    )
    redis.delete(EVENTS_QUEUE)
    app = create_app(settings)
    yield app
    redis.delete(EVENTS_QUEUE)
    app.pool.force_close_all()


def test_the_events_waiting_are_the_messages_no_worker_has_taken(
    app: Celery, redis_url: str
) -> None:
    assert _waiting(app) == 0
    # Full batches go at once, the last one at close(): a linger of 0 had its timer thread
    # send a batch of one between two publishes whenever it won the lock (4 messages).
    publisher = Publisher(redis_url, batch_size=2, linger=60)
    for i in range(5):  # three messages: 2 + 2 + 1 events
        publisher.publish(
            {
                "event_id": f"e{i}",
                "type": "contact.inbound",
                "account_id": "a",
                "occurred_at": "2026-03-01T10:00:00+00:00",
                "contact_id": "k",
                "line_id": "l",
            }
        )
    publisher.close()
    assert _waiting(app) == 3


def test_a_worker_takes_events_unless_told_to_take_other_queues_only(app: Celery) -> None:
    assert _consumes(app, EVENTS_QUEUE)  # `convlife run`: every queue
    app.amqp.queues.select([CLOSES_QUEUE])  # `convlife worker -Q convlife.closes`
    assert not _consumes(app, EVENTS_QUEUE)
    assert _consumes(app, CLOSES_QUEUE)


def test_a_broker_that_is_away_gives_no_length_rather_than_an_error(tmp_path: Path) -> None:
    settings = Settings(
        broker_url=f"redis://127.0.0.1:{free_port()}/0",  # type: ignore[arg-type]
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",  # type: ignore[arg-type]
    )
    app = create_app(settings)
    app.conf.broker_connection_timeout = 0.5
    assert _waiting(app) is None
