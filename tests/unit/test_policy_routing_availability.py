"""Agent presence and capacity: whether the previous agent is available to take the contact back
(issue 13 §2). Everything else about the window is in test_policy_routing.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.decisions import ContactRouted, Route
from events.models import ContactInbound
from policies.routing import route_inbound, why_unavailable
from policies.state import (
    AccountSettings,
    Agent,
    ClosedBy,
    Conversation,
    LineOwner,
    Presence,
    Status,
)
from tests.support import utc

CLOSED_AT = utc("2026-03-01T10:00:00")
WROTE_AT = CLOSED_AT + timedelta(hours=1)
NOW = utc("2026-03-01T11:00:01")
WINDOW = AccountSettings(reassignment_window=timedelta(hours=24))
NOT_TO_AWAY = AccountSettings(reassignment_window=timedelta(hours=24), route_to_away_agents=False)

CLOSED_BY_ANA = Conversation(
    account_id="acct",
    conversation_id="c1",
    contact_id="maria",
    line_id="sales",
    status=Status.CLOSED,
    last_activity_at=CLOSED_AT,
    status_changed_at=CLOSED_AT,
    closed_at=CLOSED_AT,
    closed_by=ClosedBy.AGENT,
    closing_agent_id="ana",
    close_reason="resolved",
)


def route(
    ana: Agent | None,
    open_assigned: int | None = None,
    settings: AccountSettings = WINDOW,
    line: LineOwner = LineOwner(),  # noqa: B008 - frozen value
) -> ContactRouted:
    inbound = ContactInbound(
        type="contact.inbound",
        event_id="in-1",
        account_id="acct",
        occurred_at=WROTE_AT,
        contact_id="maria",
        line_id="sales",
    )
    return route_inbound(
        inbound,
        [CLOSED_BY_ANA],
        settings,
        line,
        {} if ana is None else {"ana": ana},
        NOW,
        open_assigned={} if open_assigned is None else {"ana": open_assigned},
    )


def test_an_online_agent_below_capacity_gets_the_contact_back_and_the_reason_says_how_full() -> (
    None
):
    decision = route(Agent(capacity=5), open_assigned=4)
    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")
    assert decision.reason.endswith("; agent ana has 4 of 5 conversations open")


def test_an_agent_exactly_at_capacity_is_full_and_the_contact_takes_the_fallback() -> None:
    decision = route(Agent(capacity=5), open_assigned=5, line=LineOwner(agent_id="olga"))
    assert (decision.route, decision.agent_id) == (Route.LINE_OWNER, "olga")
    assert "agent ana has 5 of 5 conversations open" in decision.reason


def test_an_agent_above_capacity_after_the_capacity_was_lowered_is_full_too() -> None:
    decision = route(Agent(capacity=2), open_assigned=7)
    assert decision.route is Route.UNASSIGNED
    assert "agent ana has 7 of 2 conversations open" in decision.reason


def test_an_agent_with_no_capacity_limit_gets_the_contact_back_however_many_are_open() -> None:
    decision = route(Agent(capacity=None), open_assigned=10_000)
    assert decision.route is Route.PREVIOUS_AGENT
    assert "conversations open" not in decision.reason


def test_an_agent_with_capacity_zero_takes_no_contact_back_even_with_none_open() -> None:
    decision = route(Agent(capacity=0), open_assigned=0)
    assert decision.route is Route.UNASSIGNED
    assert "agent ana takes no conversations (capacity 0)" in decision.reason


def test_an_agent_missing_from_the_counts_has_no_open_conversations() -> None:
    assert route(Agent(capacity=1), open_assigned=None).route is Route.PREVIOUS_AGENT
    assert route(Agent(capacity=0), open_assigned=None).route is Route.UNASSIGNED


def test_an_offline_agent_does_not_get_the_contact_back_and_the_bot_takes_it() -> None:
    bot_on = AccountSettings(reassignment_window=timedelta(hours=24), bot_enabled=True)
    decision = route(Agent(presence=Presence.OFFLINE), settings=bot_on)
    assert decision.route is Route.BOT
    assert decision.agent_id is None
    assert decision.reason == "new contact (agent ana is offline); the bot is on"


def test_an_offline_agent_is_unavailable_even_when_the_account_routes_to_away_agents() -> None:
    assert WINDOW.route_to_away_agents
    assert route(Agent(presence=Presence.OFFLINE)).route is Route.UNASSIGNED


def test_an_away_agent_gets_the_contact_back_while_the_account_routes_to_away_agents() -> None:
    decision = route(Agent(presence=Presence.AWAY))
    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")
    assert decision.reason.endswith("; agent ana is away and the account routes to away agents")


def test_an_away_agent_does_not_get_the_contact_back_when_the_account_does_not_route_to_away() -> (
    None
):
    decision = route(Agent(presence=Presence.AWAY), settings=NOT_TO_AWAY)
    assert decision.route is Route.UNASSIGNED
    assert "agent ana is away and the account does not route to away agents" in decision.reason


def test_an_online_agent_gets_the_contact_back_when_the_account_does_not_route_to_away() -> None:
    assert route(Agent(presence=Presence.ONLINE), settings=NOT_TO_AWAY).route is (
        Route.PREVIOUS_AGENT
    )


def test_an_agent_never_configured_is_available_with_no_limit() -> None:
    decision = route(None, open_assigned=10_000, settings=NOT_TO_AWAY)
    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")
    assert decision.reason.endswith("reassignment window")


def test_an_inactive_agent_is_unavailable_whatever_its_presence_and_room() -> None:
    decision = route(Agent(active=False, presence=Presence.ONLINE, capacity=None), open_assigned=0)
    assert decision.route is Route.UNASSIGNED
    assert "agent ana is no longer active" in decision.reason


@pytest.mark.parametrize(
    ("agent", "open_assigned", "settings", "why"),
    [
        (Agent(active=False, presence=Presence.OFFLINE, capacity=0), 9, WINDOW, "no longer active"),
        (Agent(presence=Presence.OFFLINE, capacity=0), 9, WINDOW, "is offline"),
        (Agent(presence=Presence.AWAY, capacity=1), 1, NOT_TO_AWAY, "is away"),
        (Agent(presence=Presence.AWAY, capacity=1), 1, WINDOW, "has 1 of 1"),
    ],
    ids=["inactive-first", "offline-before-capacity", "away-before-capacity", "then-capacity"],
)
def test_the_reason_names_the_first_thing_that_makes_the_agent_unavailable(
    agent: Agent, open_assigned: int, settings: AccountSettings, why: str
) -> None:
    reason = why_unavailable("ana", agent, open_assigned, settings)
    assert reason is not None
    assert reason.startswith("agent ana ")
    assert why in reason


@pytest.mark.parametrize("capacity", [1, 2, 5, 100])
def test_an_agent_is_available_below_capacity_and_full_from_capacity_on(capacity: int) -> None:
    agent = Agent(capacity=capacity)
    assert why_unavailable("ana", agent, capacity - 1, WINDOW) is None
    assert why_unavailable("ana", agent, capacity, WINDOW) is not None
    assert why_unavailable("ana", agent, capacity + 1, WINDOW) is not None


def test_availability_is_only_asked_inside_the_window() -> None:
    # Outside the window the window's reason stands, not the agent's presence.
    late = route_inbound(
        ContactInbound(
            type="contact.inbound",
            event_id="in-2",
            account_id="acct",
            occurred_at=CLOSED_AT + timedelta(days=2),
            contact_id="maria",
            line_id="sales",
        ),
        [CLOSED_BY_ANA],
        WINDOW,
        LineOwner(),
        {"ana": Agent(presence=Presence.OFFLINE)},
        NOW,
        open_assigned={},
    )
    assert "reassignment window after conversation c1 is over" in late.reason
    assert "offline" not in late.reason
