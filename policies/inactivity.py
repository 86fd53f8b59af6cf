"""Auto-close of inactive conversations: when a conversation is due, the warning before the
close, and the close itself.

The sweep looks at a conversation at `next_check`: its warning time while a warning is
configured and not yet sent for the idle period, else its close deadline. The stored
`conversations.close_due_at` holds that time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from typing import NamedTuple

from events.business_hours import BusinessHours
from events.decisions import AutoClosed, CloseWarning
from policies import calendar
from policies.configuration import set_by
from policies.conversation import closed
from policies.durations import humanize
from policies.identity import decision_id
from policies.state import (
    INACTIVITY,
    AccountSettings,
    ClosedBy,
    Conversation,
    LineSettings,
    changed,
)


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


def warning_at_after(
    last_activity_at: datetime, deadline: datetime | None, warning_before: timedelta | None
) -> datetime | None:
    """When the warning is due, given the deadline: `warning_before` ahead of it, but never
    before the last activity (a warning period longer than the close setting warns at once).
    None without a deadline or without a warning setting. The SQL reschedule is checked
    against it (tests/store/test_deadline_rule.py)."""
    if deadline is None or warning_before is None:
        return None
    try:
        at = deadline - warning_before
    except OverflowError:
        return last_activity_at
    return max(at, last_activity_at)


def warning_at(conversation: Conversation, settings: AccountSettings) -> datetime | None:
    """When this idle period's warning is due (UTC); None when none is configured, the
    conversation never closes, or this period was already warned about."""
    if conversation.close_warned_at is not None:
        return None
    return warning_at_after(
        conversation.last_activity_at,
        close_deadline(conversation, settings),
        settings.close_warning_before,
    )


def next_check(conversation: Conversation, settings: AccountSettings) -> datetime | None:
    """When the sweep must next look at the conversation (UTC; None: never): the warning time
    while a warning is due for this idle period, else the close deadline."""
    warn_at = warning_at(conversation, settings)
    return warn_at if warn_at is not None else close_deadline(conversation, settings)


def warn(
    conversation: Conversation, settings: AccountSettings, now: datetime
) -> tuple[Conversation, CloseWarning] | None:
    """Warn that the conversation will close, once `now` reaches the warning time; None when
    no warning is due (not yet, none configured, or this idle period already warned about).

    The conversation remembers the warning (`close_warned_at`), so the period is warned about
    once; the decision id is derived from the conversation and its last activity, so even a
    warning decided twice is one decision. The close itself is `auto_close`'s: a warning does
    not move the deadline.
    """
    warn_at = warning_at(conversation, settings)
    if warn_at is None or now < warn_at:
        return None
    deadline = close_deadline(conversation, settings)
    # warning_at found a deadline, so there is one, and a close setting.
    assert deadline is not None
    assert settings.inactivity_close_after is not None
    idle = now - conversation.last_activity_at
    decision = CloseWarning(
        decision_id=decision_id(
            conversation.last_activity_at,
            "conversation.close_warning",
            conversation.account_id,
            conversation.conversation_id,
            conversation.last_activity_at.isoformat(),
        ),
        account_id=conversation.account_id,
        decided_at=now,
        reason=(
            f"no action for {humanize(idle)}; the account closes conversations after "
            f"{humanize(settings.inactivity_close_after)} without action; closes at "
            f"{deadline.isoformat()} unless there is activity first"
        ),
        conversation_id=conversation.conversation_id,
        contact_id=conversation.contact_id,
        line_id=conversation.line_id,
        last_activity_at=conversation.last_activity_at,
        closes_at=deadline,
    )
    return changed(conversation, close_warned_at=now), decision


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
    decision = auto_close_decision(conversation, settings, now, line=line)
    if decision is None:
        return None
    return auto_closed(conversation, now), decision


def auto_closed(conversation: Conversation, now: datetime) -> Conversation:
    """The conversation as the sweep's close at `now` leaves it; `status_changed_at` is kept
    (see `auto_close`). store.conversations.save_auto_closes writes the same in SQL."""
    return closed(
        conversation,
        at=now,
        by=ClosedBy.SYSTEM,
        agent_id=None,
        reason=INACTIVITY,
        automatic=True,
    )


def auto_close_decision(
    conversation: Conversation,
    settings: AccountSettings,
    now: datetime,
    *,
    line: LineSettings | None = None,
) -> AutoClosed | None:
    """`auto_close`'s decision alone (None if the conversation must stay open), for a caller
    that stores the close itself as `auto_closed` makes it (the sweep, in one statement)."""
    if not is_due(conversation, settings, now):
        return None
    return closing(
        IdleConversation(
            conversation.account_id,
            conversation.conversation_id,
            conversation.contact_id,
            conversation.line_id,
            conversation.last_activity_at,
        ),
        settings,
        now,
        who=set_by("inactivity_close_after", conversation.line_id, line or _NO_OVERRIDES),
    )


class IdleConversation(NamedTuple):
    """What the decision of an auto-close says of the conversation it closes: all a close
    needs where the store has found the conversation due and closed it in SQL
    (store.conversations.close_due_at_once) without reading the rest of its row."""

    account_id: str
    conversation_id: str
    contact_id: str
    line_id: str
    last_activity_at: datetime


def closing(
    idle: IdleConversation, settings: AccountSettings, now: datetime, *, who: str
) -> AutoClosed:
    """The decision of closing at `now` a conversation that `settings` (those in force on its
    line) make due by then; `who` set the close setting (policies.configuration.set_by). The
    caller has found it due: `auto_close_decision` by the rule, the store's set-based close
    by the same rule in SQL (tests/store/test_close_at_once_rule.py holds the two together)."""
    assert settings.inactivity_close_after is not None  # only a due conversation is closed
    last_activity_at = idle.last_activity_at
    return AutoClosed(
        decision_id=decision_id(
            last_activity_at,
            "conversation.auto_closed",
            idle.account_id,
            idle.conversation_id,
            last_activity_at.isoformat(),
        ),
        account_id=idle.account_id,
        decided_at=now,
        reason=close_reason(last_activity_at, now, settings, who=who),
        conversation_id=idle.conversation_id,
        contact_id=idle.contact_id,
        line_id=idle.line_id,
        last_activity_at=last_activity_at,
        closed_at=now,
        inactivity_close_after=settings.inactivity_close_after,
        business_hours=settings.business_hours,
    )


_NO_OVERRIDES = LineSettings()


@lru_cache(maxsize=256)
def _humanized(setting: timedelta) -> str:
    # A setting is shared by every close of its line: humanize it once, not per close.
    return humanize(setting)


def close_reason(
    last_activity_at: datetime,
    now: datetime,
    settings: AccountSettings,
    *,
    who: str = "the account",
) -> str:
    """Why a conversation idle since `last_activity_at` closes at `now`, in words: the idle
    time as the rule counted it (business hours, and the clock beside them, when they apply),
    and `who` set the close setting ("the account", "line L")."""
    assert settings.inactivity_close_after is not None  # only a due conversation is explained
    setting = _humanized(settings.inactivity_close_after)
    idle = now - last_activity_at
    hours = settings.business_hours
    if hours is None:
        return (
            f"no action for {humanize(idle)}; {who} closes conversations after "
            f"{setting} without action"
        )
    counted = calendar.counted_between(last_activity_at, now, hours)
    return (
        f"no action for {humanize(counted)} of business hours ({humanize(idle)} on the clock); "
        f"{who} closes conversations after {setting} of business hours "
        f"({hours.timezone}) without action"
    )
