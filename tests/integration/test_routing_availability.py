"""The previous agent's presence and capacity, end to end: events published to the broker, a
real `convlife run` on each store, decisions on the stream (issue 13 §2).

Between steps the test waits until the store shows the previous step applied (a condition, not
a sleep), since the count a routing sees is what the store holds when the contact writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from policies.state import Presence
from store import configuration, conversations
from store.db import make_engine
from tests.integration.conftest import Service
from tests.processes import wait_until
from tests.support import conversation_event, event, new_id, settings_event

pytestmark = pytest.mark.timeout(120)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def store(service: Service) -> Iterator[Engine]:
    engine = make_engine(service.database_url)
    yield engine
    engine.dispose()


def returning_contact(service: Service, store: Engine) -> str:
    """An account (window a day, bot off, line-1 owned by olga) where ana closed contact-1's
    conversation with a reason: contact-1 goes back to ana while she is available."""
    account = new_id("acct")
    t = now()
    service.publish(
        [
            settings_event(account, t - timedelta(seconds=1), window="P1D"),
            event("line.updated", account, t, line_id="line-1", agent_id="olga"),
            conversation_event("conversation.opened", account, "c1", t, agent_id="ana"),
            conversation_event(
                "conversation.closed",
                account,
                "c1",
                t,
                closed_by="agent",
                agent_id="ana",
                close_reason="resolved",
            ),
        ]
    )
    wait_until(lambda: _stored(store, account, "c1", closed=True), 10, "c1 closed by ana")
    return account


def _stored(store: Engine, account: str, conversation_id: str, *, closed: bool) -> bool:
    with store.connect() as connection:
        found = conversations.get(connection, account, conversation_id)
    return found is not None and (not found[0].is_open) is closed


def _agent(store: Engine, account: str) -> Any:
    with store.connect() as connection:
        return configuration.agent_states(connection, {(account, "ana")}).get((account, "ana"))


def contact_writes(service: Service, account: str) -> dict[str, Any]:
    since = service.stream_position()
    service.publish(
        event("contact.inbound", account, now(), contact_id="contact-1", line_id="line-1")
    )
    [routed] = service.decisions(since, account, count=1, timeout=10)
    assert routed["type"] == "contact.routed"
    return routed


def test_an_offline_previous_agent_sends_the_contact_to_the_line_owner(
    service: Service, store: Engine
) -> None:
    account = returning_contact(service, store)
    service.publish(event("agent.updated", account, now(), agent_id="ana", status="offline"))
    wait_until(
        lambda: getattr(_agent(store, account), "presence", None) is Presence.OFFLINE,
        10,
        "ana offline",
    )

    routed = contact_writes(service, account)

    assert (routed["route"], routed["agent_id"]) == ("line_owner", "olga")
    assert "agent ana is offline" in routed["reason"]


def test_at_capacity_the_contact_goes_to_the_line_owner_and_back_under_it_to_the_agent(
    service: Service, store: Engine
) -> None:
    account = returning_contact(service, store)
    t = now()
    service.publish(
        [
            event("agent.updated", account, t, agent_id="ana", capacity=1),
            conversation_event(
                "conversation.opened", account, "c2", t, agent_id="ana", contact_id="contact-2"
            ),
        ]
    )
    wait_until(
        lambda: (
            getattr(_agent(store, account), "capacity", None) == 1
            and _stored(store, account, "c2", closed=False)
        ),
        10,
        "ana with capacity 1 and c2 open for her",
    )

    full = contact_writes(service, account)
    service.publish(
        conversation_event(
            "conversation.closed",
            account,
            "c2",
            now(),
            closed_by="agent",
            agent_id="ana",
            close_reason="resolved",
            contact_id="contact-2",
        )
    )
    wait_until(lambda: _stored(store, account, "c2", closed=True), 10, "c2 closed")
    room = contact_writes(service, account)

    assert (full["route"], full["agent_id"]) == ("line_owner", "olga")
    assert "agent ana has 1 of 1 conversations open" in full["reason"]
    assert (room["route"], room["agent_id"]) == ("previous_agent", "ana")
    assert room["reason"].endswith("agent ana has 0 of 1 conversations open")
