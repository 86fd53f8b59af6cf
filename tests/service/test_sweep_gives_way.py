"""Closes give way to events (service/deadlines.py `sweep`): when ingest is behind (enough event
messages wait), a sweep stops after its current batch if it shares its worker with ingest, or
pauses until ingest has caught up if it is a dedicated closer. Every sweep still closes at least
one batch, so closes are delayed, never starved; and a broker that cannot say how many wait
changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from service import deadlines
from tests.service.builders import T0, account_with, opened
from tests.support import Service, new_id, utc

LONG_AGO = utc("2001-01-01T00:00:00")
"""Before every other test's conversations, so this test's are claimed first."""


@pytest.fixture
def seven_due(service: Service) -> Iterator[str]:
    """An account with 7 conversations due, closed 3 at a time."""
    service.runtime.settings = service.runtime.settings.model_copy(
        update={"sweep_batch_size": 3, "sweep_gives_way_at": 2}
    )
    account = account_with(service, close_after="PT1M")
    service.ingest([opened(account, f"c{i}", at=LONG_AGO) for i in range(7)], T0)
    yield account
    service.close_due(T0, account)  # nothing of it stays due for the next test


def waiting(*counts: int) -> tuple[Callable[[], int], list[int]]:
    """An events queue whose length is `counts` one look after another (then the last)."""
    looks: list[int] = []

    def look() -> int:
        looks.append(counts[min(len(looks), len(counts) - 1)])
        return looks[-1]

    return look, looks


def sweep(service: Service, events_waiting: Callable[[], int | None], *, shared: bool) -> int:
    return deadlines.sweep(service.runtime, lambda: T0, events_waiting, shares_with_ingest=shared)


def test_a_sweep_sharing_its_worker_with_ingest_ends_after_a_batch_when_events_wait(
    service: Service, seven_due: str
) -> None:
    look, looks = waiting(2)
    sweep(service, look, shared=True)
    assert service.count_decisions(seven_due) == 3
    assert looks == [2]


def test_fewer_waiting_than_the_threshold_do_not_stop_the_sweep(
    service: Service, seven_due: str
) -> None:
    look, _ = waiting(1)
    sweep(service, look, shared=True)
    assert service.count_decisions(seven_due) == 7


def test_a_dedicated_closer_pauses_until_ingest_has_caught_up_then_goes_on(
    service: Service, seven_due: str
) -> None:
    look, looks = waiting(5, 3, 0)
    started = time.monotonic()
    sweep(service, look, shared=False)
    assert service.count_decisions(seven_due) == 7
    assert looks[:3] == [5, 3, 0]  # looked again while ingest was behind, went on after
    assert time.monotonic() - started >= deadlines.GIVE_WAY_NAP


def test_a_dedicated_closer_behind_an_ingest_that_never_catches_up_ends_at_its_budget(
    service: Service, seven_due: str
) -> None:
    service.runtime.settings = service.runtime.settings.model_copy(
        update={"sweep_time_budget": 0.2}
    )
    look, _ = waiting(10)
    started = time.monotonic()
    sweep(service, look, shared=False)
    assert service.count_decisions(seven_due) == 3  # one batch: delayed, not starved
    assert 0.2 <= time.monotonic() - started < 5


def test_a_broker_that_cannot_say_how_many_wait_changes_nothing_and_is_asked_once(
    service: Service, seven_due: str
) -> None:
    looks: list[None] = []

    def broker_away() -> None:
        looks.append(None)
        return None

    sweep(service, broker_away, shared=True)
    assert service.count_decisions(seven_due) == 7
    assert len(looks) == 1  # batches of 3 and 6, one look: each costs seconds with it away


def test_giving_way_can_be_turned_off(service: Service, seven_due: str) -> None:
    service.runtime.settings = service.runtime.settings.model_copy(update={"sweep_gives_way_at": 0})
    look, looks = waiting(100)
    sweep(service, look, shared=True)
    assert service.count_decisions(seven_due) == 7
    assert looks == []


def test_the_check_costs_nothing_when_the_batch_was_not_full(service: Service) -> None:
    account = account_with(service, close_after="PT1M")
    service.ingest(opened(account, new_id("c"), at=LONG_AGO), T0)
    look, looks = waiting(100)
    sweep(service, look, shared=True)
    assert service.count_decisions(account) == 1
    assert looks == []
