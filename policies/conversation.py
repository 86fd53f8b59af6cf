"""How one event changes a conversation, whatever order events arrive in.

Every rule compares `occurred_at` with the time stored beside the value it would change, so
applying the same events in any order, or twice, gives the same conversation:
- last activity is the newest `occurred_at` seen;
- status follows the newest open or close (at equal times the close wins);
- the assignee follows the newest open or transfer.
Two changes of one value at the same instant are ordered by the value itself (the greater close
or assignment, compared field by field, wins): arbitrary, but the same whatever the arrival order.

The sweep's automatic close is provisional against events dated within the idle period it ended:
it keeps `status_changed_at` at the open that started the period, so an open dated after that
open, or a close dated at or after it, replaces the automatic close when it arrives late, exactly
as it would have if it had arrived before the sweep (then the conversation would have been
closed by it, or reopened and closed by a later sweep). The `auto_closed` decision already
emitted stands. A close dated before that open belongs to an earlier period and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from events.models import (
    ConversationClosed,
    ConversationEvent,
    ConversationMessage,
    ConversationOpened,
    ConversationTransferred,
)
from policies.state import ClosedBy, Conversation, Status


def new_conversation(event: ConversationEvent) -> Conversation:
    """A conversation seen for the first time: open, with no activity yet applied."""
    return Conversation(
        account_id=event.account_id,
        conversation_id=event.conversation_id,
        contact_id=event.contact_id,
        line_id=event.line_id,
        status=Status.OPEN,
        last_activity_at=event.occurred_at,
    )


def touch(conversation: Conversation, at: datetime) -> Conversation:
    """Record activity at `at`; an older time changes nothing. Newer activity starts a new idle
    period, which has not been warned about yet."""
    if at <= conversation.last_activity_at:
        return conversation
    return replace(conversation, last_activity_at=at, close_warned_at=None)


def is_activity(event: ConversationEvent) -> bool:
    """Whether the event restarts the close timer: every action does, except an automated
    notice (`sender: "system"`), which would otherwise keep a warned conversation alive."""
    return not (isinstance(event, ConversationMessage) and event.sender == "system")


def apply_event(conversation: Conversation | None, event: ConversationEvent) -> Conversation:
    """The conversation after `event` (None: the conversation was never seen)."""
    state = conversation or new_conversation(event)
    if is_activity(event):
        state = touch(state, event.occurred_at)
    at = event.occurred_at
    if isinstance(event, ConversationOpened):
        if state.status_changed_at is None or at > state.status_changed_at:
            state = replace(
                state,
                status=Status.OPEN,
                status_changed_at=at,
                closed_at=None,
                closed_by=None,
                closing_agent_id=None,
                close_reason=None,
                auto_closed=False,
            )
        state = _assign(state, at, event.agent_id, event.group_id, bot=event.bot)
    elif isinstance(event, ConversationTransferred):
        state = _assign(state, at, event.agent_id, event.group_id, bot=False)
    elif isinstance(event, ConversationClosed) and _close_wins(state, event):
        state = replace(
            closed(
                state,
                at=at,
                by=ClosedBy(event.closed_by),
                agent_id=event.agent_id,
                reason=event.close_reason,
                automatic=False,
            ),
            status_changed_at=at,
        )
    return state


def closed(
    conversation: Conversation,
    *,
    at: datetime,
    by: ClosedBy,
    agent_id: str | None,
    reason: str | None,
    automatic: bool,
) -> Conversation:
    """The conversation closed at `at` (UTC): what a close is, whoever makes it.

    `status_changed_at` is left to the caller: an agent's close sets it to the close's time,
    the sweep's automatic close keeps the open that started the idle period (see the module).
    """
    return replace(
        conversation,
        status=Status.CLOSED,
        closed_at=at,
        closed_by=by,
        closing_agent_id=agent_id,
        close_reason=reason,
        auto_closed=automatic,
    )


def _close_wins(state: Conversation, event: ConversationClosed) -> bool:
    at = event.occurred_at
    if state.status_changed_at is None or at > state.status_changed_at:
        return True
    if at < state.status_changed_at:
        return False
    if state.is_open or state.auto_closed:
        # An open and a close at one instant: the close wins. An automatic close keeps the time
        # of the open that started its period, so this is the same rule seen after a sweep.
        return True
    current = (state.closed_by or "", state.closing_agent_id or "", state.close_reason or "")
    return (event.closed_by, event.agent_id or "", event.close_reason or "") >= current


def _assign(
    state: Conversation, at: datetime, agent_id: str | None, group_id: str | None, *, bot: bool
) -> Conversation:
    if state.assigned_at is not None:
        if at < state.assigned_at:
            return state
        current = (state.assignee_bot, state.assignee_agent_id or "", state.assignee_group_id or "")
        if at == state.assigned_at and (bot, agent_id or "", group_id or "") < current:
            return state
    return replace(
        state,
        assignee_agent_id=agent_id,
        assignee_group_id=group_id,
        assignee_bot=bot,
        assigned_at=at,
    )
