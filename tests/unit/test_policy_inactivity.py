"""Auto-close: a conversation closes when it has been idle for the account's setting."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

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
    # The close is marked automatic and keeps the start of the idle period it ended, so a close
    # dated within the period and delivered late can replace it (policies.conversation).
    assert closed.auto_closed
    assert closed.status_changed_at == conversation().status_changed_at
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


# --- Edges, Never, and the decision -----------------------------------------------------------

FAR_FUTURE = datetime.max.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "setting",
    [µs, timedelta(seconds=1), timedelta(hours=24), timedelta(days=7), timedelta(days=365)],
    ids=["1µs", "1s", "24h", "7d", "1y"],
)
@pytest.mark.parametrize(
    ("offset", "due"),
    [
        (-timedelta(days=1), False),
        (-µs, False),
        (timedelta(0), True),
        (µs, True),
        (timedelta(days=1), True),
    ],
    ids=["a-day-before", "1µs-before", "exactly-at", "1µs-after", "a-day-after"],
)
def test_due_from_exactly_the_deadline_on_whatever_the_setting(
    setting: timedelta, offset: timedelta, due: bool
) -> None:
    settings = AccountSettings(inactivity_close_after=setting)
    deadline = LAST + setting
    assert close_deadline(conversation(), settings) == deadline
    assert is_due(conversation(), settings, deadline + offset) is due
    assert (auto_close(conversation(), settings, deadline + offset) is not None) is due


@pytest.mark.parametrize("now", [LAST, LAST + timedelta(days=10_000), FAR_FUTURE])
def test_never_closes_when_the_setting_is_never(now: datetime) -> None:
    assert close_deadline(conversation(), NEVER) is None
    assert is_due(conversation(), NEVER, now) is False
    assert auto_close(conversation(), NEVER, now) is None


def test_a_setting_so_long_the_deadline_is_past_the_calendar_never_closes() -> None:
    longest = AccountSettings(inactivity_close_after=timedelta(days=999_999_999))
    assert close_deadline(conversation(), longest) is None
    assert is_due(conversation(), longest, FAR_FUTURE) is False
    assert auto_close(conversation(), longest, FAR_FUTURE) is None


def _closed(by: ClosedBy, reason: str | None) -> Conversation:
    return replace(
        conversation(status=Status.CLOSED),
        status_changed_at=LAST,
        closed_at=LAST,
        closed_by=by,
        closing_agent_id="ana" if by is ClosedBy.AGENT else None,
        close_reason=reason,
    )


@pytest.mark.parametrize(
    "closed",
    [
        _closed(ClosedBy.AGENT, "resolved"),
        _closed(ClosedBy.AGENT, None),
        _closed(ClosedBy.SYSTEM, None),
        _closed(ClosedBy.SYSTEM, INACTIVITY),
    ],
    ids=["by-agent-with-reason", "by-agent-without", "by-system", "auto-closed"],
)
@pytest.mark.parametrize("now", [LAST, LAST + timedelta(days=1), FAR_FUTURE])
def test_a_closed_conversation_is_never_due_however_it_was_closed(
    closed: Conversation, now: datetime
) -> None:
    settings = every(seconds=1)
    assert close_deadline(closed, settings) is None
    assert is_due(closed, settings, now) is False
    assert auto_close(closed, settings, now) is None


def test_an_auto_closed_conversation_is_not_closed_again_by_the_next_sweep() -> None:
    settings = every(hours=1)
    first = auto_close(conversation(), settings, LAST + timedelta(hours=1))
    assert first is not None
    assert auto_close(first[0], settings, LAST + timedelta(hours=5)) is None


def test_the_close_changes_only_the_status_and_close_fields() -> None:
    now = LAST + timedelta(hours=2)
    before = replace(conversation(), assignee_group_id="sales", assigned_at=LAST, assignee_bot=True)
    result = auto_close(before, every(hours=1), now)
    assert result is not None
    assert result[0] == replace(
        before,
        status=Status.CLOSED,
        closed_at=now,
        closed_by=ClosedBy.SYSTEM,
        closing_agent_id=None,
        close_reason=INACTIVITY,
        auto_closed=True,
    )


def test_the_decision_names_the_account_the_conversation_and_the_setting_that_applied() -> None:
    now = LAST + timedelta(hours=30)
    result = auto_close(conversation(), every(hours=24), now)
    assert result is not None
    assert result[1].model_dump(exclude={"decision_id", "reason"}) == {
        "type": "conversation.auto_closed",
        "account_id": "acct",
        "decided_at": now,
        "conversation_id": "conv",
        "contact_id": "maria",
        "line_id": "sales",
        "last_activity_at": LAST,
        "closed_at": now,
        "inactivity_close_after": timedelta(hours=24),
        "business_hours": None,  # every hour counted
    }


def _decision_id(
    last: datetime = LAST,
    *,
    now: datetime = LAST + timedelta(days=2),
    account: str = "acct",
    conversation_id: str = "conv",
    setting: AccountSettings | None = None,
) -> str:
    state = replace(conversation(last=last), account_id=account, conversation_id=conversation_id)
    result = auto_close(state, setting or every(days=1), now)
    assert result is not None
    return result[1].decision_id


def test_the_same_close_computed_twice_has_the_same_decision_id() -> None:
    assert _decision_id() == _decision_id()
    assert uuid.UUID(_decision_id()).version == 8


def test_a_close_id_begins_with_the_last_activity_so_closes_sort_by_idle_period() -> None:
    earlier, later = _decision_id(LAST), _decision_id(LAST + timedelta(milliseconds=1))
    assert uuid.UUID(earlier).int >> 80 == int(LAST.timestamp() * 1000)
    assert earlier < later


@pytest.mark.parametrize(
    "changed",
    [
        {"now": LAST + timedelta(days=30)},
        {"setting": every(hours=1)},
    ],
    ids=["a-later-sweep", "another-setting"],
)
def test_the_decision_id_does_not_depend_on_when_or_under_which_setting_it_closed(
    changed: dict[str, Any],
) -> None:
    assert _decision_id(**changed) == _decision_id()


@pytest.mark.parametrize(
    "changed",
    [
        {"last": LAST + µs},
        {"last": LAST - timedelta(days=1)},
        {"account": "other-account"},
        {"conversation_id": "other-conversation"},
    ],
    ids=["last-activity-1µs-later", "a-day-earlier", "another-account", "another-conversation"],
)
def test_another_idle_period_or_conversation_gets_another_decision_id(
    changed: dict[str, Any],
) -> None:
    assert _decision_id(**changed) != _decision_id()


@pytest.mark.parametrize(
    ("setting", "idle", "reason"),
    [
        (
            timedelta(hours=24),
            timedelta(hours=24),
            "no action for 1d; the account closes conversations after 1d without action",
        ),
        (
            timedelta(days=7),
            timedelta(days=7, hours=3, seconds=0.75),
            "no action for 7d 3h; the account closes conversations after 7d without action",
        ),
        (
            timedelta(minutes=90),
            timedelta(hours=2, minutes=1, seconds=5),
            "no action for 2h 1m 5s; the account closes conversations after 1h 30m without action",
        ),
        (
            µs,
            µs,
            "no action for 0s; the account closes conversations after 0s without action",
        ),
    ],
    ids=["1d", "7d-with-sub-seconds", "90m", "1µs"],
)
def test_the_reason_reads_in_days_hours_minutes_and_seconds(
    setting: timedelta, idle: timedelta, reason: str
) -> None:
    result = auto_close(conversation(), AccountSettings(setting), LAST + idle)
    assert result is not None
    assert result[1].reason == reason
