"""A sweep drains a backlog in growing batches (service/deadlines.py `next_batch_size`): each
batch that comes back full (more are due) makes the next one twice as large, up to
`sweep_batch_growth` times `sweep_batch_size`; every sweep starts at `sweep_batch_size`, and a
dedicated closer that gave way to ingest starts small again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from service import deadlines
from service.runtime import Runtime
from tests.service.builders import T0, account_with, opened
from tests.support import Service, utc

LONG_AGO = utc("2001-01-01T00:00:00")
"""Before every other test's conversations, so this test's are claimed first."""


@pytest.fixture
def twenty_due(service: Service) -> Iterator[str]:
    """An account with 20 conversations due; sweeps start at batches of 2, growing to 8."""
    service.runtime.settings = service.runtime.settings.model_copy(
        update={"sweep_batch_size": 2, "sweep_batch_growth": 4, "sweep_gives_way_at": 2}
    )
    account = account_with(service, close_after="PT1M")
    service.ingest([opened(account, f"c{i}", at=LONG_AGO) for i in range(20)], T0)
    yield account
    service.close_due(T0, account)  # nothing of it stays due for the next test


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the sweep asks `close_due` for, in order."""
    asked: list[int] = []
    close_due = deadlines.close_due

    def recorded(runtime: Runtime, now: datetime, limit: int | None = None) -> Any:
        asked.append(limit or runtime.settings.sweep_batch_size)
        return close_due(runtime, now, limit)

    monkeypatch.setattr(deadlines, "close_due", recorded)
    return asked


def sweep(service: Service, events_waiting: Callable[[], int | None], *, shared: bool) -> int:
    return deadlines.sweep(service.runtime, lambda: T0, events_waiting, shares_with_ingest=shared)


def test_each_full_batch_doubles_the_next_up_to_the_growth_limit(
    service: Service, twenty_due: str, limits: list[int]
) -> None:
    sweep(service, lambda: 0, shared=True)
    assert service.count_decisions(twenty_due) == 20
    assert limits[:4] == [2, 4, 8, 8]  # 2 + 4 + 8 + 6: the last came back short, the sweep ended


def test_a_growth_of_one_keeps_every_batch_at_the_batch_size(
    service: Service, twenty_due: str, limits: list[int]
) -> None:
    service.runtime.settings = service.runtime.settings.model_copy(update={"sweep_batch_growth": 1})
    sweep(service, lambda: 0, shared=True)
    assert service.count_decisions(twenty_due) == 20
    assert set(limits) == {2}
    assert len(limits) >= 10


def test_every_sweep_starts_at_the_batch_size(
    service: Service, twenty_due: str, limits: list[int]
) -> None:
    service.runtime.settings = service.runtime.settings.model_copy(
        update={"sweep_time_budget": 1e-9}  # one batch per sweep: the budget ends each
    )
    sweep(service, lambda: 0, shared=True)
    sweep(service, lambda: 0, shared=True)
    assert limits == [2, 2]
    assert service.count_decisions(twenty_due) == 4


def test_a_closer_that_gave_way_to_ingest_goes_on_in_small_batches_again(
    service: Service, twenty_due: str, limits: list[int]
) -> None:
    looks = iter([0, 5, 0])  # behind after the second batch, caught up at the next look
    sweep(service, lambda: next(looks, 0), shared=False)
    assert service.count_decisions(twenty_due) == 20
    assert limits[:5] == [2, 4, 2, 4, 8]


@pytest.mark.parametrize(
    ("size", "first", "growth", "expected"),
    [(500, 500, 4, 1000), (1000, 500, 4, 2000), (2000, 500, 4, 2000), (3, 3, 1, 3), (3, 3, 3, 6)],
)
def test_next_batch_size(size: int, first: int, growth: int, expected: int) -> None:
    assert deadlines.next_batch_size(size, first, growth) == expected
