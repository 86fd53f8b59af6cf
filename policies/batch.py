"""One batch of fresh events, decided at once over plain state: the ingest handler's rules.

Configuration first (settings, lines, agents: newest wins, oldest first), so every decision of
the batch reads the configuration as the batch leaves it; then the conversation events and the
contacts' messages in time order, so a contact sees its conversations as they stood when it
wrote: a conversation the store created for this batch counts only once one of its events has
been applied (policies.routing sets aside opens dated at or after the inbound).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import get_args

from events.decisions import AutoClosed, ContactRouted
from events.models import (
    AccountSettingsUpdated,
    AgentUpdated,
    ContactInbound,
    ConversationEvent,
    Event,
    LineUpdated,
)
from policies.configuration import (
    Stamped,
    effective,
    line_of,
    merge_agent,
    merge_settings,
    moves_deadlines,
    newest_wins,
    stamp_of,
)
from policies.conversation import apply_event, touch
from policies.inactivity import next_check
from policies.routing import route_inbound, touched_conversation
from policies.state import AccountSettings, Agent, Conversation, LineOwner

ConversationKey = tuple[str, str]
"""(account_id, conversation_id)"""
LineKey = tuple[str, str]
"""(account_id, line_id)"""
AgentKey = tuple[str, str]
"""(account_id, agent_id)"""


@dataclass(frozen=True)
class Loaded:
    """Everything a batch's decisions read, loaded (and locked) before any is made."""

    accounts: dict[str, Stamped[AccountSettings]]
    """The settings rows the batch's settings updates may change."""
    lines: dict[LineKey, Stamped[LineOwner]]
    """The line rows the batch's line updates may change."""
    agents: dict[AgentKey, Stamped[Agent]]
    """The agent rows the batch's agent updates may change."""
    settings: dict[str, AccountSettings]
    """Settings of every account whose conversations or lines the batch touches (default if
    unset)."""
    owners: dict[LineKey, LineOwner]
    """Every line the batch's conversations are on or a contact writes on: its owner and the
    settings it overrides (a line never configured: no owner, no overrides)."""
    agent_states: dict[AgentKey, Agent]
    """Each known agent a routing decision of the batch may ask about (unknown: left out)."""
    open_assigned: dict[AgentKey, int]
    """How many open conversations are assigned to each agent a routing decision of the batch
    may ask about (every one of them, 0 included), counted with `conversations` as loaded."""
    conversations: dict[ConversationKey, Conversation]
    """The conversations the batch's events name (new ones as first seen), and every
    conversation of each contact who writes, on the line it writes on."""
    created: frozenset[ConversationKey] = frozenset()
    """The conversations of `conversations` the store created for this batch: they did not
    exist for a contact who writes before the first of their events."""


@dataclass
class Decided:
    """What a batch changes (only what changed) and the decisions it makes."""

    accounts: dict[str, Stamped[AccountSettings]] = field(default_factory=dict)
    lines: dict[LineKey, Stamped[LineOwner]] = field(default_factory=dict)
    agents: dict[AgentKey, Stamped[Agent]] = field(default_factory=dict)
    conversations: dict[ConversationKey, tuple[Conversation, datetime | None]] = field(
        default_factory=dict
    )
    """Each changed conversation with its next check (policies.inactivity.next_check: the
    warning time or the close deadline)."""
    rescheduled: dict[str, AccountSettings] = field(default_factory=dict)
    """Accounts whose close, warning or hours setting changed: all their open conversations
    get new next checks (those on a line that overrides it, from the line's effective
    settings)."""
    rescheduled_lines: dict[LineKey, AccountSettings] = field(default_factory=dict)
    """Lines whose effective deadline settings changed (their overrides, or the account's
    settings they inherit), with those settings: their open conversations get new next checks."""
    decisions: list[AutoClosed | ContactRouted] = field(default_factory=list)
    open_assigned: dict[AgentKey, int] = field(default_factory=dict)
    """`Loaded.open_assigned` as the batch leaves it (what a routing after its last event
    would see)."""


_ON_THE_TIMELINE = (*get_args(ConversationEvent), ContactInbound)
"""What `decide` takes in time order, as a flat tuple: isinstance on it is a third of the cost
of `ConversationEvent | ContactInbound`, a union built anew at each call."""

ApplyEvent = Callable[[Conversation | None, ConversationEvent], Conversation]


def decide(
    loaded: Loaded, events: list[Event], now: datetime, *, apply: ApplyEvent = apply_event
) -> Decided:
    """The batch's changes and decisions; `events` are fresh (never applied), `now` is UTC.

    `apply` is policies.conversation.apply_event; a caller may pass it in so that a test can
    break it for one event, as a bug triggered by one event's content would.
    """
    decided = Decided()
    _configure(loaded, events, decided)
    settings = loaded.settings | {a: row.value for a, row in decided.accounts.items()}
    owners = loaded.owners | {key: row.value for key, row in decided.lines.items()}

    applying: dict[LineKey, AccountSettings] = {}

    def applied(account_id: str, line_id: str) -> AccountSettings:
        """The settings that apply on a line, as the batch's configuration leaves them (worked
        out once per line: the configuration is final before the first decision)."""
        key = (account_id, line_id)
        if (found := applying.get(key)) is None:
            line = owners.get(key, LineOwner())
            found = applying[key] = effective(settings[account_id], line.overrides)
        return found

    for key in decided.lines:
        before = effective(loaded.settings[key[0]], loaded.lines[key].value.overrides)
        after = applied(*key)
        if moves_deadlines(before, after):
            decided.rescheduled_lines[key] = after
    # By account once, not per inbound: a routing reads only its own account's agents.
    known: dict[str, dict[str, Agent]] = defaultdict(dict)
    for (account, agent), agent_state in (
        loaded.agent_states | {key: row.value for key, row in decided.agents.items()}
    ).items():
        known[account][agent] = agent_state
    # Capacity counts follow the batch's own events: an open, transfer or close earlier in the
    # batch changes what a later routing of the same batch sees.
    open_assigned: dict[str, dict[str, int]] = defaultdict(dict)
    for (account, agent), count in loaded.open_assigned.items():
        open_assigned[account][agent] = count

    states = dict(loaded.conversations)
    by_contact_line: dict[tuple[str, str, str], set[ConversationKey]] = defaultdict(set)
    for key, state in states.items():
        by_contact_line[(state.account_id, state.contact_id, state.line_id)].add(key)
    changed: dict[ConversationKey, Conversation] = {}
    not_yet = set(loaded.created)
    timeline = [e for e in events if isinstance(e, _ON_THE_TIMELINE)]
    for event in sorted(timeline, key=lambda e: e.occurred_at):
        if isinstance(event, ContactInbound):
            contact_line = (event.account_id, event.contact_id, event.line_id)
            existing = {key for key in by_contact_line[contact_line] if key not in not_yet}
            decision = route_inbound(
                event,
                [states[key] for key in existing],
                applied(event.account_id, event.line_id),
                owners[(event.account_id, event.line_id)],
                known.get(event.account_id, {}),
                now,
                open_assigned=open_assigned.get(event.account_id, {}),
            )
            decided.decisions.append(decision)
            # A conversation the inbound names may be one convlife has not heard of yet, or one
            # of another contact (the platform's mistake): only the contact's own are touched.
            touched = touched_conversation(decision)
            if touched is not None and (key := (event.account_id, touched)) in existing:
                states[key] = changed[key] = touch(states[key], event.occurred_at)
        else:
            key = (event.account_id, event.conversation_id)
            was = states.get(key)
            states[key] = changed[key] = apply(was, event)
            _recount(open_assigned, was, states[key])
            not_yet.discard(key)
            by_contact_line[(event.account_id, event.contact_id, event.line_id)].add(key)
    decided.conversations = {
        key: (state, next_check(state, applied(state.account_id, state.line_id)))
        for key, state in changed.items()
    }
    decided.open_assigned = {
        (account, agent): count
        for account, counts in open_assigned.items()
        for agent, count in counts.items()
    }
    return decided


def _assigned_open(state: Conversation | None) -> AgentKey | None:
    if state is None or not state.is_open or state.assignee_agent_id is None:
        return None
    return (state.account_id, state.assignee_agent_id)


def _recount(
    counts: dict[str, dict[str, int]], before: Conversation | None, after: Conversation
) -> None:
    """Move a conversation's place in the open counts (by account, then agent) from its state
    before an event to its state after (only agents counted at load: the others no routing
    asks about)."""
    was, now = _assigned_open(before), _assigned_open(after)
    if was == now:
        return
    for key, step in ((was, -1), (now, 1)):
        if key is not None and key[1] in (of_account := counts.get(key[0], {})):
            of_account[key[1]] += step


def _configure(loaded: Loaded, events: list[Event], decided: Decided) -> None:
    """Apply settings, line and agent updates, oldest first, newest wins."""
    accounts, lines, agents = dict(loaded.accounts), dict(loaded.lines), dict(loaded.agents)
    for event in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        if isinstance(event, AccountSettingsUpdated):
            row = accounts[event.account_id]
            after = merge_settings(row.value, row.stamp, event)
            if after is None:
                continue
            accounts[event.account_id] = decided.accounts[event.account_id] = Stamped(
                after, stamp_of(event)
            )
            # Once rescheduled, the account's deadlines follow its latest settings.
            if moves_deadlines(row.value, after) or event.account_id in decided.rescheduled:
                decided.rescheduled[event.account_id] = after
        elif isinstance(event, LineUpdated):
            line = (event.account_id, event.line_id)
            if newest_wins(event, lines[line].stamp):
                lines[line] = decided.lines[line] = Stamped(line_of(event), stamp_of(event))
        elif isinstance(event, AgentUpdated):
            agent = (event.account_id, event.agent_id)
            merged = merge_agent(agents[agent].value, agents[agent].stamp, event)
            if merged is not None:
                agents[agent] = decided.agents[agent] = Stamped(merged, stamp_of(event))
