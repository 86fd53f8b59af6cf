"""How events change a conversation: order and duplicates never matter."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from events.models import ConversationEvent
from events.parsing import parse_event
from policies.conversation import apply_event, new_conversation, touch
from policies.state import ClosedBy, Conversation, Status
from tests.support import conversation_event, utc

T0 = utc("2026-03-01T10:00:00")


def ev(type_: str, minute: float, **fields: Any) -> ConversationEvent:
    raw = conversation_event(type_, "acct", "conv", T0 + timedelta(minutes=minute), **fields)
    event = parse_event(raw)
    assert not isinstance(event, dict)
    return event  # type: ignore[return-value]


def apply_all(events: list[ConversationEvent]) -> Conversation:
    state: Conversation | None = None
    for event in events:
        state = apply_event(state, event)
    assert state is not None
    return state


OPEN = ev("conversation.opened", 0, agent_id="ana")
MESSAGE = ev("conversation.message", 5, sender="contact")
TRANSFER = ev("conversation.transferred", 7, group_id="sales")
CLOSE = ev("conversation.closed", 10, closed_by="agent", agent_id="ana", close_reason="done")
REOPEN = ev("conversation.opened", 20, agent_id="bruno")
NOTE = ev("conversation.note", 15, agent_id="ana")


@pytest.mark.parametrize(
    "history",
    [
        [OPEN, MESSAGE, CLOSE],
        [OPEN, MESSAGE, TRANSFER, CLOSE, NOTE],
        [OPEN, CLOSE, REOPEN, MESSAGE],
        [OPEN, TRANSFER, CLOSE, REOPEN],
    ],
    ids=["open-message-close", "with-transfer-and-note", "reopened", "transfer-then-reopen"],
)
def test_every_order_of_the_same_events_gives_the_same_conversation(
    history: list[ConversationEvent],
) -> None:
    results = {apply_all(list(order)) for order in itertools.permutations(history)}
    assert len(results) == 1


def test_applying_an_event_twice_changes_nothing() -> None:
    once = apply_all([OPEN, MESSAGE, CLOSE])
    assert apply_all([OPEN, MESSAGE, MESSAGE, CLOSE, CLOSE, OPEN]) == once


def test_last_activity_is_the_newest_occurred_at_seen() -> None:
    assert apply_all([MESSAGE, OPEN]).last_activity_at == T0 + timedelta(minutes=5)
    assert apply_all([OPEN, NOTE, MESSAGE]).last_activity_at == T0 + timedelta(minutes=15)


def test_a_close_older_than_an_applied_reopen_is_ignored() -> None:
    state = apply_all([OPEN, REOPEN, CLOSE])
    assert state.status is Status.OPEN
    assert state.assignee_agent_id == "bruno"
    assert state.closed_at is None


def test_an_open_older_than_an_applied_close_is_ignored() -> None:
    state = apply_all([CLOSE, OPEN])
    assert state.status is Status.CLOSED
    assert state.closed_by is ClosedBy.AGENT
    assert state.close_reason == "done"


def test_at_equal_times_the_close_wins_over_the_open() -> None:
    same_time_open = ev("conversation.opened", 10, agent_id="bruno")
    assert apply_all([CLOSE, same_time_open]).status is Status.CLOSED
    assert apply_all([same_time_open, CLOSE]).status is Status.CLOSED


def test_an_event_for_an_unseen_conversation_creates_it_open() -> None:
    state = apply_event(None, MESSAGE)
    assert state.status is Status.OPEN
    assert state.status_changed_at is None
    assert (state.account_id, state.conversation_id) == ("acct", "conv")
    assert state.last_activity_at == T0 + timedelta(minutes=5)


def test_a_message_after_a_close_is_activity_but_does_not_reopen() -> None:
    late_message = ev("conversation.message", 30, sender="contact")
    state = apply_all([OPEN, CLOSE, late_message])
    assert state.status is Status.CLOSED
    assert state.last_activity_at == T0 + timedelta(minutes=30)


def test_the_assignee_follows_the_newest_open_or_transfer() -> None:
    older_transfer = ev("conversation.transferred", -5, agent_id="carla")
    assert apply_all([TRANSFER, older_transfer, OPEN]).assignee_group_id == "sales"
    state = apply_all([OPEN, TRANSFER])
    assert (state.assignee_agent_id, state.assignee_group_id) == (None, "sales")


def test_a_reopen_clears_the_previous_close() -> None:
    state = apply_all([OPEN, CLOSE, REOPEN])
    assert state.status is Status.OPEN
    assert (state.closed_at, state.closed_by, state.close_reason) == (None, None, None)
    assert state.status_changed_at == T0 + timedelta(minutes=20)


def test_touch_only_moves_last_activity_forward() -> None:
    state = new_conversation(MESSAGE)
    assert touch(state, T0) is state
    assert touch(state, T0 + timedelta(hours=1)).last_activity_at == T0 + timedelta(hours=1)
