"""A routing decision sees every fact it depends on as it stands when the contact writes, whether
that fact arrived in an earlier message or earlier in the same one (issue 10's routing bug: a
deactivated agent got the contact back when the close and the inbound shared a batch).

Each scenario is run twice: every event in its own message, then all of them in one message;
both must give the same decision. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.service.builders import T0, agent_close, inbound, minutes, opened, routed
from tests.support import Service, event, new_id, settings_event

Scenario = Callable[[str], list[dict[str, Any]]]
"""account -> the events, oldest first (the inbound last)."""


def deactivated(account: str, at: datetime) -> dict[str, Any]:
    return event("agent.updated", account, at, agent_id="ana", active=False)


def reactivated(account: str, at: datetime) -> dict[str, Any]:
    return event("agent.updated", account, at, agent_id="ana", active=True)


def owner(account: str, at: datetime, agent: str = "olga") -> dict[str, Any]:
    return event("line.updated", account, at, line_id="line-1", agent_id=agent)


def window(account: str, at: datetime, bot: bool = False) -> dict[str, Any]:
    return settings_event(account, at, window="P1D", bot=bot)


def closed_by_ana_then_back(account: str) -> list[dict[str, Any]]:
    return [
        opened(account, at=T0, agent_id="ana"),
        agent_close(account, T0 + minutes(1), reason="resolved"),
        inbound(account, T0 + minutes(2)),
    ]


SCENARIOS: dict[str, tuple[Scenario, str, str]] = {
    # (events, route expected, words the reason must hold)
    "an agent deactivated earlier, then the close and the inbound": (
        lambda a: [
            window(a, T0 - minutes(30)),
            owner(a, T0 - minutes(20)),
            deactivated(a, T0 - minutes(10)),
            *closed_by_ana_then_back(a),
        ],
        "line_owner",
        "agent ana is no longer active",
    ),
    "an agent deactivated after the close, before the inbound": (
        lambda a: [
            window(a, T0 - minutes(30)),
            owner(a, T0 - minutes(20)),
            opened(a, at=T0, agent_id="ana"),
            agent_close(a, T0 + minutes(1), reason="resolved"),
            deactivated(a, T0 + minutes(1.5)),
            inbound(a, T0 + minutes(2)),
        ],
        "line_owner",
        "agent ana is no longer active",
    ),
    "an agent deactivated, then active again before the close": (
        lambda a: [
            window(a, T0 - minutes(30)),
            deactivated(a, T0 - minutes(10)),
            reactivated(a, T0 - minutes(5)),
            *closed_by_ana_then_back(a),
        ],
        "previous_agent",
        "agent ana closed conversation c1",
    ),
    "a line owner set before the inbound": (
        lambda a: [owner(a, T0 - minutes(1), agent="olga"), inbound(a, T0)],
        "line_owner",
        "agent olga owns the line",
    ),
    "a reassignment window set before the close": (
        lambda a: [window(a, T0 - minutes(1)), *closed_by_ana_then_back(a)],
        "previous_agent",
        "within the 1d reassignment window",
    ),
    "the bot turned on before a new contact writes": (
        lambda a: [window(a, T0 - minutes(1), bot=True), inbound(a, T0)],
        "bot",
        "the bot is on",
    ),
}


@pytest.mark.parametrize("together", [False, True], ids=["apart", "together"])
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_routing_decision_sees_the_facts_sent_before_it_in_any_message(
    service: Service, scenario: str, together: bool
) -> None:
    events, route, words = SCENARIOS[scenario]
    account = new_id("acct")
    batch = events(account)
    now = T0 + minutes(5)
    if together:
        service.ingest(batch, now)
    else:
        for one in batch:
            service.ingest(one, now)

    decision = routed(service, account)
    assert decision["route"] == route, decision["reason"]
    assert words in decision["reason"]
