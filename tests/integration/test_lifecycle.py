"""The public contract, end to end: events published to the broker, decisions on the stream.

A real `convlife run` (worker + beat) runs against the real Redis and each store. Windows are
seconds long; the sweep runs every 0.5 s in these tests.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from tests.integration.conftest import Service
from tests.support import conversation_event, event, new_id, settings_event


def now() -> datetime:
    return datetime.now(UTC)


def setup_account(service: Service, **settings: object) -> str:
    account = new_id("acct")
    service.publish(settings_event(account, now() - timedelta(seconds=1), **settings))  # type: ignore[arg-type]
    return account


def test_an_idle_conversation_is_closed_within_two_seconds_of_its_deadline(
    service: Service,
) -> None:
    account = setup_account(service, close_after="PT2S")
    since = service.stream_position()
    opened_at = now()
    service.publish(
        conversation_event("conversation.opened", account, "conv-1", opened_at, agent_id="a1")
    )

    [closed] = service.decisions(since, account, count=1, timeout=10)

    deadline = opened_at + timedelta(seconds=2)
    assert closed["type"] == "conversation.auto_closed"
    assert closed["conversation_id"] == "conv-1"
    assert closed["inactivity_close_after"] == "PT2S"
    closed_at = datetime.fromisoformat(closed["closed_at"])
    assert deadline <= closed_at <= deadline + timedelta(seconds=2)
    assert closed["_received"] - deadline.timestamp() <= 2.5


def test_activity_postpones_the_close(service: Service) -> None:
    account = setup_account(service, close_after="PT2S")
    since = service.stream_position()
    opened_at = now()
    service.publish(conversation_event("conversation.opened", account, "conv-1", opened_at))
    time.sleep(1.2)
    last_message_at = now()
    service.publish(
        conversation_event(
            "conversation.message", account, "conv-1", last_message_at, sender="contact"
        )
    )

    [closed] = service.decisions(since, account, count=1, timeout=10)

    assert datetime.fromisoformat(closed["last_activity_at"]) == last_message_at
    assert datetime.fromisoformat(closed["closed_at"]) >= last_message_at + timedelta(seconds=2)


def test_a_conversation_on_never_is_never_closed(service: Service) -> None:
    account = setup_account(service, close_after=None)
    since = service.stream_position()
    service.publish(conversation_event("conversation.opened", account, "conv-1", now()))
    service.publish(
        event("contact.inbound", account, now(), contact_id="contact-1", line_id="line-1")
    )

    decisions = service.decisions(since, account, count=2, timeout=4)

    assert [d["type"] for d in decisions] == ["contact.routed"]


def test_a_returning_contact_goes_back_to_the_agent_who_closed_with_a_reason(
    service: Service,
) -> None:
    account = setup_account(service, window="PT1H")
    since = service.stream_position()
    t = now()
    service.publish(
        [
            conversation_event("conversation.opened", account, "c1", t, agent_id="ana"),
            conversation_event(
                "conversation.closed",
                account,
                "c1",
                t + timedelta(milliseconds=10),
                closed_by="agent",
                agent_id="ana",
                close_reason="resolved",
            ),
        ]
    )
    # Routing sees what was applied before it: let the close land (separate messages may be
    # taken by different worker processes at once; docs/events.md, "Ordering").
    time.sleep(0.5)
    inbound = event(
        "contact.inbound",
        account,
        t + timedelta(milliseconds=20),
        contact_id="contact-1",
        line_id="line-1",
    )
    service.publish(inbound)

    [routed] = service.decisions(since, account, count=1, timeout=10)

    assert routed["route"] == "previous_agent"
    assert routed["agent_id"] == "ana"
    assert routed["inbound_event_id"] == inbound["event_id"]


def test_after_the_window_a_returning_contact_is_new_and_goes_to_the_line_owner(
    service: Service,
) -> None:
    account = setup_account(service, window="PT1S")
    since = service.stream_position()
    t = now()
    service.publish(
        [
            event("line.updated", account, t, line_id="line-1", group_id="sales"),
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
    time.sleep(1.2)
    service.publish(
        event("contact.inbound", account, now(), contact_id="contact-1", line_id="line-1")
    )

    [routed] = service.decisions(since, account, count=1, timeout=10)

    assert routed["route"] == "line_owner"
    assert routed["group_id"] == "sales"


def test_each_route_of_a_new_contact(service: Service) -> None:
    with_bot = setup_account(service, bot=True)
    owned = setup_account(service)
    unowned = setup_account(service)
    since = service.stream_position()
    t = now()
    service.publish(event("line.updated", owned, t, line_id="line-1", agent_id="olga"))
    time.sleep(0.3)
    service.publish(
        [
            event("contact.inbound", account, t, contact_id="new", line_id="line-1")
            for account in (with_bot, owned, unowned)
        ]
    )

    routes = {}
    for account in (with_bot, owned, unowned):
        [routed] = service.decisions(since, account, count=1, timeout=10)
        routes[account] = (routed["route"], routed["agent_id"])

    assert routes == {
        with_bot: ("bot", None),
        owned: ("line_owner", "olga"),
        unowned: ("unassigned", None),
    }


def test_an_open_conversation_keeps_the_contact_and_counts_as_activity(service: Service) -> None:
    account = setup_account(service, close_after="PT2S", window="PT1H")
    since = service.stream_position()
    t = now()
    service.publish(conversation_event("conversation.opened", account, "c1", t, agent_id="ana"))
    time.sleep(1)
    wrote_at = now()
    service.publish(
        event("contact.inbound", account, wrote_at, contact_id="contact-1", line_id="line-1")
    )

    routed, closed = service.decisions(since, account, count=2, timeout=10)

    assert (routed["route"], routed["conversation_id"], routed["agent_id"]) == (
        "open_conversation",
        "c1",
        "ana",
    )
    assert datetime.fromisoformat(closed["last_activity_at"]) == wrote_at


def test_duplicates_and_out_of_order_events_change_nothing(service: Service) -> None:
    account = setup_account(service, close_after="PT1S", window="PT1H")
    since = service.stream_position()
    t = now()
    history = [
        conversation_event("conversation.opened", account, "c1", t, agent_id="ana"),
        conversation_event(
            "conversation.message", account, "c1", t + timedelta(milliseconds=5), sender="contact"
        ),
        conversation_event(
            "conversation.closed",
            account,
            "c1",
            t + timedelta(milliseconds=10),
            closed_by="agent",
            agent_id="ana",
            close_reason="done",
        ),
    ]
    inbound = event(
        "contact.inbound",
        account,
        t + timedelta(milliseconds=20),
        contact_id="contact-1",
        line_id="line-1",
    )
    service.publish(list(reversed(history)))
    service.publish([*history, inbound])
    service.publish([inbound, inbound])

    decisions = service.decisions(since, account, count=2, timeout=4)

    # The agent's close stands (it is the newest open/close), so nothing auto-closes, and the
    # inbound contact is routed once, back to the agent.
    assert [(d["type"], d.get("route")) for d in decisions] == [
        ("contact.routed", "previous_agent")
    ]


def test_a_deactivated_agent_does_not_get_the_contact_back(service: Service) -> None:
    account = setup_account(service, window="P1D", bot=True)
    since = service.stream_position()
    t = now()
    service.publish(
        [
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
            event("agent.updated", account, t, agent_id="ana", active=False),
        ]
    )
    time.sleep(0.3)
    service.publish(
        event("contact.inbound", account, now(), contact_id="contact-1", line_id="line-1")
    )

    [routed] = service.decisions(since, account, count=1, timeout=10)

    assert routed["route"] == "bot"
    assert "no longer active" in routed["reason"]


def test_bad_events_are_dead_lettered_and_the_rest_of_the_batch_is_applied(
    service: Service,
) -> None:
    account = setup_account(service, bot=True)
    marker = new_id("poison")
    since_letters = service.stream_position("convlife:dead-letters")
    since = service.stream_position()
    good = event("contact.inbound", account, now(), contact_id="k", line_id="line-1")
    service.publish(
        [
            f"not json {marker}",
            {"type": "conversation.exploded", "marker": marker},
            {**event("contact.inbound", account, now(), line_id="line-1"), "marker": marker},
            good,
        ]
    )

    letters = service.dead_letters(since_letters, marker, count=3, timeout=10)
    [routed] = service.decisions(since, account, count=1, timeout=10)

    assert sorted(letter["error"].split(":")[0] for letter in letters) == [
        "contact_id",
        "not JSON",
        "type",
    ]
    assert routed["inbound_event_id"] == good["event_id"]
