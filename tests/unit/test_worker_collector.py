"""A worker process's garbage collector is set for a long run just before its pool forks: what
start-up made is frozen (never walked again), and young collections come every 10,000 new
objects instead of 700. Only a worker run by the CLI is changed, never the test process's."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator

import pytest
from celery import Celery, signals

from worker.app import run_worker
from worker.collector import YOUNG_THRESHOLD, settle_for_a_long_run


@pytest.fixture(autouse=True)
def restored_collector() -> Iterator[None]:
    """Whatever a test does to this process's collector is undone."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class _WorkController:
    """What Celery sends `worker_init` with: the worker, which knows its app."""

    def __init__(self, app: Celery) -> None:
        self.app = app


def _walked(thing: object) -> bool:
    """Whether the collector's generations hold `thing` (a frozen object is in none)."""
    return any(found is thing for found in gc.get_objects())


def test_settling_freezes_what_exists_and_spaces_the_young_collections() -> None:
    gc.set_threshold(700, 11, 12)
    start_up = {"made": ["at start-up"]}
    assert _walked(start_up)

    settle_for_a_long_run()

    assert not _walked(start_up)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 11, 12)
    made_after = {"made": ["after start-up"]}
    assert _walked(made_after)


def _app_whose_worker_inits(worker_of: Callable[[Celery], Celery]) -> Celery:
    """An app whose `worker_main` only sends `worker_init` as Celery does before it forks, from
    a worker of `worker_of(app)`."""
    app = Celery("collector-test", set_as_current=False)

    def worker_main(argv: list[str] | None = None) -> None:
        signals.worker_init.send(sender=_WorkController(worker_of(app)))

    app.worker_main = worker_main  # type: ignore[method-assign]
    return app


def test_a_worker_of_the_app_settles_the_collector_before_its_pool_forks() -> None:
    app = _app_whose_worker_inits(lambda itself: itself)

    run_worker(app, ["worker"])

    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_another_apps_worker_and_any_worker_after_it_leave_the_collector_alone() -> None:
    other = Celery("another", set_as_current=False)
    app = _app_whose_worker_inits(lambda _: other)
    threshold = gc.get_threshold()

    run_worker(app, ["worker"])
    signals.worker_init.send(sender=_WorkController(app))  # its run is over

    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold
