"""The read phase of an ingest batch: everything its decisions need, loaded and locked at once.

Lock order, the same in every batch so two batches cannot deadlock: the accounts' advisory
locks (store.configuration.lock_accounts), the configuration rows the batch changes (accounts,
lines, agents, each in key order), then the conversations (in key order).
"""

from __future__ import annotations

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
from policies.state import AccountSettings, Conversation
from store import configuration, conversations


def load(connection: Connection, events: list[Event], default: AccountSettings) -> Loaded:
    """Lock and read what deciding `events` needs; `default` is an unset account's settings."""
    activity = [e for e in events if isinstance(e, ConversationEvent)]
    inbound = [e for e in events if isinstance(e, ContactInbound)]
    configuration.lock_accounts(
        connection,
        changing={e.account_id for e in events if isinstance(e, AccountSettingsUpdated)},
        reading={e.account_id for e in [*activity, *inbound]},
    )
    accounts = configuration.lock_account_rows(
        connection, {e.account_id for e in events if isinstance(e, AccountSettingsUpdated)}, default
    )
    lines = configuration.lock_line_rows(
        connection, {(e.account_id, e.line_id) for e in events if isinstance(e, LineUpdated)}
    )
    agents = configuration.lock_agent_rows(
        connection, {(e.account_id, e.agent_id) for e in events if isinstance(e, AgentUpdated)}
    )
    states, created = conversations.lock_or_create(
        connection, activity, {(e.account_id, e.contact_id, e.line_id) for e in inbound}
    )
    return Loaded(
        accounts=accounts,
        lines=lines,
        agents=agents,
        settings=configuration.account_settings(
            connection, {e.account_id for e in [*activity, *inbound]}, default
        ),
        owners=configuration.line_owners(connection, {(e.account_id, e.line_id) for e in inbound}),
        agent_states=configuration.agent_states(
            connection, agents_routing_may_ask(states, activity)
        ),
        conversations=states,
        created=frozenset(created),
    )


def agents_routing_may_ask(
    states: dict[ConversationKey, Conversation], activity: list[ConversationEvent]
) -> set[AgentKey]:
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
