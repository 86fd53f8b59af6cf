"""The ingest handler: a batch of raw events in, state and decisions committed, decisions out.

One validation pass, one transaction, set-based reads and writes. Per event, the rules stay:
a bad event is dead-lettered alone, a duplicate changes nothing, order does not matter.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from events.decisions import AutoClosed, ContactRouted
from events.models import (
    AccountSettingsUpdated,
    AgentUpdated,
    ContactInbound,
    ConversationEvent,
    Event,
    LineUpdated,
)
from events.parsing import InvalidEvent, ReasonCode, parse_event, refuse
from policies.clock import from_the_future
from policies.configuration import moves_deadlines
from policies.conversation import apply_event, touch
from policies.inactivity import close_deadline
from policies.routing import route_inbound, touched_conversation
from policies.state import AccountSettings, Conversation
from store import configuration, conversations, idempotency, outbox
from store.conversations import ContactLineKey, ConversationKey
from worker import logs
from worker.deadlines import reschedule_account
from worker.runtime import Runtime


@dataclass
class IngestResult:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    decisions: list[AutoClosed | ContactRouted] = field(default_factory=list)
    applied_types: list[str] = field(default_factory=list)
    dead_letter_reasons: list[ReasonCode] = field(default_factory=list)


def split_payload(payload: object) -> list[object]:
    """The items of a task's payload: a list of events, or one event (a JSON list as text too)."""
    if isinstance(payload, str | bytes):
        try:
            decoded = json.loads(payload)
        except (ValueError, RecursionError):
            return [payload]
        if isinstance(decoded, list):
            return list(decoded)
        return [payload]
    if isinstance(payload, list | tuple):
        return list(payload)
    return [payload]


def validate(
    items: list[object], runtime: Runtime, now: datetime
) -> tuple[list[Event], list[InvalidEvent]]:
    """Parse every item; what fails becomes an InvalidEvent (for a dead letter)."""
    settings = runtime.settings
    valid: list[Event] = []
    invalid: list[InvalidEvent] = []
    for item in items:
        try:
            event = parse_event(item, max_bytes=settings.max_event_bytes)
        except InvalidEvent as error:
            invalid.append(error)
            continue
        if from_the_future(event.occurred_at, now, settings.max_clock_skew):
            invalid.append(
                refuse(
                    item,
                    f"occurred_at {event.occurred_at.isoformat()} is more than "
                    f"{settings.max_clock_skew} ahead of convlife's clock",
                    "future",
                )
            )
            continue
        valid.append(event)
    return valid, invalid


def capped(items: list[object], cap: int) -> tuple[list[object], list[InvalidEvent]]:
    """The first `cap` items, and the rest as refusals (each dead-lettered, so it can be
    replayed): one huge message must not hold a worker's memory or come back forever."""
    beyond = [
        refuse(
            item,
            f"beyond the {cap} events one message may carry "
            f"(item {index + 1} of {len(items)}); replay it in another message",
            "too_many_events",
        )
        for index, item in enumerate(items[cap:], start=cap)
    ]
    return items[:cap], beyond


def ingest(payload: object, runtime: Runtime, now: datetime) -> IngestResult:
    """Apply one task's payload in one transaction; `now` is convlife's clock (UTC).

    At most `max_events_per_message` events are applied; the rest are dead-lettered.
    """
    items, beyond = capped(split_payload(payload), runtime.settings.max_events_per_message)
    valid, invalid = validate(items, runtime, now)
    invalid += beyond
    result = IngestResult(
        dead_lettered=len(invalid), dead_letter_reasons=[error.code for error in invalid]
    )
    with runtime.engine.begin() as connection:
        for error in invalid:
            outbox.add_invalid(connection, error, now)
        first_of_key: dict[tuple[str, str], Event] = {}
        for event in valid:
            first_of_key.setdefault((event.account_id, event.event_id), event)
        fresh_keys = idempotency.claim(connection, first_of_key.keys(), now)
        fresh = [event for key, event in first_of_key.items() if key in fresh_keys]
        result.duplicates = len(valid) - len(fresh)
        result.applied = len(fresh)
        result.applied_types = [event.type for event in fresh]
        decided = apply_events(connection, fresh, runtime, now)
        # A redelivery after its event ids were pruned decides again, with the same decision
        # ids: the decision stored the first time stands, and only what is stored now is
        # logged, counted and relayed.
        stored = set(outbox.add_decisions(connection, decided))
        result.decisions = [decision for decision in decided if decision.decision_id in stored]
    for error in invalid:
        logs.dead_letter(error.reason, error.account_id, error.event_id, error.code)
    for made in result.decisions:
        logs.decision(made)
    return result


def apply_events(
    connection: Connection, events: list[Event], runtime: Runtime, now: datetime
) -> list[AutoClosed | ContactRouted]:
    """Apply fresh (never applied) events; returns the decisions they caused."""
    default = runtime.settings.default_account_settings
    configuration.lock_accounts(
        connection,
        changing={e.account_id for e in events if isinstance(e, AccountSettingsUpdated)},
        reading={e.account_id for e in events if isinstance(e, ConversationEvent | ContactInbound)},
    )
    rescheduled = _apply_configuration(connection, events, default)

    activity = [e for e in events if isinstance(e, ConversationEvent)]
    inbound = [e for e in events if isinstance(e, ContactInbound)]
    states = conversations.lock(
        connection,
        {(e.account_id, e.conversation_id) for e in activity},
        {(e.account_id, e.contact_id, e.line_id) for e in inbound},
    )
    new = [e for e in activity if (e.account_id, e.conversation_id) not in states]
    if new:
        # Insert-if-absent, then lock: a worker racing on the same new conversation ends up
        # waiting on the same row instead of overwriting it.
        conversations.create_missing(connection, new)
        states.update(
            conversations.lock(connection, {(e.account_id, e.conversation_id) for e in new})
        )
    accounts = {e.account_id for e in activity} | {e.account_id for e in inbound}
    settings = configuration.account_settings(connection, accounts, default)
    owners = configuration.line_owners(connection, {(e.account_id, e.line_id) for e in inbound})
    active = configuration.agents_active(connection, _agents_routing_may_ask(states, activity))
    by_contact_line: dict[ContactLineKey, set[ConversationKey]] = defaultdict(set)
    for key, state in states.items():
        by_contact_line[(state.account_id, state.contact_id, state.line_id)].add(key)

    changed: dict[ConversationKey, Conversation] = {}
    decisions: list[AutoClosed | ContactRouted] = []
    # Time order, so an inbound contact sees the conversations as they stood when it wrote.
    timeline: list[ConversationEvent | ContactInbound] = [*activity, *inbound]
    for event in sorted(timeline, key=lambda e: e.occurred_at):
        if isinstance(event, ContactInbound):
            contact_line = (event.account_id, event.contact_id, event.line_id)
            candidates = [states[key] for key in by_contact_line[contact_line]]
            agent_active = {
                agent: is_active
                for (account, agent), is_active in active.items()
                if account == event.account_id
            }
            decision = route_inbound(
                event,
                candidates,
                settings[event.account_id],
                owners[(event.account_id, event.line_id)],
                agent_active,
                now,
            )
            decisions.append(decision)
            touched = touched_conversation(decision)
            if touched is not None:
                key = (event.account_id, touched)
                states[key] = changed[key] = touch(states[key], event.occurred_at)
        else:
            key = (event.account_id, event.conversation_id)
            states[key] = changed[key] = apply_event(states.get(key), event)
            by_contact_line[(event.account_id, event.contact_id, event.line_id)].add(key)

    conversations.save(
        connection,
        {
            key: (state, close_deadline(state, settings[state.account_id]))
            for key, state in changed.items()
        },
    )
    for account_id, account_settings in rescheduled.items():
        reschedule_account(connection, account_id, account_settings)
    return decisions


def _agents_routing_may_ask(
    states: dict[ConversationKey, Conversation], activity: list[ConversationEvent]
) -> set[tuple[str, str]]:
    """Every agent whose active flag a routing decision of this batch may need.

    A decision asks about the agent who closed the contact's last conversation, as that
    conversation stands when the contact writes, which may be after this batch's own events
    (a close earlier in the same batch). So: the closing agents of the conversations as
    loaded, and every agent this batch's conversation events name.
    """
    named = {(c.account_id, c.closing_agent_id) for c in states.values() if c.closing_agent_id}
    for event in activity:
        agent_id = getattr(event, "agent_id", None)
        if isinstance(agent_id, str):
            named.add((event.account_id, agent_id))
    return named


def _apply_configuration(
    connection: Connection, events: list[Event], default: AccountSettings
) -> dict[str, AccountSettings]:
    """Apply settings, line and agent updates (oldest first); returns the accounts whose close
    setting changed, with their new settings, so their open conversations get new deadlines."""
    rescheduled: dict[str, AccountSettings] = {}
    for event in sorted(events, key=lambda e: (e.occurred_at, e.event_id)):
        if isinstance(event, AccountSettingsUpdated):
            change = configuration.apply_settings(connection, event, default)
            if change is not None:
                before, after = change
                # Once rescheduled, the account's deadlines follow its latest settings.
                if moves_deadlines(before, after) or event.account_id in rescheduled:
                    rescheduled[event.account_id] = after
        elif isinstance(event, LineUpdated):
            configuration.apply_line(connection, event)
        elif isinstance(event, AgentUpdated):
            configuration.apply_agent(connection, event)
    return rescheduled
