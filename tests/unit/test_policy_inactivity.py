"""Auto-close: a conversation closes when it has been idle for the account's setting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policies.inactivity import auto_close, close_deadline, is_due
from policies.state import INACTIVITY, AccountSettings, ClosedBy, Conversation, Status
from tests.support import utc

LAST = utc("2026-03-01T10:00:00")
µs = timedelta(microseconds=1)


def conversation(status: Status = Status.OPEN, last: object = LAST) -> Conversation:
    return Conversation(
        account_id="acct",
        conversation_id="conv",
        contact_id="maria",
        line_id="sales",
        status=status,
        last_activity_at=last,  # type: ignore[arg-type]
        assignee_agent_id="ana",
    )


def every(days: float = 0, hours: float = 0, seconds: float = 0) -> AccountSettings:
    return AccountSettings(
        inactivity_close_after=timedelta(days=days, hours=hours, seconds=seconds)
    )


NEVER = AccountSettings(inactivity_close_after=None)


@pytest.mark.parametrize(
    ("settings", "now", "due"),
    [
        (every(days=1), LAST + timedelta(days=1) - µs, False),
        (every(days=1), LAST + timedelta(days=1), True),
        (every(days=1), LAST + timedelta(days=1) + µs, True),
        (every(days=3), LAST + timedelta(days=2, hours=23), False),
        (every(days=7), LAST + timedelta(days=7), True),
        (every(days=14), LAST + timedelta(days=13), False),
        (every(days=30), LAST + timedelta(days=30), True),
        (every(seconds=2), LAST + timedelta(seconds=2), True),
        (NEVER, LAST + timedelta(days=10_000), False),
    ],
    ids=[
        "1d-1µs-before",
        "1d-exactly-at-deadline",
        "1d-after",
        "3d-not-yet",
        "7d-at",
        "14d-not-yet",
        "30d-at",
        "2s-at",
        "never",
    ],
)
def test_a_conversation_is_due_exactly_when_its_idle_time_reaches_the_setting(
    settings: AccountSettings, now: object, due: bool
) -> None:
    assert is_due(conversation(), settings, now) is due  # type: ignore[arg-type]


def test_the_deadline_is_last_activity_plus_the_setting() -> None:
    assert close_deadline(conversation(), every(days=7)) == LAST + timedelta(days=7)
    assert close_deadline(conversation(), NEVER) is None


def test_a_closed_conversation_is_never_due() -> None:
    closed = conversation(status=Status.CLOSED)
    assert close_deadline(closed, every(seconds=1)) is None
    assert auto_close(closed, every(seconds=1), LAST + timedelta(days=1)) is None


def test_auto_close_closes_by_the_system_for_inactivity_and_explains_why() -> None:
    now = LAST + timedelta(days=7, seconds=1)
    result = auto_close(conversation(), every(days=7), now)

    assert result is not None
    closed, decision = result
    assert closed.status is Status.CLOSED
    assert (closed.closed_by, closed.close_reason, closed.closed_at) == (
        ClosedBy.SYSTEM,
        INACTIVITY,
        now,
    )
    assert closed.status_changed_at == now
    assert decision.type == "conversation.auto_closed"
    assert (decision.conversation_id, decision.contact_id, decision.line_id) == (
        "conv",
        "maria",
        "sales",
    )
    assert decision.last_activity_at == LAST
    assert decision.closed_at == decision.decided_at == now
    assert decision.inactivity_close_after == timedelta(days=7)
    assert decision.reason == (
        "no action for 7d 1s; the account closes conversations after 7d without action"
    )


def test_auto_close_does_nothing_before_the_deadline() -> None:
    assert auto_close(conversation(), every(days=1), LAST + timedelta(hours=23)) is None


def test_the_decision_id_is_stable_for_one_idle_period_and_new_for_the_next() -> None:
    settings = every(hours=1)
    first = auto_close(conversation(), settings, LAST + timedelta(hours=2))
    again = auto_close(conversation(), settings, LAST + timedelta(hours=3))
    later = auto_close(
        conversation(last=LAST + timedelta(days=1)), settings, LAST + timedelta(days=2)
    )
    assert first is not None
    assert again is not None
    assert later is not None
    assert first[1].decision_id == again[1].decision_id
    assert later[1].decision_id != first[1].decision_id
