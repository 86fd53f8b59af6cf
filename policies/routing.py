"""The reassignment window: where a contact who writes goes.

1. An open conversation on the line keeps the contact where it is (route open_conversation).
2. Else, if the contact's last conversation on the line was closed by an agent with a close
   reason, the contact writes before closed_at + window, and that agent is available, the
   contact goes back to that agent (route previous_agent). At closed_at + window exactly, the
   window is over. Available (policies.routing.why_unavailable): active, not offline, not away
   when the account does not route to away agents, and below capacity (fewer open
   conversations assigned than the capacity: exactly at capacity is full). An agent never
   configured is available with no limit.
   window is over. With `window_counts_business_hours` and business hours set, the window is
   counted in business hours instead (policies.calendar.deadline from closed_at, as the close
   deadline is), so a window of 8h after a Friday evening close runs into Monday.
3. Else the contact is new: the bot if the account has it on, else the line's owner (an agent
   or a group), else nobody (route unassigned).

The conversations count as they stood when the contact wrote (`occurred_at`), whatever arrived
first: a platform opens (or reopens) a conversation because the contact wrote, dated at that
instant or just after, and often delivers that open before the message. So a conversation whose
current open is dated at or after the inbound counts as it was before that open: open if it had
been opened after its last close and before the contact wrote, else closed by the close the open
replaced; a conversation with neither (first opened then) does not count. Closes count whenever
they are dated, as before. Open only through activity seen before any `opened` means open.

When the inbound names the conversation its message opened or reopened (`conversation_id`), the
platform has said which open the message caused, so the timestamps are not needed for that one:
while open, it counts as it was before its current open period, whenever that open is dated (closed
by the close before it, or not at all if it had none); closed again since, its newest close counts
as any close does. The decision names it (`conversation_id`) unless the route is to another, open
conversation, so that a consumer acts on the conversation the message is in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

from events.business_hours import BusinessHours
from events.decisions import ContactRouted, Route
from events.models import ContactInbound
from policies import calendar
from policies.configuration import set_by
from policies.durations import humanize
from policies.identity import decision_id
from policies.state import (
    AccountSettings,
    Agent,
    ClosedBy,
    Conversation,
    LineOwner,
    Presence,
    Status,
)

_UNKNOWN_AGENT = Agent()
"""An agent routing knows nothing of (frozen: one serves every lookup)."""


def open_conversation(conversations: Iterable[Conversation]) -> Conversation | None:
    """The open conversation with the newest activity, if any."""
    candidates = [c for c in conversations if c.is_open]
    return max(candidates, key=lambda c: c.last_activity_at, default=None)


def last_closed(conversations: Iterable[Conversation]) -> Conversation | None:
    """The conversation closed most recently, if any."""
    closed = [c for c in conversations if not c.is_open and c.closed_at is not None]
    return max(closed, key=lambda c: (c.closed_at, c.conversation_id), default=None)


def as_it_stood(
    conversation: Conversation, wrote_at: datetime, opened_by_inbound: bool = False
) -> Conversation | None:
    """The conversation as it stood when the contact wrote (UTC), as far as routing needs;
    None if it did not exist then (see the module docstring). `opened_by_inbound`: the inbound
    names this conversation as the one its message opened or reopened."""
    if not conversation.is_open:
        return conversation
    closed_at, reopened_at = conversation.previous_closed_at, conversation.previous_opened_at
    if not opened_by_inbound:
        opened_at = conversation.status_changed_at
        if opened_at is None or opened_at < wrote_at:
            return conversation
        if reopened_at is not None and reopened_at < wrote_at:
            return conversation  # previous_opened_at is newer than the previous close
    if closed_at is None:
        return None
    # Built directly: dataclasses.replace reads all 22 fields one getattr at a time, on the
    # hot path of routing a contact whose conversation reopened as it wrote.
    return Conversation(
        **conversation.__dict__
        | {
            "status": Status.CLOSED,
            "status_changed_at": closed_at,
            "closed_at": closed_at,
            "closed_by": conversation.previous_closed_by,
            "closing_agent_id": conversation.previous_closing_agent_id,
            "close_reason": conversation.previous_close_reason,
        }
    )


def route_inbound(
    inbound: ContactInbound,
    conversations: Iterable[Conversation],
    settings: AccountSettings,
    line: LineOwner,
    agents: Mapping[str, Agent],
    now: datetime,
    *,
    open_assigned: Mapping[str, int],
) -> ContactRouted:
    """Route one inbound contact.

    `settings` are those that apply on the inbound line (policies.configuration.effective);
    `line.overrides` says which of them the line set, for the reason. `conversations` are the
    contact's conversations on the inbound line; `agents` maps agent ids to what is known of
    them (an agent not in it is active, online, unlimited); `open_assigned` maps agent ids to
    how many open conversations are assigned to them as the contact writes (an agent not in
    it has none). The window is measured to the time the contact wrote
    (`inbound.occurred_at`); `now` is when convlife decided.
    """
    named = inbound.conversation_id
    conversations = [
        then
        for c in conversations
        if (c.account_id, c.contact_id, c.line_id)
        == (inbound.account_id, inbound.contact_id, inbound.line_id)
        and (then := as_it_stood(c, inbound.occurred_at, c.conversation_id == named)) is not None
    ]

    current = open_conversation(conversations)
    if current is not None:
        return _routed(
            inbound,
            now,
            Route.OPEN_CONVERSATION,
            f"conversation {current.conversation_id} is open; nothing is reassigned",
            conversation_id=current.conversation_id,
            agent_id=current.assignee_agent_id,
            group_id=current.assignee_group_id,
        )

    previous = last_closed(conversations)
    window_of = _window_of(inbound.line_id, line)
    why_new = _why_not_previous_agent(inbound, previous, settings, agents, window_of, open_assigned)
    if why_new is None:
        assert previous is not None
        assert previous.closed_at is not None
        assert previous.closing_agent_id is not None
        assert settings.reassignment_window is not None
        return _routed(
            inbound,
            now,
            Route.PREVIOUS_AGENT,
            f"agent {previous.closing_agent_id} closed conversation {previous.conversation_id} "
            f"with reason {previous.close_reason!r} "
            f"{_when_closed(previous.closed_at, inbound.occurred_at)}, "
            f"within {window_of(settings.reassignment_window)}"
            + _counted_in_business_hours(settings, (previous.closed_at, inbound.occurred_at))
            + _availability(
                previous.closing_agent_id,
                agents.get(previous.closing_agent_id, _UNKNOWN_AGENT),
                open_assigned.get(previous.closing_agent_id, 0),
            ),
            agent_id=previous.closing_agent_id,
        )
    line_bot = "bot_enabled" in line.overrides.values
    bot = f"the bot of line {inbound.line_id}" if line_bot else "the bot"
    if settings.bot_enabled:
        return _routed(inbound, now, Route.BOT, f"new contact ({why_new}); {bot} is on")
    if line.agent_id is not None:
        return _routed(
            inbound,
            now,
            Route.LINE_OWNER,
            f"new contact ({why_new}); {bot} is off and agent {line.agent_id} owns the line",
            agent_id=line.agent_id,
        )
    if line.group_id is not None:
        return _routed(
            inbound,
            now,
            Route.LINE_OWNER,
            f"new contact ({why_new}); {bot} is off and group {line.group_id} owns the line",
            group_id=line.group_id,
        )
    return _routed(
        inbound,
        now,
        Route.UNASSIGNED,
        f"new contact ({why_new}); {bot} is off and the line has no owner",
    )


def _routed(
    inbound: ContactInbound,
    now: datetime,
    route: Route,
    reason: str,
    conversation_id: str | None = None,
    agent_id: str | None = None,
    group_id: str | None = None,
) -> ContactRouted:
    """The decision routing `inbound` by `route`: it names `conversation_id` (the open one it
    goes to), else the conversation the inbound named, if any."""
    return ContactRouted(
        decision_id=decision_id(
            inbound.occurred_at, "contact.routed", inbound.account_id, inbound.event_id
        ),
        account_id=inbound.account_id,
        decided_at=now,
        reason=reason,
        inbound_event_id=inbound.event_id,
        contact_id=inbound.contact_id,
        line_id=inbound.line_id,
        route=route,
        conversation_id=inbound.conversation_id if conversation_id is None else conversation_id,
        agent_id=agent_id,
        group_id=group_id,
    )


def _why_not_previous_agent(
    inbound: ContactInbound,
    previous: Conversation | None,
    settings: AccountSettings,
    agents: Mapping[str, Agent],
    window_of: Callable[[timedelta | None], str],
    open_assigned: Mapping[str, int],
) -> str | None:
    """Why the contact does not go back to the previous agent; None if it does."""
    if previous is None or previous.closed_at is None:
        return "no earlier conversation on this line"
    if previous.closed_by is not ClosedBy.AGENT or previous.closing_agent_id is None:
        return f"conversation {previous.conversation_id} was closed by the system"
    if not previous.close_reason:
        return f"conversation {previous.conversation_id} was closed without a close reason"
    if settings.reassignment_window is None:
        return f"{window_of(None)} has no reassignment window"
    if _window_over(
        inbound.occurred_at,
        previous.closed_at,
        settings.reassignment_window,
        _window_hours(settings),
    ):
        return (
            f"{window_of(settings.reassignment_window)}{_counted_in_business_hours(settings)} "
            f"after conversation {previous.conversation_id} is over"
        )
    agent_id = previous.closing_agent_id
    return why_unavailable(
        agent_id, agents.get(agent_id, _UNKNOWN_AGENT), open_assigned.get(agent_id, 0), settings
    )


def why_unavailable(
    agent_id: str, agent: Agent, open_assigned: int, settings: AccountSettings
) -> str | None:
    """Why `agent` cannot take a contact back now, in words; None if it can.

    `open_assigned` is how many open conversations are assigned to the agent. An agent at its
    capacity is full (a capacity of 5 allows a sixth only once one of the five closes).
    """
    if not agent.active:
        return f"agent {agent_id} is no longer active"
    if agent.presence is Presence.OFFLINE:
        return f"agent {agent_id} is offline"
    if agent.presence is Presence.AWAY and not settings.route_to_away_agents:
        return f"agent {agent_id} is away and the account does not route to away agents"
    if agent.capacity is not None and open_assigned >= agent.capacity:
        if agent.capacity == 0:
            return f"agent {agent_id} takes no conversations (capacity 0)"
        return f"agent {agent_id} has {open_assigned} of {agent.capacity} conversations open"
    return None


def _window_of(line_id: str, line: LineOwner) -> Callable[[timedelta | None], str]:
    """How a reason names the reassignment window: the account's ("the 2h reassignment
    window"), or the line's when it overrides it ("the 2h reassignment window of line L");
    for no window, who has none ("the account", "line L")."""
    who = set_by("reassignment_window", line_id, line.overrides)

    def named(window: timedelta | None) -> str:
        if window is None:
            return who
        if who == "the account":
            return f"the {humanize(window)} reassignment window"
        return f"the {humanize(window)} reassignment window of {who}"

    return named


def _availability(agent_id: str, agent: Agent, open_assigned: int) -> str:
    """What made the agent available, when more than being active counted: away (the account
    routes to away agents) and the room left below the capacity."""
    said = []
    if agent.presence is Presence.AWAY:
        said.append(f"agent {agent_id} is away and the account routes to away agents")
    if agent.capacity is not None:
        said.append(f"agent {agent_id} has {open_assigned} of {agent.capacity} conversations open")
    return "".join(f"; {part}" for part in said)


def _when_closed(closed_at: datetime, wrote_at: datetime) -> str:
    # Clocks upstream can put the inbound a moment before the close; say so rather than print a
    # negative duration.
    if wrote_at >= closed_at:
        return f"{humanize(wrote_at - closed_at)} before the contact wrote"
    return f"{humanize(closed_at - wrote_at)} after the contact wrote"


def _window_over(
    wrote_at: datetime, closed_at: datetime, window: timedelta, counted_in: BusinessHours | None
) -> bool:
    """True when the window after the close is over when the contact wrote: `window` of time
    counted since `closed_at`, in business hours when `counted_in` is given (the same walk as
    the close deadline, policies.calendar), else on the clock. A window that never ends (hours
    that never open, or an end at or after events.models.LATEST) is not over."""
    ends = calendar.deadline(closed_at, window, counted_in)
    return ends is not None and wrote_at >= ends


def _window_hours(settings: AccountSettings) -> BusinessHours | None:
    """The business hours the reassignment window counts in; None: the wall clock."""
    return settings.business_hours if settings.window_counts_business_hours else None


def _counted_in_business_hours(
    settings: AccountSettings, since: tuple[datetime, datetime] | None = None
) -> str:
    """What a reason adds when the window counts business hours (nothing on the clock); with
    `since` (closed at, wrote at), how much of it had passed, since the wall-clock time beside
    it in the reason says something else."""
    hours = _window_hours(settings)
    if hours is None:
        return ""
    used = ""
    if since is not None:
        used = f": {humanize(calendar.counted_between(*since, hours))} of it had passed"
    return f" (counted in business hours, {hours.timezone}{used})"


def touched_conversation(decision: ContactRouted) -> str | None:
    """The conversation an inbound message counts as activity of (its deadline moves): the one
    the decision names, i.e. the open conversation it was routed to, else the conversation the
    inbound named as opened by the message; None when the contact starts one convlife has yet
    to hear of."""
    return decision.conversation_id
