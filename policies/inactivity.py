"""Auto-close of inactive conversations: when a conversation is due, and the close itself."""

from __future__ import annotations

from datetime import datetime, timedelta

from events.decisions import AutoClosed
from policies.configuration import set_by
from policies.conversation import closed
from policies.durations import humanize
from policies.identity import decision_id
from policies.state import INACTIVITY, AccountSettings, ClosedBy, Conversation, LineSettings


def deadline_after(last_activity_at: datetime, close_after: timedelta | None) -> datetime | None:
    """The close deadline of an open conversation: last activity + the close setting (UTC).

    None for a setting of Never, and past year 9999 (a setting that long means Never in
    practice). The one place this sum is written: the SQL reschedule is checked against it
    (tests/store/test_deadline_rule.py) and the close-lag metric uses it.
    """
    if close_after is None:
        return None
    try:
        return last_activity_at + close_after
    except OverflowError:
        return None


def close_deadline(conversation: Conversation, settings: AccountSettings) -> datetime | None:
    """When the conversation closes if nothing else happens; None if it never will."""
    if not conversation.is_open:
        return None
    return deadline_after(conversation.last_activity_at, settings.inactivity_close_after)


def is_due(conversation: Conversation, settings: AccountSettings, now: datetime) -> bool:
    """True once `now` reaches the deadline (exactly at the deadline counts as due)."""
    deadline = close_deadline(conversation, settings)
    return deadline is not None and now >= deadline


def auto_close(
    conversation: Conversation,
    settings: AccountSettings,
    now: datetime,
    *,
    line: LineSettings | None = None,
) -> tuple[Conversation, AutoClosed] | None:
    """Close an open conversation idle for its setting; None if it must stay open.

    `settings` are those that apply on the conversation's line (policies.configuration
    .effective); `line` holds that line's overrides, so the reason names who set the close
    setting (the line or the account).

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
    idle = now - conversation.last_activity_at
    decision = AutoClosed(
        decision_id=decision_id(
            "conversation.auto_closed",
            conversation.account_id,
            conversation.conversation_id,
            conversation.last_activity_at.isoformat(),
        ),
        account_id=conversation.account_id,
        decided_at=now,
        reason=(
            f"no action for {humanize(idle)}; "
            f"{set_by('inactivity_close_after', conversation.line_id, line or LineSettings())} "
            "closes conversations after "
            f"{humanize(settings.inactivity_close_after)} without action"
        ),
        conversation_id=conversation.conversation_id,
        contact_id=conversation.contact_id,
        line_id=conversation.line_id,
        last_activity_at=conversation.last_activity_at,
        closed_at=now,
        inactivity_close_after=settings.inactivity_close_after,
    )
    return closed_now, decision
