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

What the current open replaced is kept beside it (`previous_*`, see policies.state), by the same
kind of rule, so that it too is the same in any order: the previous close is the newest close
dated before the current open (at equal times compared as above); the previous open is the newest
open dated after that close and before the current open. An open that replaces a close makes that
close the previous one; an open that replaces an open makes that open the previous one; a close
or open dated before the current open but newer than what is kept takes its place. A close that
becomes the status forgets them: every event that can still change the status is newer. An open
replaces an automatic close as the close it is only if it is dated after the sweep; an open dated
before the sweep takes the close's place as if it had arrived first (above), so it replaces the
open of the period instead.
"""

from __future__ import annotations

from datetime import datetime

from events.models import (
    ConversationClosed,
    ConversationEvent,
    ConversationMessage,
    ConversationOpened,
    ConversationTransferred,
)
from policies.state import ClosedBy, Conversation, Status, changed


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
    return changed(conversation, last_activity_at=at, close_warned_at=None)


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
            state = changed(
                _replaced_by_open(state, at),
                status=Status.OPEN,
                status_changed_at=at,
                closed_at=None,
                closed_by=None,
                closing_agent_id=None,
                close_reason=None,
                auto_closed=False,
            )
        else:
            state = _earlier_open(state, at)
        state = _assign(state, at, event.agent_id, event.group_id, bot=event.bot)
    elif isinstance(event, ConversationTransferred):
        state = _assign(state, at, event.agent_id, event.group_id, bot=False)
    elif isinstance(event, ConversationClosed) and _close_wins(state, event):
        state = changed(
            closed(
                _forget_previous(state),
                at=at,
                by=ClosedBy(event.closed_by),
                agent_id=event.agent_id,
                reason=event.close_reason,
                automatic=False,
            ),
            status_changed_at=at,
        )
    elif isinstance(event, ConversationClosed):
        state = _earlier_close(state, event)
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
    return changed(
        conversation,
        status=Status.CLOSED,
        closed_at=at,
        closed_by=by,
        closing_agent_id=agent_id,
        close_reason=reason,
        auto_closed=automatic,
    )


def _period_open(state: Conversation) -> datetime | None:
    """The open the status rests on: the open itself, or the one that started the idle period
    an automatic close ended; None under any other close, or if no open was seen."""
    if state.is_open or state.auto_closed:
        return state.status_changed_at
    return None


def _replaced_by_open(state: Conversation, at: datetime) -> Conversation:
    """`state` remembering what an open at `at`, newer than its status, replaces."""
    if state.is_open or (
        state.auto_closed and state.closed_at is not None and at <= state.closed_at
    ):
        # An open, or an automatic close the new open predates (as if the open had come first).
        if state.status_changed_at is None:
            return state
        return changed(state, previous_opened_at=state.status_changed_at)
    return changed(
        state,
        previous_closed_at=state.closed_at,
        previous_closed_by=state.closed_by,
        previous_closing_agent_id=state.closing_agent_id,
        previous_close_reason=state.close_reason,
        previous_opened_at=None,
    )


def _earlier_open(state: Conversation, at: datetime) -> Conversation:
    """An open older than the status: it may be the newest one before the current open."""
    period = _period_open(state)
    if period is None or at >= period:
        return state
    for kept in (state.previous_closed_at, state.previous_opened_at):
        # At the instant of the previous close, the close wins: the open changes nothing.
        if kept is not None and at <= kept:
            return state
    return changed(state, previous_opened_at=at)


def _earlier_close(state: Conversation, event: ConversationClosed) -> Conversation:
    """A close older than the status: it may be the newest one before the current open."""
    period = _period_open(state)
    at = event.occurred_at
    if period is None or at >= period:
        return state
    if state.previous_closed_at is not None:
        if at < state.previous_closed_at:
            return state
        kept = (
            state.previous_closed_by,
            state.previous_closing_agent_id,
            state.previous_close_reason,
        )
        if at == state.previous_closed_at and _close_key(event) < _key(*kept):
            return state
    opened = state.previous_opened_at
    return changed(
        state,
        previous_closed_at=at,
        previous_closed_by=ClosedBy(event.closed_by),
        previous_closing_agent_id=event.agent_id,
        previous_close_reason=event.close_reason,
        # The previous open is the newest after the previous close; one older than this is not.
        previous_opened_at=None if opened is None or opened <= at else opened,
    )


def _forget_previous(state: Conversation) -> Conversation:
    return changed(
        state,
        previous_closed_at=None,
        previous_closed_by=None,
        previous_closing_agent_id=None,
        previous_close_reason=None,
        previous_opened_at=None,
    )


def _key(by: str | None, agent_id: str | None, reason: str | None) -> tuple[str, str, str]:
    """How two closes at one instant are ordered (the greater wins)."""
    return (by or "", agent_id or "", reason or "")


def _close_key(event: ConversationClosed) -> tuple[str, str, str]:
    return _key(event.closed_by, event.agent_id, event.close_reason)


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
    return _close_key(event) >= _key(state.closed_by, state.closing_agent_id, state.close_reason)


def _assign(
    state: Conversation, at: datetime, agent_id: str | None, group_id: str | None, *, bot: bool
) -> Conversation:
    if state.assigned_at is not None:
        if at < state.assigned_at:
            return state
        current = (state.assignee_bot, state.assignee_agent_id or "", state.assignee_group_id or "")
        if at == state.assigned_at and (bot, agent_id or "", group_id or "") < current:
            return state
    return changed(
        state,
        assignee_agent_id=agent_id,
        assignee_group_id=group_id,
        assignee_bot=bot,
        assigned_at=at,
    )
