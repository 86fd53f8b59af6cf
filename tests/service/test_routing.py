"""Where a contact who writes goes: one contact.routed decision per contact.inbound event.

Each test runs on SQLite and PostgreSQL; every `now` is chosen, nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from tests.service.builders import (
    T0,
    account_with,
    agent_close,
    inbound,
    minutes,
    opened,
    routed,
    routes,
    µs,
)
from tests.support import Service, conversation_event, event

AFTER_AN_HOUR = T0 + minutes(60)


def owned_by(service: Service, account: str, **owner: Any) -> None:
    service.ingest(event("line.updated", account, T0, line_id="line-1", **owner), T0)


ENDINGS: dict[str, tuple[Callable[[str], dict], str, datetime]] = {
    # (the close, the account's window, when the contact writes again)
    "window-over": (lambda a: agent_close(a, T0), "PT1H", AFTER_AN_HOUR),
    "closed-without-a-reason": (lambda a: agent_close(a, T0, reason=None), "P1D", T0 + minutes(5)),
}


@pytest.mark.parametrize("ending", list(ENDINGS))
@pytest.mark.parametrize(
    ("bot", "owner", "expected"),
    [
        (True, {"agent_id": "olga"}, {"route": "bot", "agent_id": None, "group_id": None}),
        (False, {"agent_id": "olga"}, {"route": "line_owner", "agent_id": "olga"}),
        (False, {"group_id": "sales"}, {"route": "line_owner", "group_id": "sales"}),
        (False, {}, {"route": "unassigned", "agent_id": None, "group_id": None}),
    ],
    ids=["bot", "owner-agent", "owner-group", "no-owner"],
)
def test_after_the_window_or_a_close_without_reason_the_contact_goes_where_a_new_one_goes(
    service: Service, bot: bool, owner: dict, expected: dict, ending: str
) -> None:
    close, window, writes_at = ENDINGS[ending]
    account = account_with(service, window=window, bot=bot)
    owned_by(service, account, **owner)
    service.ingest([opened(account), close(account)], T0)
    service.ingest(inbound(account, writes_at), writes_at)

    decision = routed(service, account)
    assert {field: decision[field] for field in expected} == expected


def test_just_inside_the_window_the_contact_goes_back_to_the_agent_who_closed(
    service: Service,
) -> None:
    account = account_with(service, window="PT1H", bot=True)
    owned_by(service, account, agent_id="olga")
    service.ingest([opened(account, agent_id="bruno"), agent_close(account, T0)], T0)
    just_inside = AFTER_AN_HOUR - µs
    service.ingest(inbound(account, just_inside), just_inside)

    decision = routed(service, account)
    assert (decision["route"], decision["agent_id"]) == ("previous_agent", "ana")


def test_the_window_is_measured_to_when_the_contact_wrote_not_to_when_convlife_routes(
    service: Service,
) -> None:
    account = account_with(service, window="PT1H")
    service.ingest([opened(account), agent_close(account, T0)], T0)
    routed_late = T0 + minutes(90)
    service.ingest(inbound(account, T0 + minutes(59)), routed_late)

    decision = routed(service, account)
    assert (decision["route"], decision["decided_at"]) == ("previous_agent", "2026-03-01T11:30:00Z")


def test_an_account_without_a_window_never_gives_a_contact_back(service: Service) -> None:
    account = account_with(service, window=None)
    service.ingest([opened(account), agent_close(account, T0)], T0)
    service.ingest(inbound(account, T0 + minutes(1)), T0 + minutes(1))
    assert routed(service, account)["route"] == "unassigned"


def test_a_conversation_closed_by_the_system_upstream_never_gives_the_contact_back(
    service: Service,
) -> None:
    account = account_with(service, window="P1D")
    system_close = {**agent_close(account, T0, reason="spam"), "closed_by": "system"}
    service.ingest([opened(account), system_close], T0)
    service.ingest(inbound(account, T0 + minutes(1)), T0 + minutes(1))
    assert routed(service, account)["route"] == "unassigned"


@pytest.mark.parametrize(
    ("assignee", "expected"),
    [
        ({"agent_id": "ana"}, {"agent_id": "ana"}),
        ({"group_id": "sales"}, {"group_id": "sales", "agent_id": None}),
    ],
    ids=["agent", "group"],
)
def test_an_open_conversation_keeps_the_contact_with_its_assignee(
    service: Service, assignee: dict, expected: dict
) -> None:
    account = account_with(service, window="P1D", bot=True)
    service.ingest(opened(account, **assignee), T0)
    service.ingest(inbound(account, T0 + minutes(1)), T0 + minutes(1))

    decision = routed(service, account)
    assert (decision["route"], decision["conversation_id"]) == ("open_conversation", "c1")
    assert {field: decision[field] for field in expected} == expected


def test_the_open_conversation_follows_its_latest_transfer(service: Service) -> None:
    account = account_with(service)
    service.ingest(opened(account, agent_id="ana"), T0)
    transfer = conversation_event(
        "conversation.transferred", account, "c1", T0 + minutes(1), agent_id="bruno"
    )
    service.ingest([transfer, inbound(account, T0 + minutes(2))], T0 + minutes(2))
    assert routed(service, account)["agent_id"] == "bruno"


def test_an_inbound_on_an_open_conversation_moves_its_deadline(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    service.ingest(inbound(account, T0 + minutes(25)), T0 + minutes(25))

    state, due = service.conversation(account, "c1")
    assert (state.last_activity_at, due) == (T0 + minutes(25), T0 + minutes(55))
    assert routed(service, account)["route"] == "open_conversation"


def test_every_inbound_event_gets_exactly_one_routing_decision(service: Service) -> None:
    account = account_with(service, bot=True)
    batch = [inbound(account, T0 + minutes(i), contact=f"k{i % 2}") for i in range(4)]
    service.ingest(batch, T0 + minutes(4))
    service.ingest(batch[:2], T0 + minutes(5))  # redelivered: routed already

    made = routes(service, account)
    assert sorted(d["inbound_event_id"] for d in made) == sorted(e["event_id"] for e in batch)
    assert {(d["route"], d["contact_id"], d["line_id"]) for d in made} == {
        ("bot", "k0", "line-1"),
        ("bot", "k1", "line-1"),
    }


def test_a_contact_writing_on_another_line_is_a_new_contact_there(service: Service) -> None:
    account = account_with(service, window="P1D", bot=True)
    service.ingest(opened(account), T0)
    service.ingest(inbound(account, T0 + minutes(1), line="line-2"), T0 + minutes(1))

    decision = routed(service, account)
    assert (decision["route"], decision["line_id"]) == ("bot", "line-2")
    assert service.conversation(account, "c1")[0].last_activity_at == T0


def test_a_reactivated_agent_gets_contacts_back_and_an_older_deactivation_changes_nothing(
    service: Service,
) -> None:
    account = account_with(service, window="P1D")
    service.ingest([opened(account), agent_close(account, T0)], T0)
    agent = "agent.updated"
    service.ingest(event(agent, account, T0 + minutes(2), agent_id="ana", active=True), T0)
    service.ingest(event(agent, account, T0 + minutes(1), agent_id="ana", active=False), T0)
    service.ingest(inbound(account, T0 + minutes(5)), T0 + minutes(5))

    assert routed(service, account)["route"] == "previous_agent"


@pytest.mark.parametrize("together", [False, True], ids=["own-batch", "inbounds-batch"])
def test_a_deactivated_agent_does_not_get_the_contact_back(
    service: Service, together: bool
) -> None:
    account = account_with(service, window="P1D", bot=True)
    service.ingest([opened(account), agent_close(account, T0)], T0)
    deactivation = event("agent.updated", account, T0 + minutes(1), agent_id="ana", active=False)
    later = inbound(account, T0 + minutes(2))
    batches = [[deactivation, later]] if together else [[deactivation], [later]]
    for batch in batches:
        service.ingest(batch, T0 + minutes(2))
    assert routed(service, account)["route"] == "bot"


def test_after_an_auto_close_the_contact_is_new(service: Service) -> None:
    account = account_with(service, close_after="PT10M", window="P1D", bot=True)
    service.ingest(opened(account, agent_id="ana"), T0)
    service.close_due(T0 + minutes(10), account)
    service.ingest(inbound(account, T0 + minutes(11)), T0 + minutes(11))
    assert routed(service, account)["route"] == "bot"


def test_decisions_are_stored_as_their_json(service: Service) -> None:
    account = account_with(service, bot=True)
    service.ingest(inbound(account, T0), T0)
    assert json.dumps(routed(service, account))


def test_a_line_whose_owner_is_removed_leaves_new_contacts_unassigned(service: Service) -> None:
    account = account_with(service)
    owned_by(service, account, agent_id="olga")
    service.ingest(
        event("line.updated", account, T0 + minutes(1), line_id="line-1"), T0 + minutes(1)
    )
    service.ingest(
        event("line.updated", account, T0 - minutes(1), line_id="line-1", group_id="old"),
        T0 + minutes(1),
    )
    service.ingest(inbound(account, T0 + minutes(2)), T0 + minutes(2))
    assert routed(service, account)["route"] == "unassigned"


def test_a_line_owner_of_another_line_is_not_this_lines_owner(service: Service) -> None:
    account = account_with(service)
    service.ingest(event("line.updated", account, T0, line_id="line-2", agent_id="olga"), T0)
    service.ingest(inbound(account, T0 + minutes(1)), T0 + minutes(1))
    assert routed(service, account)["route"] == "unassigned"


def test_a_contact_of_one_account_never_sees_another_accounts_conversations(
    service: Service,
) -> None:
    alice = account_with(service, window="P1D")
    bob = account_with(service, window="P1D", bot=True)
    service.ingest([opened(alice, agent_id="ana"), opened(bob, "c2", agent_id="zed")], T0)
    service.ingest(agent_close(alice, T0 + minutes(1)), T0 + minutes(1))
    # Bob's contact has the same contact and line ids as Alice's.
    service.ingest(inbound(bob, T0 + minutes(2)), T0 + minutes(2))
    service.ingest(inbound(alice, T0 + minutes(3)), T0 + minutes(3))

    bob_decision = routed(service, bob)
    assert (bob_decision["route"], bob_decision["conversation_id"]) == (
        "open_conversation",
        "c2",
    )
    assert routed(service, alice)["route"] == "previous_agent"


@pytest.mark.parametrize("conversation", ["c1", "c2"], ids=["reopened", "a-new-conversation"])
def test_an_open_dated_when_the_contact_wrote_but_applied_first_does_not_keep_it_from_its_agent(
    service: Service, conversation: str
) -> None:
    # The platform opened (or reopened) a conversation because the contact wrote, and that
    # open reached convlife in an earlier batch than the message.
    account = account_with(service, window="P1D")
    service.ingest([opened(account, agent_id="ana"), agent_close(account, T0 + minutes(5))], T0)
    writes_at = T0 + minutes(30)
    service.ingest(opened(account, conversation, writes_at, bot=True), writes_at)
    service.ingest(inbound(account, writes_at), writes_at + minutes(1))

    decision = routed(service, account)
    assert (decision["route"], decision["agent_id"]) == ("previous_agent", "ana")


def test_a_conversation_opened_before_the_contact_wrote_keeps_it_there(service: Service) -> None:
    account = account_with(service, window="P1D")
    service.ingest([opened(account, agent_id="ana"), agent_close(account, T0 + minutes(5))], T0)
    writes_at = T0 + minutes(30)
    service.ingest(opened(account, "c1", writes_at - µs, bot=True), writes_at)
    service.ingest(inbound(account, writes_at), writes_at + minutes(1))

    decision = routed(service, account)
    assert (decision["route"], decision["conversation_id"]) == ("open_conversation", "c1")
