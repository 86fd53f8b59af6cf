"""Decisions leave as JSON and come back identical: consumers parse exactly what was decided."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

import pytest
from pydantic import ValidationError

from events.decisions import (
    AutoClosed,
    CloseWarning,
    ContactRouted,
    Decision,
    Route,
    parse_decision,
)
from events.models import ContactInbound
from policies.inactivity import auto_close
from policies.routing import route_inbound
from policies.state import AccountSettings, ClosedBy, Conversation, LineOwner, Status
from tests.support import utc

T = utc("2026-03-01T10:00:00")
BRASILIA = timezone(timedelta(hours=-3))


def auto_closed(**changes: object) -> AutoClosed:
    fields: dict[str, object] = {
        "decision_id": "d-1",
        "account_id": "acct",
        "decided_at": T,
        "reason": "no action for 1d; the account closes conversations after 1d without action",
        "conversation_id": "conv",
        "contact_id": "maria",
        "line_id": "sales",
        "last_activity_at": T - timedelta(days=1),
        "closed_at": T,
        "inactivity_close_after": timedelta(days=1),
    }
    return AutoClosed.model_validate({**fields, **changes})


def routed(route: Route, **target: str | None) -> ContactRouted:
    return ContactRouted(
        decision_id="d-2",
        account_id="acct",
        decided_at=T,
        reason="why, in words",
        inbound_event_id="in-1",
        contact_id="maria",
        line_id="sales",
        route=route,
        **target,
    )


DECISIONS = {
    "auto-closed": auto_closed(),
    "auto-closed-µs-setting": auto_closed(inactivity_close_after=timedelta(microseconds=1)),
    "auto-closed-odd-setting": auto_closed(
        inactivity_close_after=timedelta(days=7, hours=3, minutes=2, seconds=1.5)
    ),
    "auto-closed-non-utc-times": auto_closed(
        decided_at=T.astimezone(BRASILIA), closed_at=T.astimezone(BRASILIA)
    ),
    "close-warning": CloseWarning(
        decision_id="d-3",
        account_id="acct",
        decided_at=T.astimezone(BRASILIA),
        reason="no action for 23h; closes at 2026-03-01T11:00:00+00:00",
        conversation_id="conv",
        contact_id="maria",
        line_id="sales",
        last_activity_at=T - timedelta(hours=23),
        closes_at=T + timedelta(hours=1),
    ),
    "open_conversation": routed(Route.OPEN_CONVERSATION, conversation_id="conv", agent_id="ana"),
    "open_conversation-group": routed(
        Route.OPEN_CONVERSATION, conversation_id="conv", group_id="sales-team"
    ),
    "previous_agent": routed(Route.PREVIOUS_AGENT, agent_id="ana"),
    "bot": routed(Route.BOT),
    "line_owner-agent": routed(Route.LINE_OWNER, agent_id="olga"),
    "line_owner-group": routed(Route.LINE_OWNER, group_id="sales-team"),
    "unassigned": routed(Route.UNASSIGNED),
    "unicode-reason": routed(Route.BOT).model_copy(update={"reason": "contato novo — ça va 🤖"}),
}


@pytest.mark.parametrize("decision", DECISIONS.values(), ids=DECISIONS.keys())
@pytest.mark.parametrize("form", ["text", "bytes"])
def test_every_decision_round_trips_through_its_json(decision: Decision, form: str) -> None:
    data = decision.model_dump_json()
    back = parse_decision(data if form == "text" else data.encode())
    assert type(back) is type(decision)
    assert back == decision
    assert back.model_dump_json() == data


def test_a_round_trip_keeps_the_offset_the_times_were_written_with() -> None:
    back = parse_decision(DECISIONS["auto-closed-non-utc-times"].model_dump_json())
    assert back.decided_at.utcoffset() == timedelta(hours=-3)
    assert back.decided_at == T


def test_durations_travel_as_iso_8601_and_routes_as_their_names() -> None:
    assert json.loads(auto_closed().model_dump_json())["inactivity_close_after"] == "P1D"
    assert json.loads(DECISIONS["previous_agent"].model_dump_json())["route"] == "previous_agent"


def test_the_decisions_the_policies_make_round_trip() -> None:
    idle = Conversation("acct", "conv", "maria", "sales", Status.OPEN, T - timedelta(hours=25))
    closing = auto_close(idle, AccountSettings(inactivity_close_after=timedelta(days=1)), T)
    assert closing is not None
    closed, closed_decision = closing
    inbound = ContactInbound(
        type="contact.inbound",
        event_id="in-1",
        account_id="acct",
        occurred_at=T + timedelta(minutes=1),
        contact_id="maria",
        line_id="sales",
    )
    assert closed.closed_by is ClosedBy.SYSTEM
    routing = route_inbound(
        inbound, [closed], AccountSettings(), LineOwner("olga"), {}, T, open_assigned={}
    )
    for decision in (closed_decision, routing):
        assert parse_decision(decision.model_dump_json()) == decision


@pytest.mark.parametrize(
    "data",
    [
        json.dumps({**json.loads(auto_closed().model_dump_json()), "surprise": 1}),
        json.dumps({**json.loads(auto_closed().model_dump_json()), "type": "contact.routed"}),
        json.dumps({**json.loads(routed(Route.BOT).model_dump_json()), "route": "teleport"}),
        json.dumps(
            {**json.loads(auto_closed().model_dump_json()), "decided_at": "2026-03-01T10:00"}
        ),
        "not json",
    ],
    ids=["unknown-field", "wrong-type-for-the-fields", "unknown-route", "naive-time", "not-json"],
)
def test_a_decision_that_is_not_one_we_make_is_refused(data: str) -> None:
    with pytest.raises(ValidationError):
        parse_decision(data)
