"""The read phase of an ingest batch: everything its decisions need, loaded and locked at once.

Lock order, the same in every batch so two batches cannot deadlock: the accounts' advisory
locks (store.configuration.lock_accounts), the configuration rows the batch changes (accounts,
lines, agents, each in key order), then the conversations (in key order).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Connection

from events.models import (
    AccountSettingsUpdated,
    AgentUpdated,
    ContactInbound,
    ConversationEvent,
    Event,
    LineUpdated,
)
from policies.batch import AgentKey, ConversationKey, Loaded
from policies.state import AccountSettings, Agent, Conversation
from store import configuration, conversations


def load(connection: Connection, events: list[Event], default: AccountSettings) -> Loaded:
    """Lock and read what deciding `events` needs; `default` is an unset account's settings."""
    activity = [e for e in events if isinstance(e, ConversationEvent)]
    inbound = [e for e in events if isinstance(e, ContactInbound)]
    line_updates = [e for e in events if isinstance(e, LineUpdated)]
    # A line update may reschedule the line's open conversations: like a settings change, it
    # must not commit alongside a batch writing one of them with the line's old overrides.
    configuration.lock_accounts(
        connection,
        changing={
            e.account_id for e in events if isinstance(e, AccountSettingsUpdated | LineUpdated)
        },
        reading={e.account_id for e in [*activity, *inbound]},
    )
    accounts = configuration.lock_account_rows(
        connection, {e.account_id for e in events if isinstance(e, AccountSettingsUpdated)}, default
    )
    lines = configuration.lock_line_rows(
        connection, {(e.account_id, e.line_id) for e in line_updates}
    )
    agents = configuration.lock_agent_rows(
        connection, {(e.account_id, e.agent_id) for e in events if isinstance(e, AgentUpdated)}
    )
    states, created = conversations.lock_or_create(
        connection, activity, {(e.account_id, e.contact_id, e.line_id) for e in inbound}
    )
    asked = agents_routing_may_ask(states, activity)
    agent_states = configuration.agent_states(connection, asked)
    return Loaded(
        accounts=accounts,
        lines=lines,
        agents=agents,
        settings=configuration.account_settings(
            connection, {e.account_id for e in [*activity, *inbound, *line_updates]}, default
        ),
        # Every line whose settings a decision of the batch reads: routing reads the inbound
        # line's, deadlines the line of each conversation the batch changes.
        owners=configuration.line_owners(
            connection,
            {(e.account_id, e.line_id) for e in [*activity, *inbound]}
            | {(c.account_id, c.line_id) for c in states.values()},
        ),
        agent_states=agent_states,
        # Counted after the batch's new conversations are created and its conversations
        # locked: `decide` moves these counts from `states` as loaded. Only a routing decision
        # reads them, and only for an agent with a capacity: a batch without inbound contacts,
        # or whose agents have no capacity, skips the statement (it was 4-9% of the database's
        # time per routed inbound, and grows with the agents' open conversations).
        open_assigned=conversations.open_assigned(
            connection, with_capacity(asked, agent_states, events) if inbound else ()
        ),
        conversations=states,
        created=frozenset(created),
    )


def agents_routing_may_ask(
    states: dict[ConversationKey, Conversation], activity: list[ConversationEvent]
) -> set[AgentKey]:
    """Every agent whose state (active, presence, capacity, open count) a routing decision of
    this batch may need.

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


def with_capacity(
    asked: set[AgentKey], known: Mapping[AgentKey, Agent], events: list[Event]
) -> set[AgentKey]:
    """The agents of `asked` whose open conversations the capacity rule may count: those with a
    capacity as loaded, and those an agent update of this batch may give one (the update is
    applied before the routings it precedes)."""
    updated = {(e.account_id, e.agent_id) for e in events if isinstance(e, AgentUpdated)}
    return {
        key
        for key in asked
        if key in updated or ((agent := known.get(key)) is not None and agent.capacity is not None)
    }
