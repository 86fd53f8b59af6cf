"""The ingest task maps the handler's outcome onto the broker and never acks a message away:
not when the retry cannot be published (the broker is down), not when a task runs past its
time limit. And every task is bounded well under the visibility timeout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Task
from celery.exceptions import Reject

from events.names import INGEST_TASK
from service.settings import Settings
from tests.processes import free_port
from worker.app import _publish_parts, _retry, create_app
from worker.celery_config import celery_config


@pytest.fixture
def task_without_broker(tmp_path: Path) -> Iterator[Task]:
    """The ingest task, inside a delivery, with its broker unreachable (nothing listens)."""
    settings = Settings(
        broker_url=f"redis://127.0.0.1:{free_port()}/0",  # type: ignore[arg-type]
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",  # type: ignore[arg-type]
    )
    app = create_app(settings)
    app.conf.broker_connection_timeout = 1
    app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0}
    task: Task = app.tasks[INGEST_TASK]
    task.push_request(
        id="t1", args=[[{"x": 1}]], kwargs={}, retries=3, is_eager=False, called_directly=False
    )
    yield task
    task.pop_request()


def test_a_retry_the_broker_cannot_take_hands_the_message_back_instead_of_dropping_it(
    task_without_broker: Task,
) -> None:
    # Celery's own retry rejects without requeue here, which deletes the message on Redis.
    with pytest.raises(Reject) as handed_back:
        _retry(task_without_broker, 1.0)
    assert handed_back.value.requeue is True


def test_a_split_the_broker_cannot_take_hands_the_message_back(
    task_without_broker: Task,
) -> None:
    with pytest.raises(Reject) as handed_back:
        _publish_parts(task_without_broker, [[{"a": 1}], [{"b": 2}]])
    assert handed_back.value.requeue is True


@pytest.mark.parametrize("timeout", [10, 60, 3600])
def test_every_task_is_bounded_well_under_the_visibility_timeout(timeout: int) -> None:
    config = celery_config(Settings(visibility_timeout=timeout))
    soft, hard = config["task_soft_time_limit"], config["task_time_limit"]
    assert soft < hard <= timeout / 3  # taken, waited behind one task, run: under the timeout
    assert config["task_acks_on_timeout"] is False  # a task stopped by its limit is put back
    assert config["task_acks_late"] is True
    transport = config["broker_transport_options"]
    assert transport["visibility_timeout"] == timeout
    assert transport["unacked_restore_interval"] <= max(1, timeout // 10)
    assert transport["unacked_restore_throttle"] == 1
    assert transport["unacked_mutex_expire"] < timeout


def test_by_default_a_killed_workers_batch_comes_back_within_two_minutes() -> None:
    settings = Settings()
    transport = celery_config(settings)["broker_transport_options"]
    comes_back = settings.visibility_timeout + transport["unacked_restore_interval"]
    assert comes_back <= 70  # and the fault test measures it end to end
    assert settings.max_events_per_message == 1000
