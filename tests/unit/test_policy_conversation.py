"""How events change a conversation: order and duplicates never matter."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import pytest

from events.decisions import ContactRouted
from events.models import ContactInbound, ConversationEvent
from events.parsing import parse_event
from policies.conversation import apply_event, new_conversation, touch
from policies.inactivity import auto_close
from policies.routing import route_inbound
from policies.state import INACTIVITY, AccountSettings, ClosedBy, Conversation, LineOwner, Status
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


# --- The same rules, edge by edge -------------------------------------------------------------

µs = timedelta(microseconds=1)


def at(moment: datetime, type_: str, **fields: Any) -> ConversationEvent:
    """An event at an exact moment (µs edges do not survive float minutes)."""
    event = parse_event(conversation_event(type_, "acct", "conv", moment, **fields))
    assert isinstance(event, ConversationEvent)
    return event


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


# Times are distinct, or equal only where a rule settles the tie (a close beats an open).
HISTORIES = {
    "open-message-transfer-close": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(5), "conversation.message", sender="contact"),
        at(minutes(10), "conversation.transferred", group_id="sales"),
        at(
            minutes(20),
            "conversation.closed",
            closed_by="agent",
            agent_id="bruno",
            close_reason="ok",
        ),
    ],
    "open-close-reopen-to-the-bot": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", closed_by="agent", agent_id="ana", close_reason="x"),
        at(minutes(20), "conversation.opened", bot=True),
        at(minutes(30), "conversation.message", sender="bot"),
    ],
    "activity-before-any-open-then-system-close": [
        at(minutes(0), "conversation.message", sender="contact"),
        at(minutes(1), "conversation.opened", group_id="sales"),
        at(minutes(2), "conversation.note"),
        at(minutes(3), "conversation.closed", closed_by="system"),
    ],
    "two-transfers": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(1), "conversation.transferred", agent_id="bruno"),
        at(minutes(2), "conversation.transferred", group_id="sales"),
        at(minutes(3), "conversation.message", sender="agent", agent_id="carla"),
    ],
    "close-and-reopen-at-the-same-instant": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", closed_by="agent", agent_id="ana"),
        at(minutes(10), "conversation.opened", agent_id="bruno"),
        at(minutes(11), "conversation.note", agent_id="bruno"),
    ],
    "a-close-first-then-activity": [
        at(minutes(0), "conversation.closed", closed_by="system"),
        at(minutes(1), "conversation.message", sender="contact"),
        at(minutes(2), "conversation.transferred", agent_id="bruno"),
    ],
    "closed-twice-reopened-twice-then-handed-over": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", closed_by="agent", agent_id="ana", close_reason="x"),
        at(minutes(20), "conversation.opened", bot=True),
        at(minutes(25), "conversation.closed", closed_by="system"),
        at(minutes(30), "conversation.opened", bot=True),
        at(minutes(40), "conversation.opened", agent_id="bruno"),
    ],
    "a-close-between-two-opens-before-the-reopen": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(12), "conversation.closed", closed_by="agent", agent_id="ana", close_reason="x"),
        at(minutes(15), "conversation.opened", bot=True),
        at(minutes(20), "conversation.opened", agent_id="bruno"),
    ],
    "two-closes-at-one-instant-before-the-reopen": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", closed_by="agent", agent_id="ana", close_reason="x"),
        at(minutes(10), "conversation.closed", closed_by="system"),
        at(minutes(10), "conversation.opened", agent_id="carla"),
        at(minutes(20), "conversation.opened", agent_id="bruno"),
    ],
}


def in_time_order(events: list[ConversationEvent]) -> Conversation:
    return apply_all(sorted(events, key=lambda e: e.occurred_at))


@pytest.mark.parametrize("history", HISTORIES.values(), ids=HISTORIES.keys())
def test_every_order_gives_what_the_time_order_gives(history: list[ConversationEvent]) -> None:
    expected = in_time_order(history)
    for order in itertools.permutations(history):
        assert apply_all(list(order)) == expected, [e.type for e in order]


@pytest.mark.parametrize("history", HISTORIES.values(), ids=HISTORIES.keys())
def test_every_order_with_every_event_delivered_twice_changes_nothing(
    history: list[ConversationEvent],
) -> None:
    expected = in_time_order(history)
    for order in itertools.permutations(history):
        assert apply_all([e for event in order for e in (event, event)]) == expected
        assert apply_all([*order, *order]) == expected


@pytest.mark.parametrize("history", HISTORIES.values(), ids=HISTORIES.keys())
def test_in_every_order_last_activity_is_the_newest_occurred_at(
    history: list[ConversationEvent],
) -> None:
    newest = max(e.occurred_at for e in history)
    for order in itertools.permutations(history):
        assert apply_all(list(order)).last_activity_at == newest


@pytest.mark.parametrize(
    ("type_", "fields"),
    [
        ("conversation.opened", {"agent_id": "ana"}),
        ("conversation.message", {"sender": "contact"}),
        ("conversation.note", {}),
        ("conversation.transferred", {"group_id": "sales"}),
    ],
    ids=["opened", "message", "note", "transferred"],
)
def test_any_first_event_but_a_close_creates_the_conversation_open(
    type_: str, fields: dict[str, Any]
) -> None:
    state = apply_event(None, at(T0, type_, **fields))
    assert state.status is Status.OPEN
    assert (state.account_id, state.conversation_id, state.contact_id, state.line_id) == (
        "acct",
        "conv",
        "contact-1",
        "line-1",
    )
    assert state.last_activity_at == T0
    assert (state.closed_at, state.closed_by, state.close_reason) == (None, None, None)


def test_a_close_for_an_unseen_conversation_creates_it_closed() -> None:
    close = at(T0, "conversation.closed", closed_by="agent", agent_id="ana", close_reason="spam")
    state = apply_event(None, close)
    assert state.status is Status.CLOSED
    assert (state.closed_at, state.closed_by, state.closing_agent_id, state.close_reason) == (
        T0,
        ClosedBy.AGENT,
        "ana",
        "spam",
    )


def test_a_new_conversation_is_open_with_no_status_time_and_no_assignee() -> None:
    assert new_conversation(at(T0, "conversation.closed", closed_by="system")) == Conversation(
        account_id="acct",
        conversation_id="conv",
        contact_id="contact-1",
        line_id="line-1",
        status=Status.OPEN,
        last_activity_at=T0,
    )


@pytest.mark.parametrize(
    ("activity_at", "last_activity"),
    [
        (T0 - timedelta(days=1), T0),
        (T0 - µs, T0),
        (T0, T0),
        (T0 + µs, T0 + µs),
        (T0 + timedelta(days=1), T0 + timedelta(days=1)),
    ],
    ids=["a-day-older", "1µs-older", "same-instant", "1µs-newer", "a-day-newer"],
)
def test_touch_keeps_the_newest_of_the_two_times(
    activity_at: datetime, last_activity: datetime
) -> None:
    state = new_conversation(at(T0, "conversation.note"))
    assert touch(state, activity_at).last_activity_at == last_activity


@pytest.mark.parametrize(
    "late_close_at",
    [minutes(20) - µs, minutes(15), minutes(10), minutes(0) - timedelta(days=1)],
    ids=["1µs-before-the-reopen", "between", "at-the-first-close", "before-the-first-open"],
)
def test_a_late_close_older_than_the_applied_reopen_is_ignored(late_close_at: datetime) -> None:
    state = apply_all(
        [
            at(minutes(0), "conversation.opened", agent_id="ana"),
            at(minutes(10), "conversation.closed", closed_by="system"),
            at(minutes(20), "conversation.opened", bot=True),
        ]
    )
    late = at(
        late_close_at, "conversation.closed", closed_by="agent", agent_id="x", close_reason="y"
    )

    after = apply_event(state, late)

    assert after.status is Status.OPEN
    assert after.status_changed_at == minutes(20)
    assert (after.closed_at, after.closed_by, after.closing_agent_id, after.close_reason) == (
        None,
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("open_at", "status"),
    [
        (minutes(10) - timedelta(hours=1), Status.CLOSED),
        (minutes(10) - µs, Status.CLOSED),
        (minutes(10), Status.CLOSED),
        (minutes(10) + µs, Status.OPEN),
    ],
    ids=["an-hour-before-the-close", "1µs-before", "same-instant", "1µs-after"],
)
def test_an_open_reopens_only_if_strictly_newer_than_the_close(
    open_at: datetime, status: Status
) -> None:
    state = apply_all(
        [
            at(minutes(0), "conversation.message", sender="contact"),
            at(
                minutes(10),
                "conversation.closed",
                closed_by="agent",
                agent_id="ana",
                close_reason="x",
            ),
        ]
    )
    assert apply_event(state, at(open_at, "conversation.opened", agent_id="bruno")).status is status


@pytest.mark.parametrize(
    ("transfer_at", "agent", "group"),
    [
        (minutes(10) - timedelta(hours=1), "ana", None),
        (minutes(10) - µs, "ana", None),
        (minutes(10) + µs, None, "sales"),
        (minutes(10) + timedelta(hours=1), None, "sales"),
    ],
    ids=["an-hour-older", "1µs-older", "1µs-newer", "an-hour-newer"],
)
def test_a_transfer_changes_the_assignee_only_if_newer_than_the_last_assignment(
    transfer_at: datetime, agent: str | None, group: str | None
) -> None:
    state = apply_all(
        [
            at(minutes(0), "conversation.opened", bot=True),
            at(minutes(10), "conversation.transferred", agent_id="ana"),
        ]
    )

    after = apply_event(state, at(transfer_at, "conversation.transferred", group_id="sales"))

    assert (after.assignee_agent_id, after.assignee_group_id, after.assignee_bot) == (
        agent,
        group,
        False,
    )
    assert after.last_activity_at == max(minutes(10), transfer_at)


def test_an_open_older_than_the_last_transfer_does_not_take_the_assignee_back() -> None:
    state = apply_all([at(minutes(10), "conversation.transferred", agent_id="bruno")])
    after = apply_event(state, at(minutes(5), "conversation.opened", agent_id="ana"))
    assert (after.assignee_agent_id, after.assigned_at) == ("bruno", minutes(10))


@pytest.mark.parametrize(
    ("type_", "fields", "assignee"),
    [
        ("conversation.opened", {"agent_id": "ana"}, ("ana", None, False)),
        ("conversation.opened", {"group_id": "sales"}, (None, "sales", False)),
        ("conversation.opened", {"bot": True}, (None, None, True)),
        ("conversation.transferred", {"agent_id": "bruno"}, ("bruno", None, False)),
        ("conversation.transferred", {"group_id": "sales"}, (None, "sales", False)),
    ],
    ids=["open-to-agent", "open-to-group", "open-to-bot", "transfer-to-agent", "to-group"],
)
def test_an_open_or_transfer_replaces_the_whole_assignee(
    type_: str, fields: dict[str, Any], assignee: tuple[str | None, str | None, bool]
) -> None:
    before = apply_event(None, at(T0 - timedelta(hours=1), "conversation.opened", agent_id="zoe"))
    after = apply_event(before, at(T0, type_, **fields))
    assert (after.assignee_agent_id, after.assignee_group_id, after.assignee_bot) == assignee
    assert after.assigned_at == T0


@pytest.mark.parametrize(
    ("type_", "fields"),
    [
        ("conversation.message", {"sender": "contact"}),
        ("conversation.message", {"sender": "agent", "agent_id": "ana"}),
        ("conversation.message", {"sender": "bot"}),
        ("conversation.note", {"agent_id": "ana"}),
        ("conversation.transferred", {"agent_id": "bruno"}),
    ],
    ids=["contact-message", "agent-message", "bot-message", "note", "transfer"],
)
def test_activity_after_a_close_moves_last_activity_but_does_not_reopen(
    type_: str, fields: dict[str, Any]
) -> None:
    state = apply_all([OPEN, CLOSE])

    after = apply_event(state, at(minutes(11), type_, **fields))

    assert after.status is Status.CLOSED
    assert (after.closed_at, after.closing_agent_id, after.close_reason) == (
        minutes(10),
        "ana",
        "done",
    )
    assert after.last_activity_at == minutes(11)


def test_two_assignments_at_the_same_instant_converge_whatever_the_order() -> None:
    history = [
        at(T0, "conversation.opened", agent_id="ana"),
        at(T0, "conversation.transferred", group_id="sales"),
        at(T0, "conversation.transferred", agent_id="bruno"),
    ]
    assert len({apply_all(list(order)) for order in itertools.permutations(history)}) == 1


def test_two_different_closes_at_the_same_instant_converge_whatever_the_order() -> None:
    history = [
        at(T0, "conversation.message", sender="contact"),
        at(minutes(10), "conversation.closed", closed_by="agent", agent_id="ana", close_reason="x"),
        at(minutes(10), "conversation.closed", closed_by="system"),
    ]
    assert len({apply_all(list(order)) for order in itertools.permutations(history)}) == 1


# --- The sweep as one of the steps: a close that arrives after the auto-close ------------------

CLOSE_AFTER = timedelta(hours=1)
SWEEP = "sweep"
"""A step of a permutation: the sweep runs (policies.inactivity.auto_close at SWEPT_AT)."""
SWEPT_AT = minutes(30) + CLOSE_AFTER
"""Past the deadline of every state the histories below can be in: an open one is always due."""

Step = ConversationEvent | str


def run(steps: list[Step]) -> tuple[Conversation, ContactRouted]:
    """Apply the steps, then the beat's next sweep (at the same instant), and route the contact
    who writes a minute later; the state and the routing decision."""
    settings = AccountSettings(inactivity_close_after=CLOSE_AFTER, reassignment_window=DAY)
    state: Conversation | None = None
    for step in [*steps, SWEEP]:
        if isinstance(step, str):
            closing = None if state is None else auto_close(state, settings, SWEPT_AT)
            state = state if closing is None else closing[0]
        else:
            state = apply_event(state, step)
    assert state is not None
    inbound = ContactInbound(
        type="contact.inbound",
        event_id="in-1",
        account_id="acct",
        occurred_at=SWEPT_AT + timedelta(minutes=1),
        contact_id="contact-1",
        line_id="line-1",
    )
    routed = route_inbound(inbound, [state], settings, LineOwner(), {}, SWEPT_AT)
    return state, routed


DAY = timedelta(days=1)

AGENT_CLOSE = {"closed_by": "agent", "agent_id": "ana", "close_reason": "resolved"}

WITH_A_SWEEP: dict[str, list[ConversationEvent]] = {
    "idle-then-auto-closed": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(5), "conversation.message", sender="contact"),
    ],
    "agent-close-dated-before-the-deadline": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(5), "conversation.message", sender="contact"),
        at(minutes(10), "conversation.closed", **AGENT_CLOSE),
    ],
    "agent-close-at-the-instant-of-the-open": [
        at(minutes(10), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", **AGENT_CLOSE),
        at(minutes(20), "conversation.note", agent_id="ana"),
    ],
    "activity-before-any-open-then-agent-close": [
        at(minutes(0), "conversation.message", sender="contact"),
        at(minutes(10), "conversation.closed", **AGENT_CLOSE),
    ],
    "close-of-an-earlier-period-then-reopen": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", **AGENT_CLOSE),
        at(minutes(20), "conversation.opened", agent_id="bruno"),
        at(minutes(30), "conversation.message", sender="contact"),
    ],
    "reopened-and-closed-again-by-another-agent": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", **AGENT_CLOSE),
        at(minutes(20), "conversation.opened", agent_id="bruno"),
        at(
            minutes(25),
            "conversation.closed",
            closed_by="agent",
            agent_id="bruno",
            close_reason="ok",
        ),
    ],
    "closed-then-reopened-to-the-bot-then-handed-over": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", **AGENT_CLOSE),
        at(minutes(20), "conversation.opened", bot=True),
        at(minutes(25), "conversation.opened", agent_id="bruno"),
    ],
    "an-upstream-system-close-and-an-agent-close": [
        at(minutes(0), "conversation.opened", agent_id="ana"),
        at(minutes(10), "conversation.closed", closed_by="system"),
        at(minutes(15), "conversation.closed", **AGENT_CLOSE),
    ],
}


@pytest.mark.parametrize("history", WITH_A_SWEEP.values(), ids=WITH_A_SWEEP.keys())
def test_wherever_the_sweep_falls_among_the_events_the_state_and_the_routing_are_the_same(
    history: list[ConversationEvent],
) -> None:
    expected = run([*sorted(history, key=lambda e: e.occurred_at), SWEEP])
    for order in itertools.permutations([*history, SWEEP]):
        assert run(list(order)) == expected, [getattr(s, "type", s) for s in order]


def test_a_close_dated_before_an_auto_close_but_delivered_after_it_replaces_it() -> None:
    settings = AccountSettings(inactivity_close_after=CLOSE_AFTER)
    state = apply_all([at(minutes(0), "conversation.opened", agent_id="ana")])
    closing = auto_close(state, settings, SWEPT_AT)
    assert closing is not None

    after = apply_event(closing[0], at(minutes(10), "conversation.closed", **AGENT_CLOSE))

    assert after.status is Status.CLOSED
    assert (after.closed_by, after.closing_agent_id, after.close_reason, after.closed_at) == (
        ClosedBy.AGENT,
        "ana",
        "resolved",
        minutes(10),
    )
    assert (after.auto_closed, after.status_changed_at) == (False, minutes(10))


@pytest.mark.parametrize(
    ("close_at", "replaces"),
    [
        (minutes(20) - timedelta(days=1), False),
        (minutes(20) - µs, False),
        (minutes(20), True),
        (minutes(20) + µs, True),
        (SWEPT_AT, True),
        (SWEPT_AT + timedelta(days=1), True),
    ],
    ids=[
        "a-day-before-the-open",
        "1µs-before-the-open",
        "at-the-open",
        "1µs-after-the-open",
        "at-the-sweep",
        "after-the-sweep",
    ],
)
def test_a_late_close_replaces_the_auto_close_only_if_it_belongs_to_the_period_it_ended(
    close_at: datetime, replaces: bool
) -> None:
    settings = AccountSettings(inactivity_close_after=CLOSE_AFTER)
    state = apply_all(
        [
            at(minutes(0), "conversation.opened", agent_id="ana"),
            at(minutes(10), "conversation.closed", closed_by="agent", agent_id="ana"),
            at(minutes(20), "conversation.opened", agent_id="bruno"),
        ]
    )
    closing = auto_close(state, settings, SWEPT_AT)
    assert closing is not None

    after = apply_event(
        closing[0],
        at(close_at, "conversation.closed", closed_by="agent", agent_id="bruno", close_reason="ok"),
    )

    assert after.auto_closed is not replaces
    assert after.closed_by is (ClosedBy.AGENT if replaces else ClosedBy.SYSTEM)
    assert after.closed_at == (close_at if replaces else SWEPT_AT)


# --- What the current open replaced: previous_* ------------------------------------------------


def previous(state: Conversation) -> tuple[object, ...]:
    return (
        state.previous_closed_at,
        state.previous_closed_by,
        state.previous_closing_agent_id,
        state.previous_close_reason,
        state.previous_opened_at,
    )


ANAS_CLOSE = at(
    minutes(10), "conversation.closed", closed_by="agent", agent_id="ana", close_reason="x"
)
NO_PREVIOUS = (None, None, None, None, None)


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        ([at(minutes(0), "conversation.opened", agent_id="ana")], NO_PREVIOUS),
        (
            [
                at(minutes(0), "conversation.message", sender="contact"),
                at(minutes(5), "conversation.opened", bot=True),
            ],
            NO_PREVIOUS,
        ),
        (
            [ANAS_CLOSE, at(minutes(20), "conversation.opened", bot=True)],
            (minutes(10), ClosedBy.AGENT, "ana", "x", None),
        ),
        (
            [
                at(minutes(0), "conversation.opened", agent_id="ana"),
                at(minutes(20), "conversation.opened", agent_id="bruno"),
            ],
            (None, None, None, None, minutes(0)),
        ),
        (
            [
                ANAS_CLOSE,
                at(minutes(20), "conversation.opened", bot=True),
                at(minutes(30), "conversation.opened", agent_id="bruno"),
            ],
            (minutes(10), ClosedBy.AGENT, "ana", "x", minutes(20)),
        ),
        ([at(minutes(0), "conversation.opened", agent_id="ana"), ANAS_CLOSE], NO_PREVIOUS),
        (
            [
                ANAS_CLOSE,
                at(minutes(20), "conversation.opened", bot=True),
                at(minutes(30), "conversation.closed", closed_by="system"),
            ],
            NO_PREVIOUS,
        ),
    ],
    ids=[
        "first-open",
        "open-after-activity",
        "reopen-after-a-close",
        "open-after-an-open",
        "two-opens-after-a-close",
        "closed",
        "closed-again",
    ],
)
def test_the_previous_fields_hold_the_newest_close_and_open_before_the_current_open(
    history: list[ConversationEvent], expected: tuple[object, ...]
) -> None:
    for order in itertools.permutations(history):
        assert previous(apply_all(list(order))) == expected


def test_a_late_close_newer_than_the_previous_open_drops_it() -> None:
    state = apply_all(
        [
            at(minutes(0), "conversation.opened", agent_id="ana"),
            at(minutes(20), "conversation.opened", agent_id="bruno"),
        ]
    )

    after = apply_event(state, ANAS_CLOSE)

    assert (after.status, after.status_changed_at) == (Status.OPEN, minutes(20))
    assert previous(after) == (minutes(10), ClosedBy.AGENT, "ana", "x", None)


def test_an_open_after_an_automatic_close_keeps_it_as_the_previous_close() -> None:
    settings = AccountSettings(inactivity_close_after=CLOSE_AFTER)
    state = apply_all([ANAS_CLOSE, at(minutes(20), "conversation.opened", agent_id="bruno")])
    closing = auto_close(state, settings, SWEPT_AT)
    assert closing is not None
    assert previous(closing[0]) == previous(state)  # provisional: the period's open is kept

    reopened = apply_event(closing[0], at(SWEPT_AT + µs, "conversation.opened", bot=True))

    assert previous(reopened) == (SWEPT_AT, ClosedBy.SYSTEM, None, INACTIVITY, None)


def test_an_open_dated_before_an_automatic_close_replaces_the_period_open_instead() -> None:
    settings = AccountSettings(inactivity_close_after=CLOSE_AFTER)
    state = apply_all([ANAS_CLOSE, at(minutes(20), "conversation.opened", agent_id="bruno")])
    closing = auto_close(state, settings, SWEPT_AT)
    assert closing is not None

    reopened = apply_event(closing[0], at(SWEPT_AT, "conversation.opened", bot=True))

    assert previous(reopened) == (minutes(10), ClosedBy.AGENT, "ana", "x", minutes(20))
