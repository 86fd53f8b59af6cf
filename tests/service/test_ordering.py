"""Events come twice, late and out of order: the conversation ends up the same whatever order
they were applied in, one event per task or all in one batch.

Each test runs on SQLite and PostgreSQL; every `now` is chosen, nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from policies.state import Status
from service import retention
from tests.service.builders import (
    T0,
    account_with,
    agent_close,
    inbound,
    message,
    minutes,
    opened,
    routed,
)
from tests.support import Service, conversation_event, new_id, settings_event, utc

NOW = T0 + minutes(10)
History = list[Callable[[str], dict]]

HISTORY: History = [
    lambda a: opened(a, at=T0, agent_id="ana"),
    lambda a: message(a, T0 + minutes(1)),
    lambda a: agent_close(a, T0 + minutes(2)),
    lambda a: opened(a, at=T0 + minutes(3), agent_id="bruno"),
    lambda a: conversation_event(
        "conversation.transferred", a, "c1", T0 + minutes(4), group_id="sales"
    ),
]


def final_state(service: Service, history: History, order: tuple[int, ...]) -> Any:
    """Apply the history, one event per ingest, in `order`; the conversation as it ends up."""
    account = account_with(service, close_after="PT30M")
    events = [build(account) for build in history]
    for index in order:
        service.ingest(events[index], NOW)
    state, due = service.conversation(account, "c1")
    return replace(state, account_id="-"), due


def orders(n: int) -> list[tuple[int, ...]]:
    """Every rotation of 0..n-1, forwards and backwards: each event comes first and last."""
    forwards = [tuple((start + i) % n for i in range(n)) for start in range(n)]
    return forwards + [tuple(reversed(order)) for order in forwards]


def test_any_order_of_a_history_gives_the_same_conversation(service: Service) -> None:
    history = HISTORY[:4]
    outcomes = {final_state(service, history, order) for order in orders(len(history))}
    [(state, due)] = outcomes
    assert (state.status, state.last_activity_at, state.assignee_agent_id, due) == (
        Status.OPEN,
        T0 + minutes(3),
        "bruno",
        T0 + minutes(33),
    )
    assert (state.closed_at, state.closing_agent_id, state.close_reason) == (None, None, None)


def test_a_batch_gives_the_same_conversation_as_its_events_one_by_one(service: Service) -> None:
    one_by_one = final_state(service, HISTORY, tuple(range(len(HISTORY))))
    account = account_with(service, close_after="PT30M")
    service.ingest([build(account) for build in reversed(HISTORY)], NOW)
    state, due = service.conversation(account, "c1")

    assert (replace(state, account_id="-"), due) == one_by_one
    assert (state.assignee_group_id, state.assignee_agent_id) == ("sales", None)


def test_last_activity_is_the_newest_occurred_at_seen(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    times = [T0 + minutes(n) for n in (3, 1, 7, 2)]
    for at in times:
        service.ingest(message(account, at), NOW)
    state, due = service.conversation(account, "c1")
    assert (state.last_activity_at, due) == (T0 + minutes(7), T0 + minutes(37))


def test_an_open_older_than_an_applied_close_is_ignored(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(agent_close(account, T0 + minutes(5)), NOW)
    service.ingest(opened(account, at=T0, agent_id="bruno"), NOW)
    state, due = service.conversation(account, "c1")
    assert (state.status, state.closing_agent_id, due) == (Status.CLOSED, "ana", None)
    assert state.assignee_agent_id == "bruno"  # the assignee still follows its own events


def test_at_equal_times_the_close_wins_over_the_open_in_either_order(service: Service) -> None:
    outcomes = {
        final_state(service, [lambda a: opened(a), lambda a: agent_close(a, T0)], order)
        for order in [(0, 1), (1, 0)]
    }
    [(state, due)] = outcomes
    assert (state.status, due) == (Status.CLOSED, None)


def test_the_same_event_twice_in_one_batch_is_applied_once(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    note = conversation_event("conversation.note", account, "c1", T0)
    result = service.ingest([note, note, dict(note)], NOW)
    assert (result.applied, result.duplicates) == (1, 2)


def test_a_redelivered_close_applied_after_a_reopen_changes_nothing(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    close = agent_close(account, T0 + minutes(1))
    service.ingest([opened(account), close, opened(account, at=T0 + minutes(2))], NOW)
    result = service.ingest(close, NOW)

    assert result.duplicates == 1
    assert service.conversation(account, "c1")[0].status is Status.OPEN


def test_the_same_payload_twice_changes_nothing(service: Service) -> None:
    account = account_with(service, close_after="PT30M", window="PT1H")
    batch = [opened(account, agent_id="ana"), message(account, T0 + minutes(1))]
    batch.append(agent_close(account, T0 + minutes(2)))
    batch.append(inbound(account, T0 + minutes(3)))

    first = service.ingest(batch, T0 + minutes(3))
    again = service.ingest(batch, T0 + minutes(4))

    assert (first.applied, first.duplicates) == (4, 0)
    assert (again.applied, again.duplicates) == (0, 4)
    assert service.count_decisions(account) == 1


def test_a_close_older_than_an_applied_reopen_is_ignored(service: Service) -> None:
    account = account_with(service)
    service.ingest([opened(account), opened(account, at=T0 + minutes(10))], T0 + minutes(10))
    service.ingest(agent_close(account, T0 + minutes(5)), T0 + minutes(11))
    state, _ = service.conversation(account, "c1")
    assert state.status is Status.OPEN
    assert state.last_activity_at == T0 + minutes(10)


def test_an_event_for_a_never_seen_conversation_creates_it_open(service: Service) -> None:
    account = account_with(service)
    service.ingest(message(account, T0), T0)
    state, _ = service.conversation(account, "c1")
    assert state.status is Status.OPEN


def test_one_batch_is_applied_in_time_order(service: Service) -> None:
    account = account_with(service, window="PT1H")
    batch = [inbound(account, T0 + minutes(2)), agent_close(account, T0 + minutes(1))]
    service.ingest([*batch, opened(account)], T0 + minutes(2))
    assert routed(service, account)["route"] == "previous_agent"


def test_an_older_settings_update_does_not_undo_a_newer_one(service: Service) -> None:
    account = account_with(service, close_after="PT10M")
    service.ingest(settings_event(account, T0 - minutes(90), close_after=None), T0)
    service.ingest(opened(account), T0)
    assert service.conversation(account, "c1")[1] == T0 + minutes(10)


# --- events at the same instant -----------------------------------------------------------

SAME_INSTANT: dict[str, History] = {
    "open-and-transfer": [
        lambda a: opened(a, agent_id="ana"),
        lambda a: conversation_event("conversation.transferred", a, "c1", T0, agent_id="bruno"),
    ],
    "two-closes": [
        lambda a: agent_close(a, T0, agent="ana", reason="resolved"),
        lambda a: agent_close(a, T0, agent="bruno", reason="spam"),
    ],
}


@pytest.mark.parametrize("kind", list(SAME_INSTANT))
def test_events_at_the_same_instant_give_the_same_conversation_in_either_order(
    service: Service, kind: str
) -> None:
    history = [lambda a: opened(a, at=T0 - minutes(1)), *SAME_INSTANT[kind]]
    outcomes = {final_state(service, history, order) for order in [(0, 1, 2), (0, 2, 1)]}
    assert len(outcomes) == 1, outcomes


def test_of_two_settings_updates_at_the_same_instant_the_greater_event_id_wins_in_either_order(
    service: Service,
) -> None:
    outcomes = set()
    for order in [("s-a", "s-b"), ("s-b", "s-a")]:
        account = account_with(service)
        service.ingest(opened(account), T0)
        updates = {
            "s-a": {**settings_event(account, T0, close_after="PT10M"), "event_id": "s-a"},
            "s-b": {**settings_event(account, T0, close_after="PT20M"), "event_id": "s-b"},
        }
        for event_id in order:
            service.ingest(updates[event_id], NOW)
        outcomes.add(service.conversation(account, "c1")[1])
    assert outcomes == {T0 + minutes(20)}


def test_events_redelivered_on_later_days_with_the_retention_task_between_are_duplicates(
    service: Service,
) -> None:
    # Days of 2002, older than what other tests store: the retention task run here makes and
    # drops partitions of the shared database (PostgreSQL) around them only.
    account = new_id("acct")
    last = utc("2002-05-10T23:59:59.999999")  # the day's last microsecond
    batch = [opened(account, at=last), message(account, last + timedelta(microseconds=1))]
    retention.prune(service.runtime, last - timedelta(hours=1))  # days 05-10 to 05-13 made

    first = service.ingest(batch, last + timedelta(seconds=1))
    retention.prune(service.runtime, last + timedelta(days=1))
    again = service.ingest(batch, last + timedelta(days=2))

    assert (first.applied, first.duplicates) == (2, 0)
    assert (again.applied, again.duplicates) == (0, 2)
