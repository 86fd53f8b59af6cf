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
    line_of,
    merge_agent,
    merge_settings,
    moves_deadlines,
    newest_wins,
    stamp_of,
)
from policies.conversation import apply_event, touch
from policies.inactivity import close_deadline
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
    """Settings of every account whose conversations the batch touches (default if unset)."""
    owners: dict[LineKey, LineOwner]
    """Owner of every line a contact of the batch writes on."""
    agent_states: dict[AgentKey, Agent]
    """Each known agent a routing decision of the batch may ask about (unknown: left out)."""
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
    """Each changed conversation with its close deadline."""
    rescheduled: dict[str, AccountSettings] = field(default_factory=dict)
    """Accounts whose close setting changed: all their open conversations get new deadlines."""
    decisions: list[AutoClosed | ContactRouted] = field(default_factory=list)


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
    known = loaded.agent_states | {key: row.value for key, row in decided.agents.items()}

    states = dict(loaded.conversations)
    by_contact_line: dict[tuple[str, str, str], set[ConversationKey]] = defaultdict(set)
    for key, state in states.items():
        by_contact_line[(state.account_id, state.contact_id, state.line_id)].add(key)
    changed: dict[ConversationKey, Conversation] = {}
    not_yet = set(loaded.created)
    timeline = [e for e in events if isinstance(e, ConversationEvent | ContactInbound)]
    for event in sorted(timeline, key=lambda e: e.occurred_at):
        if isinstance(event, ContactInbound):
            contact_line = (event.account_id, event.contact_id, event.line_id)
            decision = route_inbound(
                event,
                [states[key] for key in by_contact_line[contact_line] if key not in not_yet],
                settings[event.account_id],
                owners[(event.account_id, event.line_id)],
                {
                    agent: state
                    for (account, agent), state in known.items()
                    if account == event.account_id
                },
                now,
            )
            decided.decisions.append(decision)
            touched = touched_conversation(decision)
            if touched is not None:
                key = (event.account_id, touched)
                states[key] = changed[key] = touch(states[key], event.occurred_at)
        else:
            key = (event.account_id, event.conversation_id)
            states[key] = changed[key] = apply(states.get(key), event)
            not_yet.discard(key)
            by_contact_line[(event.account_id, event.contact_id, event.line_id)].add(key)
    decided.conversations = {
        key: (state, close_deadline(state, settings[state.account_id]))
        for key, state in changed.items()
    }
    return decided


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
