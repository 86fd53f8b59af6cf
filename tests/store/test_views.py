"""The conversation view (store/views.py) the CLI and the gateway show, on both stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy.engine import Engine

from events.decisions import AutoClosed, ContactRouted, Route
from policies.state import AccountSettings, Conversation, Status
from store import conversations, outbox
from store.conversations import key_of
from store.views import conversation_view
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")
DEFAULT = AccountSettings(inactivity_close_after=timedelta(days=7))


def test_a_conversation_never_seen_has_no_view(engine: Engine) -> None:
    with engine.connect() as connection:
        assert conversation_view(connection, new_id("acct"), "c1", DEFAULT) is None


def test_the_view_holds_the_state_deadline_settings_and_its_decisions_oldest_first(
    engine: Engine,
) -> None:
    account = new_id("acct")
    state = Conversation(
        account_id=account,
        conversation_id="c1",
        contact_id="k1",
        line_id="l1",
        status=Status.OPEN,
        last_activity_at=T0,
        assignee_agent_id="ana",
    )
    later = AutoClosed(
        decision_id=new_id("d"),
        account_id=account,
        decided_at=T0 + timedelta(days=7),
        reason="no activity for 7 days",
        conversation_id="c1",
        contact_id="k1",
        line_id="l1",
        last_activity_at=T0,
        closed_at=T0 + timedelta(days=7),
        inactivity_close_after=timedelta(days=7),
    )
    earlier = ContactRouted(
        decision_id=new_id("d"),
        account_id=account,
        decided_at=T0,
        reason="open conversation",
        inbound_event_id="e1",
        contact_id="k1",
        line_id="l1",
        route=Route.OPEN_CONVERSATION,
        conversation_id="c1",
        agent_id="ana",
    )
    other = earlier.model_copy(update={"decision_id": new_id("d"), "conversation_id": "c2"})
    with engine.begin() as connection:
        conversations.save(connection, {key_of(state): (state, T0 + timedelta(days=7))})
        outbox.add_decisions(connection, [later, earlier, other])

    with engine.connect() as connection:
        view = conversation_view(connection, account, "c1", DEFAULT)

    assert view is not None
    assert view.state == state
    assert view.close_due_at == T0 + timedelta(days=7)
    assert view.account == DEFAULT  # never configured: the defaults
    assert [d["decision_id"] for d in view.decisions] == [earlier.decision_id, later.decision_id]
    assert view.decisions[1]["reason"] == "no activity for 7 days"


def test_the_view_tells_a_pending_close_warning_from_the_close_it_announces(
    engine: Engine,
) -> None:
    account = new_id("acct")
    warns = AccountSettings(
        inactivity_close_after=timedelta(days=1), close_warning_before=timedelta(hours=1)
    )
    state = Conversation(
        account_id=account,
        conversation_id="c1",
        contact_id="k1",
        line_id="l1",
        status=Status.OPEN,
        last_activity_at=T0,
    )
    warned = replace(state, conversation_id="c2", close_warned_at=T0 + timedelta(hours=23))
    with engine.begin() as connection:
        conversations.save(
            connection,
            {
                key_of(state): (state, T0 + timedelta(hours=23)),
                key_of(warned): (warned, T0 + timedelta(days=1)),
            },
        )
    with engine.connect() as connection:
        pending = conversation_view(connection, account, "c1", warns)
        sent = conversation_view(connection, account, "c2", warns)
    assert pending is not None
    assert sent is not None
    assert (pending.warning_pending, pending.closes_at) == (True, T0 + timedelta(days=1))
    assert (sent.warning_pending, sent.closes_at) == (False, T0 + timedelta(days=1))
    assert sent.state.close_warned_at == T0 + timedelta(hours=23)
