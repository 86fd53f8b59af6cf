"""The warning before an auto-close (issue 13): `close_warning_before` ahead of the deadline,
once per idle period; activity starts a new period with its own warning; a system message is
not activity; the sweep looks at a conversation at its `next_check`."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from events.models import ConversationMessage
from policies.conversation import apply_event
from policies.inactivity import auto_close, close_deadline, next_check, warn, warning_at
from policies.state import AccountSettings, Conversation, Status
from tests.support import utc

LAST = utc("2026-03-01T10:00:00")
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
µs = timedelta(microseconds=1)
WARNED_DAY = AccountSettings(inactivity_close_after=DAY, close_warning_before=HOUR)


def conversation(last: datetime = LAST, **changes: object) -> Conversation:
    state = Conversation(
        account_id="acct",
        conversation_id="conv",
        contact_id="maria",
        line_id="sales",
        status=Status.OPEN,
        last_activity_at=last,
    )
    return replace(state, **changes)  # type: ignore[arg-type]


def message(sender: str, at: datetime) -> ConversationMessage:
    return ConversationMessage.model_validate(
        {
            "event_id": f"m-{sender}-{at.isoformat()}",
            "type": "conversation.message",
            "account_id": "acct",
            "conversation_id": "conv",
            "contact_id": "maria",
            "line_id": "sales",
            "occurred_at": at,
            "sender": sender,
            **({"agent_id": "ana"} if sender == "agent" else {}),
        }
    )


@pytest.mark.parametrize(
    ("now", "warned"),
    [
        (LAST + DAY - HOUR - µs, False),
        (LAST + DAY - HOUR, True),
        (LAST + DAY - HOUR + µs, True),
    ],
    ids=["1µs-before-the-warning-time", "exactly-at-the-warning-time", "after-it"],
)
def test_the_warning_is_due_exactly_when_the_deadline_is_the_warning_period_away(
    now: datetime, warned: bool
) -> None:
    assert (warn(conversation(), WARNED_DAY, now) is not None) is warned


def test_the_warning_names_the_conversation_its_idle_period_and_when_it_closes() -> None:
    now = LAST + DAY - HOUR
    result = warn(conversation(), WARNED_DAY, now)
    assert result is not None
    state, decision = result
    assert state.close_warned_at == now
    assert decision.type == "conversation.close_warning"
    assert (decision.conversation_id, decision.contact_id, decision.line_id) == (
        "conv",
        "maria",
        "sales",
    )
    assert decision.last_activity_at == LAST
    assert decision.closes_at == LAST + DAY
    assert decision.decided_at == now
    assert decision.reason.startswith(
        "no action for 23h; the account closes conversations after 1d"
    )
    assert (LAST + DAY).isoformat() in decision.reason


def test_the_sweep_looks_at_the_warning_time_first_and_at_the_deadline_once_warned() -> None:
    fresh = conversation()
    assert next_check(fresh, WARNED_DAY) == LAST + DAY - HOUR
    result = warn(fresh, WARNED_DAY, LAST + DAY - HOUR)
    assert result is not None
    warned, _ = result
    assert next_check(warned, WARNED_DAY) == LAST + DAY == close_deadline(warned, WARNED_DAY)


def test_without_a_warning_setting_the_next_check_is_the_deadline_and_nothing_warns() -> None:
    settings = AccountSettings(inactivity_close_after=DAY)
    assert next_check(conversation(), settings) == LAST + DAY
    assert warn(conversation(), settings, LAST + DAY - µs) is None


def test_a_conversation_that_never_closes_is_never_warned_about() -> None:
    settings = AccountSettings(inactivity_close_after=None, close_warning_before=HOUR)
    assert next_check(conversation(), settings) is None
    assert warn(conversation(), settings, LAST + 1000 * DAY) is None


def test_a_closed_conversation_is_never_warned_about() -> None:
    closed = conversation(status=Status.CLOSED, closed_at=LAST)
    assert next_check(closed, WARNED_DAY) is None
    assert warn(closed, WARNED_DAY, LAST + DAY) is None


def test_a_warning_period_longer_than_the_close_setting_warns_at_the_last_activity() -> None:
    settings = AccountSettings(inactivity_close_after=HOUR, close_warning_before=DAY)
    assert warning_at(conversation(), settings) == LAST
    assert next_check(conversation(), settings) == LAST
    result = warn(conversation(), settings, LAST)
    assert result is not None
    assert result[1].closes_at == LAST + HOUR


def test_a_period_already_warned_about_is_not_warned_about_again() -> None:
    result = warn(conversation(), WARNED_DAY, LAST + DAY - HOUR)
    assert result is not None
    warned, _ = result
    assert warn(warned, WARNED_DAY, LAST + DAY - µs) is None
    assert warning_at(warned, WARNED_DAY) is None


def test_the_same_idle_period_warned_twice_gives_one_decision_id() -> None:
    first = warn(conversation(), WARNED_DAY, LAST + DAY - HOUR)
    again = warn(conversation(), WARNED_DAY, LAST + DAY - HOUR + timedelta(minutes=5))
    assert first is not None
    assert again is not None
    assert first[1].decision_id == again[1].decision_id


def test_activity_after_the_warning_starts_a_new_period_with_its_own_warning() -> None:
    result = warn(conversation(), WARNED_DAY, LAST + DAY - HOUR)
    assert result is not None
    warned, first = result
    reply_at = LAST + DAY - HOUR + timedelta(minutes=10)
    replied = apply_event(warned, message("contact", reply_at))
    assert replied.close_warned_at is None
    # The pending close is off: nothing closes at the old deadline.
    assert auto_close(replied, WARNED_DAY, LAST + DAY) is None
    assert next_check(replied, WARNED_DAY) == reply_at + DAY - HOUR
    second = warn(replied, WARNED_DAY, reply_at + DAY - HOUR)
    assert second is not None
    assert second[1].decision_id != first.decision_id
    assert second[1].closes_at == reply_at + DAY


def test_a_system_message_after_the_warning_neither_restarts_the_timer_nor_warns_again() -> None:
    result = warn(conversation(), WARNED_DAY, LAST + DAY - HOUR)
    assert result is not None
    warned, _ = result
    noticed = apply_event(warned, message("system", LAST + DAY - HOUR + timedelta(seconds=1)))
    assert noticed.last_activity_at == LAST
    assert noticed.close_warned_at == warned.close_warned_at
    assert next_check(noticed, WARNED_DAY) == LAST + DAY
    assert auto_close(noticed, WARNED_DAY, LAST + DAY) is not None


@pytest.mark.parametrize("sender", ["contact", "agent", "bot"])
def test_every_other_message_after_the_warning_restarts_the_timer(sender: str) -> None:
    result = warn(conversation(), WARNED_DAY, LAST + DAY - HOUR)
    assert result is not None
    at = LAST + DAY - HOUR + timedelta(seconds=1)
    moved = apply_event(result[0], message(sender, at))
    assert (moved.last_activity_at, moved.close_warned_at) == (at, None)


def test_a_setting_that_brings_the_deadline_nearer_than_the_warning_warns_at_once() -> None:
    # 20h idle under "close after 1d, warn 1h before": nothing due. The account changes to
    # "close after 21h, warn 2h before": the warning time (19h) is past, the deadline is not.
    now = LAST + timedelta(hours=20)
    assert warn(conversation(), WARNED_DAY, now) is None
    nearer = AccountSettings(
        inactivity_close_after=timedelta(hours=21), close_warning_before=2 * HOUR
    )
    assert next_check(conversation(), nearer) == LAST + timedelta(hours=19)
    assert auto_close(conversation(), nearer, now) is None
    result = warn(conversation(), nearer, now)
    assert result is not None
    warned, decision = result
    assert decision.closes_at == LAST + timedelta(hours=21)
    # ... and the close still comes at the deadline, not later.
    assert next_check(warned, nearer) == LAST + timedelta(hours=21)
    assert auto_close(warned, nearer, LAST + timedelta(hours=21) - µs) is None
    assert auto_close(warned, nearer, LAST + timedelta(hours=21)) is not None
