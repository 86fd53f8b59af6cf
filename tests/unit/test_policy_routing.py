"""The reassignment window: where a contact who writes again goes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from events.decisions import Route
from events.models import ContactInbound
from policies.routing import route_inbound
from policies.state import (
    INACTIVITY,
    AccountSettings,
    ClosedBy,
    Conversation,
    LineOwner,
    Status,
)
from tests.support import utc

CLOSED_AT = utc("2026-03-01T10:00:00")
NOW = utc("2026-03-05T00:00:00")
µs = timedelta(microseconds=1)
WINDOW = AccountSettings(reassignment_window=timedelta(hours=24))


def inbound(at: datetime, *, contact: str = "maria", line: str = "sales") -> ContactInbound:
    return ContactInbound(
        type="contact.inbound",
        event_id="in-1",
        account_id="acct",
        occurred_at=at,
        contact_id=contact,
        line_id=line,
    )


def closed(
    conversation_id: str = "c1",
    *,
    at: datetime = CLOSED_AT,
    by: ClosedBy = ClosedBy.AGENT,
    agent: str | None = "ana",
    reason: str | None = "resolved",
    contact: str = "maria",
    line: str = "sales",
    account: str = "acct",
) -> Conversation:
    return Conversation(
        account_id=account,
        conversation_id=conversation_id,
        contact_id=contact,
        line_id=line,
        status=Status.CLOSED,
        last_activity_at=at,
        status_changed_at=at,
        closed_at=at,
        closed_by=by,
        closing_agent_id=agent,
        close_reason=reason,
    )


def open_conversation(conversation_id: str = "c9", *, group: str | None = None) -> Conversation:
    return Conversation(
        account_id="acct",
        conversation_id=conversation_id,
        contact_id="maria",
        line_id="sales",
        status=Status.OPEN,
        last_activity_at=CLOSED_AT,
        assignee_agent_id=None if group else "bruno",
        assignee_group_id=group,
    )


def route(
    conversations: list[Conversation],
    settings: AccountSettings = WINDOW,
    *,
    at: datetime = CLOSED_AT + timedelta(hours=1),
    line: LineOwner = LineOwner(),  # noqa: B008 - frozen value
    active: dict[str, bool] | None = None,
):  # type: ignore[no-untyped-def]
    return route_inbound(inbound(at), conversations, settings, line, active or {}, NOW)


def test_an_open_conversation_keeps_the_contact_where_it_is() -> None:
    decision = route([closed(), open_conversation()])
    assert decision.route is Route.OPEN_CONVERSATION
    assert (decision.conversation_id, decision.agent_id) == ("c9", "bruno")


def test_an_open_conversation_with_a_group_names_the_group() -> None:
    decision = route([open_conversation(group="sales-team")])
    assert (decision.route, decision.group_id) == (Route.OPEN_CONVERSATION, "sales-team")


def test_a_contact_writing_inside_the_window_goes_back_to_the_agent_who_closed_with_a_reason() -> (
    None
):
    decision = route([closed()])
    assert decision.route is Route.PREVIOUS_AGENT
    assert decision.agent_id == "ana"
    assert "1h" in decision.reason
    assert "within the 1d reassignment window" in decision.reason


@pytest.mark.parametrize(
    ("wrote_at", "route_taken"),
    [
        (CLOSED_AT + timedelta(hours=24) - µs, Route.PREVIOUS_AGENT),
        (CLOSED_AT + timedelta(hours=24), Route.UNASSIGNED),
        (CLOSED_AT + timedelta(hours=24) + µs, Route.UNASSIGNED),
    ],
    ids=["1µs-before-the-end", "exactly-at-closed_at+window", "after"],
)
def test_at_closed_at_plus_window_the_window_is_over(
    wrote_at: datetime, route_taken: Route
) -> None:
    assert route([closed()], at=wrote_at).route is route_taken


@pytest.mark.parametrize(
    ("conversation", "why"),
    [
        (closed(reason=None), "without a close reason"),
        (closed(reason=""), "without a close reason"),
        (closed(by=ClosedBy.SYSTEM, agent=None, reason=INACTIVITY), "closed by the system"),
        (closed(by=ClosedBy.SYSTEM, agent=None, reason="spam"), "closed by the system"),
    ],
    ids=["no-reason", "empty-reason", "auto-closed", "system-close"],
)
def test_a_close_without_an_agent_reason_makes_a_new_contact(
    conversation: Conversation, why: str
) -> None:
    decision = route([conversation])
    assert decision.route is Route.UNASSIGNED
    assert why in decision.reason


def test_an_account_without_a_window_never_gives_the_contact_back() -> None:
    decision = route([closed()], AccountSettings(reassignment_window=None))
    assert decision.route is Route.UNASSIGNED
    assert "no reassignment window" in decision.reason


def test_a_deactivated_previous_agent_does_not_get_the_contact_back() -> None:
    decision = route([closed()], active={"ana": False})
    assert decision.route is Route.UNASSIGNED
    assert "ana is no longer active" in decision.reason
    assert route([closed()], active={"ana": True}).route is Route.PREVIOUS_AGENT


def test_only_the_last_closed_conversation_counts() -> None:
    earlier_by_agent = closed("c1", at=CLOSED_AT - timedelta(hours=2))
    later_auto_closed = closed("c2", by=ClosedBy.SYSTEM, agent=None, reason=INACTIVITY)
    assert route([earlier_by_agent, later_auto_closed]).route is Route.UNASSIGNED
    later_by_agent = closed("c3", agent="carla")
    assert route([earlier_by_agent, later_by_agent]).agent_id == "carla"


@pytest.mark.parametrize(
    ("settings", "line", "expected"),
    [
        (AccountSettings(bot_enabled=True), LineOwner(agent_id="olga"), (Route.BOT, None, None)),
        (AccountSettings(), LineOwner(agent_id="olga"), (Route.LINE_OWNER, "olga", None)),
        (AccountSettings(), LineOwner(group_id="sales"), (Route.LINE_OWNER, None, "sales")),
        (AccountSettings(), LineOwner(), (Route.UNASSIGNED, None, None)),
    ],
    ids=["bot-on", "owner-agent", "owner-group", "no-owner"],
)
def test_a_new_contact_goes_to_the_bot_else_the_line_owner_else_nobody(
    settings: AccountSettings, line: LineOwner, expected: tuple[Route, str | None, str | None]
) -> None:
    decision = route([], settings, line=line)
    assert (decision.route, decision.agent_id, decision.group_id) == expected
    assert "no earlier conversation" in decision.reason


def test_conversations_of_other_contacts_lines_or_accounts_are_ignored() -> None:
    others = [
        closed("x1", contact="joao"),
        closed("x2", line="support"),
        closed("x3", account="other-account"),
    ]
    assert route(others).route is Route.UNASSIGNED


def test_the_decision_is_stable_per_inbound_event_and_carries_its_id() -> None:
    first = route([closed()])
    again = route_inbound(
        inbound(CLOSED_AT + timedelta(hours=1)), [closed()], WINDOW, LineOwner(), {}, NOW
    )
    assert first.decision_id == again.decision_id
    assert first.inbound_event_id == "in-1"
    assert (first.contact_id, first.line_id, first.decided_at) == ("maria", "sales", NOW)
