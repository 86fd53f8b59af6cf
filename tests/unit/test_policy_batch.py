"""policies.batch.decide: a batch decided over plain state, no store (the store's side of the
same scenarios is in tests/service)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from events.decisions import ContactRouted, Route
from events.models import Event
from events.parsing import parse_event
from policies.batch import Loaded, decide
from policies.configuration import NEVER_UPDATED, Stamp, Stamped
from policies.state import AccountSettings, Agent, ClosedBy, Conversation, LineOwner, Status
from tests.support import event, new_id, utc

T0 = utc("2026-03-01T10:00:00")
MINUTE = timedelta(minutes=1)
SETTINGS = AccountSettings(
    inactivity_close_after=timedelta(hours=1), reassignment_window=timedelta(days=1)
)


def parsed(type_: str, account: str, at_minute: int, **fields: Any) -> Event:
    return parse_event(event(type_, account, T0 + at_minute * MINUTE, **fields))


def closed_by_agent(account: str, agent_id: str) -> Conversation:
    return Conversation(
        account_id=account,
        conversation_id="c-1",
        contact_id="contact-1",
        line_id="line-1",
        status=Status.CLOSED,
        last_activity_at=T0,
        status_changed_at=T0,
        closed_at=T0,
        closed_by=ClosedBy.AGENT,
        closing_agent_id=agent_id,
        close_reason="resolved",
    )


def loaded(account: str, *conversations: Conversation, **rows: Any) -> Loaded:
    return Loaded(
        accounts=rows.get("accounts", {}),
        lines={},
        agents=rows.get("agents", {}),
        settings={account: SETTINGS},
        owners={(account, "line-1"): LineOwner()},
        agent_states={},
        conversations={(c.account_id, c.conversation_id): c for c in conversations},
    )


def test_an_agent_deactivated_later_in_the_batch_is_not_routed_to() -> None:
    # Configuration is applied first: every decision of the batch reads it as the batch
    # leaves it, as if the agent update had been a batch of its own before.
    account = new_id("acct")
    state = loaded(
        account,
        closed_by_agent(account, "agent-1"),
        agents={(account, "agent-1"): Stamped(Agent(), NEVER_UPDATED)},
    )
    inbound = parsed("contact.inbound", account, 1, contact_id="contact-1", line_id="line-1")
    deactivated = parsed("agent.updated", account, 2, agent_id="agent-1", active=False)

    decided = decide(state, [inbound, deactivated], T0 + 3 * MINUTE)

    [decision] = decided.decisions
    assert isinstance(decision, ContactRouted)
    assert decision.route is Route.UNASSIGNED
    assert decided.agents[(account, "agent-1")].value.active is False


def test_an_inbound_message_moves_the_deadline_of_the_open_conversation_it_reaches() -> None:
    account = new_id("acct")
    open_one = Conversation(
        account_id=account,
        conversation_id="c-1",
        contact_id="contact-1",
        line_id="line-1",
        status=Status.OPEN,
        last_activity_at=T0,
    )
    inbound = parsed("contact.inbound", account, 10, contact_id="contact-1", line_id="line-1")

    decided = decide(loaded(account, open_one), [inbound], T0 + 10 * MINUTE)

    conversation, deadline = decided.conversations[(account, "c-1")]
    assert conversation.last_activity_at == T0 + 10 * MINUTE
    assert deadline == T0 + 70 * MINUTE


def test_a_settings_update_older_than_the_stored_one_changes_nothing_and_moves_no_deadline() -> (
    None
):
    account = new_id("acct")
    stored = Stamped(SETTINGS, Stamp(T0 + 5 * MINUTE, "e-9"))
    older = parsed("account.settings_updated", account, 1, inactivity_close_after="PT5M")

    decided = decide(loaded(account, accounts={account: stored}), [older], T0 + 6 * MINUTE)

    assert decided.accounts == {}
    assert decided.rescheduled == {}


def test_once_rescheduled_an_account_follows_its_latest_settings_in_the_batch() -> None:
    account = new_id("acct")
    stored = Stamped(SETTINGS, NEVER_UPDATED)
    shorter = parsed("account.settings_updated", account, 1, inactivity_close_after="PT5M")
    bot_on = parsed("account.settings_updated", account, 2, bot_enabled=True)

    decided = decide(
        loaded(account, accounts={account: stored}), [bot_on, shorter], T0 + 3 * MINUTE
    )

    assert decided.rescheduled == {
        account: AccountSettings(timedelta(minutes=5), timedelta(days=1), bot_enabled=True)
    }


def test_a_conversation_created_for_the_batch_counts_for_an_inbound_only_once_it_has_an_event() -> (
    None
):
    # The store creates a batch's new conversations before the batch is decided; one that no
    # applied event has reached yet did not exist when the contact wrote.
    account = new_id("acct")
    created = Conversation(
        account_id=account,
        conversation_id="c-2",
        contact_id="contact-1",
        line_id="line-1",
        status=Status.OPEN,
        last_activity_at=T0 + 10 * MINUTE,
    )
    state = replace(
        loaded(account, closed_by_agent(account, "agent-1"), created),
        created=frozenset({(account, "c-2")}),
    )
    contact = {"contact_id": "contact-1", "line_id": "line-1"}
    wrote = parsed("contact.inbound", account, 10, **contact)
    message = parsed(
        "conversation.message", account, 10, conversation_id="c-2", sender="contact", **contact
    )
    wrote_again = parsed("contact.inbound", account, 11, **contact)

    decided = decide(state, [wrote, message, wrote_again], T0 + 12 * MINUTE)

    routed = [d for d in decided.decisions if isinstance(d, ContactRouted)]
    assert [(d.route, d.agent_id, d.conversation_id) for d in routed] == [
        (Route.PREVIOUS_AGENT, "agent-1", None),
        (Route.OPEN_CONVERSATION, None, "c-2"),
    ]
