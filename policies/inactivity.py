"""Auto-close of inactive conversations: when a conversation is due, and the close itself."""

from __future__ import annotations

from datetime import datetime, timedelta

from events.business_hours import BusinessHours
from events.decisions import AutoClosed
from policies import calendar
from policies.conversation import closed
from policies.durations import humanize
from policies.identity import decision_id
from policies.state import INACTIVITY, AccountSettings, ClosedBy, Conversation


def deadline_after(
    last_activity_at: datetime,
    close_after: timedelta | None,
    business_hours: BusinessHours | None = None,
) -> datetime | None:
    """The close deadline of an open conversation (UTC): when `close_after` of counted time has
    passed since the last activity. Without business hours all time counts (last activity +
    the setting); with them only time inside their opening ranges (policies.calendar).

    None for a setting of Never, for business hours that never open, and at or after
    9000-01-01 (events.models.LATEST: a deadline that far means Never in practice). The one
    place this rule is written: the SQL reschedule is checked against it
    (tests/store/test_deadline_rule.py) and the close-lag metric uses it.
    """
    if close_after is None:
        return None
    return calendar.deadline(last_activity_at, close_after, business_hours)


def close_deadline(conversation: Conversation, settings: AccountSettings) -> datetime | None:
    """When the conversation closes if nothing else happens; None if it never will."""
    if not conversation.is_open:
        return None
    return deadline_after(
        conversation.last_activity_at, settings.inactivity_close_after, settings.business_hours
    )


def is_due(conversation: Conversation, settings: AccountSettings, now: datetime) -> bool:
    """True once `now` reaches the deadline (exactly at the deadline counts as due)."""
    deadline = close_deadline(conversation, settings)
    return deadline is not None and now >= deadline


def auto_close(
    conversation: Conversation, settings: AccountSettings, now: datetime
) -> tuple[Conversation, AutoClosed] | None:
    """Close an open conversation idle for the account's setting; None if it must stay open.

    The decision id is derived from the conversation and its last activity, so one idle period
    can be closed at most once, however many sweeps see it. `status_changed_at` stays at the
    start of the period (see `Conversation.auto_closed`): an agent's close dated within the
    period and delivered late replaces this one.
    """
    if not is_due(conversation, settings, now):
        return None
    assert settings.inactivity_close_after is not None  # is_due checked it
    # status_changed_at is kept: see the docstring.
    closed_now = closed(
        conversation,
        at=now,
        by=ClosedBy.SYSTEM,
        agent_id=None,
        reason=INACTIVITY,
        automatic=True,
    )
    decision = AutoClosed(
        decision_id=decision_id(
            "conversation.auto_closed",
            conversation.account_id,
            conversation.conversation_id,
            conversation.last_activity_at.isoformat(),
        ),
        account_id=conversation.account_id,
        decided_at=now,
        reason=close_reason(conversation.last_activity_at, now, settings),
        conversation_id=conversation.conversation_id,
        contact_id=conversation.contact_id,
        line_id=conversation.line_id,
        last_activity_at=conversation.last_activity_at,
        closed_at=now,
        inactivity_close_after=settings.inactivity_close_after,
        business_hours=settings.business_hours,
    )
    return closed_now, decision


def close_reason(last_activity_at: datetime, now: datetime, settings: AccountSettings) -> str:
    """Why a conversation idle since `last_activity_at` closes at `now`, in words: the idle
    time as the rule counted it (business hours, and the clock beside them, when they apply)."""
    assert settings.inactivity_close_after is not None  # only a due conversation is explained
    setting = humanize(settings.inactivity_close_after)
    idle = now - last_activity_at
    hours = settings.business_hours
    if hours is None:
        return (
            f"no action for {humanize(idle)}; the account closes conversations after "
            f"{setting} without action"
        )
    counted = calendar.counted_between(last_activity_at, now, hours)
    return (
        f"no action for {humanize(counted)} of business hours ({humanize(idle)} on the clock); "
        f"the account closes conversations after {setting} of business hours "
        f"({hours.timezone}) without action"
    )
