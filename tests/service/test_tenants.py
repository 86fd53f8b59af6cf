"""Accounts never see each other: the same conversation id or event id in two accounts is two
different things.

Each test runs on SQLite and PostgreSQL; every `now` is chosen, nothing sleeps.
"""

from __future__ import annotations

from policies.state import Status
from tests.service.builders import T0, account_with, inbound, minutes, opened, routed
from tests.support import Service, conversation_event


def test_an_event_of_one_account_never_touches_another(service: Service) -> None:
    alice = account_with(service, close_after="PT10M")
    bob = account_with(service, close_after="PT10M")
    service.ingest(opened(bob, "shared-id"), T0)
    service.ingest(
        conversation_event(
            "conversation.closed", alice, "shared-id", T0 + minutes(1), closed_by="system"
        ),
        T0 + minutes(1),
    )

    bob_state, bob_due = service.conversation(bob, "shared-id")
    assert bob_state.status is Status.OPEN
    assert bob_due == T0 + minutes(10)
    assert service.conversation(alice, "shared-id")[0].status is Status.CLOSED


def test_the_same_event_id_in_two_accounts_is_two_events(service: Service) -> None:
    alice, bob = account_with(service, bot=True), account_with(service, bot=True)
    service.ingest([{**inbound(alice, T0), "event_id": "e-1"}], T0)
    service.ingest([{**inbound(bob, T0), "event_id": "e-1"}], T0)
    assert routed(service, alice)["route"] == routed(service, bob)["route"] == "bot"
