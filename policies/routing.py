"""The reassignment window: where a contact who writes goes.

1. An open conversation on the line keeps the contact where it is (route open_conversation).
2. Else, if the contact's last conversation on the line was closed by an agent with a close
   reason, that agent is still active, and the contact writes before closed_at + window, the
   contact goes back to that agent (route previous_agent). At closed_at + window exactly, the
   window is over.
3. Else the contact is new: the bot if the account has it on, else the line's owner (an agent
   or a group), else nobody (route unassigned).

The conversations count as they stood when the contact wrote (`occurred_at`), whatever arrived
first: a platform opens (or reopens) a conversation because the contact wrote, dated at that
instant or just after, and often delivers that open before the message. So a conversation whose
current open is dated at or after the inbound counts as it was before that open: open if it had
been opened after its last close and before the contact wrote, else closed by the close the open
replaced; a conversation with neither (first opened then) does not count. Closes count whenever
they are dated, as before. Open only through activity seen before any `opened` means open.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from events.decisions import ContactRouted, Route
from events.models import ContactInbound
from policies.durations import humanize
from policies.identity import decision_id
from policies.state import AccountSettings, Agent, ClosedBy, Conversation, LineOwner, Status


def open_conversation(conversations: Iterable[Conversation]) -> Conversation | None:
    """The open conversation with the newest activity, if any."""
    candidates = [c for c in conversations if c.is_open]
    return max(candidates, key=lambda c: c.last_activity_at, default=None)


def last_closed(conversations: Iterable[Conversation]) -> Conversation | None:
    """The conversation closed most recently, if any."""
    closed = [c for c in conversations if not c.is_open and c.closed_at is not None]
    return max(closed, key=lambda c: (c.closed_at, c.conversation_id), default=None)


def as_it_stood(conversation: Conversation, wrote_at: datetime) -> Conversation | None:
    """The conversation as it stood when the contact wrote (UTC), as far as routing needs;
    None if it did not exist then (see the module docstring)."""
    opened_at = conversation.status_changed_at
    if not conversation.is_open or opened_at is None or opened_at < wrote_at:
        return conversation
    closed_at, reopened_at = conversation.previous_closed_at, conversation.previous_opened_at
    if reopened_at is not None and reopened_at < wrote_at:
        return conversation  # previous_opened_at is newer than the previous close by definition
    if closed_at is None:
        return None
    return replace(
        conversation,
        status=Status.CLOSED,
        status_changed_at=closed_at,
        closed_at=closed_at,
        closed_by=conversation.previous_closed_by,
        closing_agent_id=conversation.previous_closing_agent_id,
        close_reason=conversation.previous_close_reason,
    )


def route_inbound(
    inbound: ContactInbound,
    conversations: Iterable[Conversation],
    settings: AccountSettings,
    line: LineOwner,
    agents: Mapping[str, Agent],
    now: datetime,
) -> ContactRouted:
    """Route one inbound contact.

    `conversations` are the contact's conversations on the inbound line; `agents` maps agent
    ids to what is known of them (an agent not in it is active, online, unlimited). The
    window is measured to the time the contact wrote (`inbound.occurred_at`); `now` is when
    convlife decided.
    """
    conversations = [
        then
        for c in conversations
        if (c.account_id, c.contact_id, c.line_id)
        == (inbound.account_id, inbound.contact_id, inbound.line_id)
        and (then := as_it_stood(c, inbound.occurred_at)) is not None
    ]

    def routed(route: Route, reason: str, **target: str | None) -> ContactRouted:
        return ContactRouted(
            decision_id=decision_id("contact.routed", inbound.account_id, inbound.event_id),
            account_id=inbound.account_id,
            decided_at=now,
            reason=reason,
            inbound_event_id=inbound.event_id,
            contact_id=inbound.contact_id,
            line_id=inbound.line_id,
            route=route,
            **target,
        )

    current = open_conversation(conversations)
    if current is not None:
        return routed(
            Route.OPEN_CONVERSATION,
            f"conversation {current.conversation_id} is open; nothing is reassigned",
            conversation_id=current.conversation_id,
            agent_id=current.assignee_agent_id,
            group_id=current.assignee_group_id,
        )

    previous = last_closed(conversations)
    why_new = _why_not_previous_agent(inbound, previous, settings, agents)
    if why_new is None:
        assert previous is not None
        assert previous.closed_at is not None
        assert settings.reassignment_window is not None
        return routed(
            Route.PREVIOUS_AGENT,
            f"agent {previous.closing_agent_id} closed conversation {previous.conversation_id} "
            f"with reason {previous.close_reason!r} "
            f"{_when_closed(previous.closed_at, inbound.occurred_at)}, "
            f"within the {humanize(settings.reassignment_window)} reassignment window",
            agent_id=previous.closing_agent_id,
        )
    if settings.bot_enabled:
        return routed(Route.BOT, f"new contact ({why_new}); the bot is on")
    if line.agent_id is not None:
        return routed(
            Route.LINE_OWNER,
            f"new contact ({why_new}); the bot is off and agent {line.agent_id} owns the line",
            agent_id=line.agent_id,
        )
    if line.group_id is not None:
        return routed(
            Route.LINE_OWNER,
            f"new contact ({why_new}); the bot is off and group {line.group_id} owns the line",
            group_id=line.group_id,
        )
    return routed(
        Route.UNASSIGNED, f"new contact ({why_new}); the bot is off and the line has no owner"
    )


def _why_not_previous_agent(
    inbound: ContactInbound,
    previous: Conversation | None,
    settings: AccountSettings,
    agents: Mapping[str, Agent],
) -> str | None:
    """Why the contact does not go back to the previous agent; None if it does."""
    if previous is None or previous.closed_at is None:
        return "no earlier conversation on this line"
    if previous.closed_by is not ClosedBy.AGENT or previous.closing_agent_id is None:
        return f"conversation {previous.conversation_id} was closed by the system"
    if not previous.close_reason:
        return f"conversation {previous.conversation_id} was closed without a close reason"
    if settings.reassignment_window is None:
        return "the account has no reassignment window"
    if _window_over(inbound.occurred_at, previous.closed_at, settings.reassignment_window):
        return (
            f"the {humanize(settings.reassignment_window)} reassignment window after "
            f"conversation {previous.conversation_id} is over"
        )
    if not agents.get(previous.closing_agent_id, Agent()).active:
        return f"agent {previous.closing_agent_id} is no longer active"
    return None


def _when_closed(closed_at: datetime, wrote_at: datetime) -> str:
    # Clocks upstream can put the inbound a moment before the close; say so rather than print a
    # negative duration.
    if wrote_at >= closed_at:
        return f"{humanize(wrote_at - closed_at)} before the contact wrote"
    return f"{humanize(closed_at - wrote_at)} after the contact wrote"


def _window_over(wrote_at: datetime, closed_at: datetime, window: timedelta) -> bool:
    try:
        return wrote_at >= closed_at + window
    except OverflowError:  # the window ends after year 9999: it is not over
        return False


def touched_conversation(decision: ContactRouted) -> str | None:
    """The conversation an inbound message counts as activity of: the open conversation it
    was routed to (its deadline moves); None when the contact starts a new one."""
    if decision.route is Route.OPEN_CONVERSATION:
        return decision.conversation_id
    return None
