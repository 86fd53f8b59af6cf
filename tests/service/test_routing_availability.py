"""The previous agent's presence and capacity in the routing, through the ingest handler: the
open conversations are counted from the store, and a batch's own events count for its later
routings. Each test runs on SQLite and PostgreSQL; every `now` is chosen, nothing sleeps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.service.builders import (
    T0,
    account_with,
    agent_close,
    inbound,
    minutes,
    opened,
    routes,
)
from tests.support import Service, event

# Contact-1's conversation c1 is closed by ana with a reason at T0; the window is a day.


def agent(account: str, at_minute: float, **fields: Any) -> dict:
    return event("agent.updated", account, T0 + minutes(at_minute), agent_id="ana", **fields)


def setup(service: Service, **settings: Any) -> str:
    account = account_with(service, window="P1D", **settings)
    service.ingest(event("line.updated", account, T0, line_id="line-1", agent_id="olga"), T0)
    service.ingest([opened(account), agent_close(account, T0)], T0)
    return account


def hers(account: str, conversation: str, at_minute: float) -> dict:
    """A conversation of another contact, opened for ana."""
    return opened(
        account, conversation, T0 + minutes(at_minute), agent_id="ana", contact_id=conversation
    )


def writes(service: Service, account: str, at_minute: float) -> dict:
    service.ingest(inbound(account, T0 + minutes(at_minute)), T0 + minutes(at_minute))
    return routes(service, account)[-1]


def test_an_offline_previous_agent_sends_the_contact_to_the_fallback_and_says_so(
    service: Service,
) -> None:
    account = setup(service)
    service.ingest(agent(account, 1, status="offline"), T0 + minutes(1))

    decision = writes(service, account, 2)

    assert (decision["route"], decision["agent_id"]) == ("line_owner", "olga")
    assert "agent ana is offline" in decision["reason"]


@pytest.mark.parametrize(("route_to_away", "expected"), [(True, "previous_agent"), (False, "bot")])
def test_an_away_previous_agent_gets_the_contact_unless_the_account_does_not_route_to_away(
    service: Service, route_to_away: bool, expected: str
) -> None:
    account = setup(service, bot=True)
    service.ingest(
        event(
            "account.settings_updated",
            account,
            T0 - minutes(30),
            route_to_away_agents=route_to_away,
        ),
        T0,
    )
    service.ingest(agent(account, 1, status="away"), T0 + minutes(1))

    assert writes(service, account, 2)["route"] == expected


def test_capacity_counts_the_open_conversations_stored_and_frees_up_when_one_closes(
    service: Service,
) -> None:
    account = setup(service)
    service.ingest(agent(account, 1, capacity=2), T0 + minutes(1))
    service.ingest([hers(account, "c2", 1), hers(account, "c3", 1)], T0 + minutes(1))

    full = writes(service, account, 2)
    service.ingest(
        agent_close(account, T0 + minutes(3), conversation="c3", contact_id="c3"), T0 + minutes(3)
    )
    again = inbound(account, T0 + minutes(4))
    service.ingest(again, T0 + minutes(4))
    room = routes(service, account)[-1]

    assert (full["route"], full["agent_id"]) == ("line_owner", "olga")
    assert "agent ana has 2 of 2 conversations open" in full["reason"]
    assert (room["route"], room["agent_id"]) == ("previous_agent", "ana")
    assert room["reason"].endswith("agent ana has 1 of 2 conversations open")


def test_a_conversation_opened_for_the_agent_in_the_same_batch_counts_before_the_contact_writes(
    service: Service,
) -> None:
    account = setup(service)
    service.ingest([agent(account, 1, capacity=2), hers(account, "c2", 1)], T0 + minutes(1))

    service.ingest([hers(account, "c3", 2), inbound(account, T0 + minutes(3))], T0 + minutes(3))

    decision = routes(service, account)[-1]
    assert decision["route"] == "line_owner"
    assert "agent ana has 2 of 2 conversations open" in decision["reason"]


def test_a_conversation_of_the_agent_closed_in_the_same_batch_frees_her_place_first(
    service: Service,
) -> None:
    account = setup(service)
    service.ingest([agent(account, 1, capacity=1), hers(account, "c2", 1)], T0 + minutes(1))

    service.ingest(
        [
            agent_close(account, T0 + minutes(2), conversation="c2", contact_id="c2"),
            inbound(account, T0 + minutes(3)),
        ],
        T0 + minutes(3),
    )

    decision = routes(service, account)[-1]
    assert (decision["route"], decision["agent_id"]) == ("previous_agent", "ana")


def test_capacity_zero_sends_every_contact_to_the_fallback(service: Service) -> None:
    account = setup(service)
    service.ingest(agent(account, 1, capacity=0), T0 + minutes(1))

    decision = writes(service, account, 2)

    assert decision["route"] == "line_owner"
    assert "agent ana takes no conversations (capacity 0)" in decision["reason"]


def test_an_update_without_capacity_keeps_it_and_capacity_null_removes_the_limit(
    service: Service,
) -> None:
    account = setup(service)
    service.ingest([agent(account, 1, capacity=1), hers(account, "c2", 1)], T0 + minutes(1))
    service.ingest(agent(account, 2, status="online"), T0 + minutes(2))
    still_full = writes(service, account, 3)
    service.ingest(agent(account, 4, capacity=None), T0 + minutes(4))
    service.ingest(inbound(account, T0 + minutes(5)), T0 + minutes(5))

    assert still_full["route"] == "line_owner"
    assert routes(service, account)[-1]["route"] == "previous_agent"
