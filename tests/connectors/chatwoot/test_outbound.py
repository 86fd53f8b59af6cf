"""convlife decisions become Chatwoot API calls shaped as Chatwoot's swagger documents them, and
their echoes come back as nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.chatwoot import (
    Action,
    ApiCall,
    Ignored,
    NoCall,
    NotAChatwootId,
    OutboundCall,
    OutboundOptions,
    Translated,
    api_calls_for,
    conversation_of_inbound,
    find_echo,
    translate_webhook,
)
from tests.connectors.chatwoot.support import events_of, fixture

DECIDED = "2026-03-02T10:00:01Z"


def auto_closed(**fields: Any) -> dict[str, Any]:
    return {
        "type": "conversation.auto_closed",
        "decision_id": "7d0c1f9e-7a52-5f0e-9d7e-0b6f2b1f4a11",
        "account_id": "1",
        "decided_at": DECIDED,
        "reason": "no activity for 1 day",
        "conversation_id": "42",
        "contact_id": "57",
        "line_id": "3",
        "last_activity_at": "2026-03-01T10:01:00Z",
        "closed_at": DECIDED,
        "inactivity_close_after": "P1D",
        **fields,
    }


def routed(route: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "contact.routed",
        "decision_id": "0f3a7c52-1f7e-5b0a-8d93-5c1e1b1a2d33",
        "account_id": "1",
        "decided_at": DECIDED,
        "reason": "words",
        "inbound_event_id": "cw:c42:m1301:inbound",
        "contact_id": "57",
        "line_id": "3",
        "route": route,
        **fields,
    }


def calls(decision: dict[str, Any], **options: Any) -> list[tuple[str, str, dict[str, Any]]]:
    result = api_calls_for(decision, OutboundOptions(**options))
    assert not isinstance(result, NoCall), result
    return [(call.method, call.path, dict(call.json)) for call in result]


BASE = "/api/v1/accounts/1/conversations/42"


def test_an_auto_close_resolves_the_conversation() -> None:
    assert calls(auto_closed()) == [("POST", f"{BASE}/toggle_status", {"status": "resolved"})]


def test_an_auto_close_may_first_leave_a_private_note_with_the_reason() -> None:
    assert calls(auto_closed(), private_note_on_auto_close=True) == [
        (
            "POST",
            f"{BASE}/messages",
            {
                "content": "convlife: no activity for 1 day",
                "message_type": "outgoing",
                "private": True,
            },
        ),
        ("POST", f"{BASE}/toggle_status", {"status": "resolved"}),
    ]


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (
            routed("previous_agent", agent_id="7"),
            ("POST", f"{BASE}/assignments", {"assignee_id": 7}),
        ),
        (routed("line_owner", agent_id="9"), ("POST", f"{BASE}/assignments", {"assignee_id": 9})),
        (routed("line_owner", group_id="4"), ("POST", f"{BASE}/assignments", {"team_id": 4})),
        (routed("bot"), ("POST", f"{BASE}/toggle_status", {"status": "pending"})),
    ],
    ids=["previous-agent", "line-owner-agent", "line-owner-team", "bot"],
)
def test_a_routing_becomes_one_call_on_the_inbounds_conversation(
    decision: dict[str, Any], expected: tuple[str, str, dict[str, Any]]
) -> None:
    assert calls(decision) == [expected]


@pytest.mark.parametrize(
    "decision",
    [routed("open_conversation", conversation_id="42", agent_id="7"), routed("unassigned")],
    ids=["open-conversation", "unassigned"],
)
def test_open_conversation_and_unassigned_call_nothing(decision: dict[str, Any]) -> None:
    assert isinstance(api_calls_for(decision), NoCall)


def test_a_close_warning_calls_nothing_in_chatwoot() -> None:
    warning = {
        **{
            k: v
            for k, v in auto_closed().items()
            if k not in ("closed_at", "inactivity_close_after")
        },
        "type": "conversation.close_warning",
        "closes_at": "2026-03-02T10:01:00Z",
    }
    result = api_calls_for(warning)
    assert isinstance(result, NoCall)
    assert "close_warning" in result.reason


def test_a_routing_that_names_the_conversation_the_message_started_acts_on_it() -> None:
    new_conversation = {"conversation_id": "43", "inbound_event_id": "cw:c43:m1400:inbound"}
    decision = routed("previous_agent", agent_id="7", **new_conversation)
    assert calls(decision) == [
        ("POST", "/api/v1/accounts/1/conversations/43/assignments", {"assignee_id": 7})
    ]


def test_a_routing_of_an_inbound_that_did_not_come_from_chatwoot_calls_nothing() -> None:
    result = api_calls_for(routed("previous_agent", agent_id="7", inbound_event_id="crm-881"))
    assert isinstance(result, NoCall)
    assert "did not come from Chatwoot" in result.reason


@pytest.mark.parametrize(
    ("inbound_event_id", "conversation"),
    [
        ("cw:c42:m1301:inbound", "42"),
        ("cw:c42:m1301:message", None),
        ("cw:cx:m1301:inbound", None),
        ("cw:c42:inbound", None),
        ("anything", None),
    ],
)
def test_the_conversation_of_an_inbound_is_read_back_from_its_id(
    inbound_event_id: str, conversation: str | None
) -> None:
    assert conversation_of_inbound(inbound_event_id) == conversation


def test_the_inbound_ids_the_translation_makes_name_their_conversation() -> None:
    for name in ("message_created_incoming", "conversation_status_changed_reopened"):
        [inbound] = [e for e in events_of(fixture(name)) if e["type"] == "contact.inbound"]
        assert conversation_of_inbound(inbound["event_id"]) == "42"


@pytest.mark.parametrize(
    "decision",
    [auto_closed(conversation_id="conv-42"), routed("previous_agent", agent_id="agent-7")],
    ids=["conversation", "agent"],
)
def test_ids_that_are_not_chatwoots_are_refused(decision: dict[str, Any]) -> None:
    with pytest.raises(NotAChatwootId):
        api_calls_for(decision)


def test_something_that_is_not_a_decision_is_refused() -> None:
    with pytest.raises(ValidationError):
        api_calls_for({"type": "conversation.opened"})


def test_call_ids_are_stable_and_distinct_per_call() -> None:
    first = api_calls_for(auto_closed(), OutboundOptions(private_note_on_auto_close=True))
    again = api_calls_for(auto_closed(), OutboundOptions(private_note_on_auto_close=True))
    assert isinstance(first, tuple)
    assert first == again
    assert len({call.call_id for call in first}) == 2


# -- echoes --------------------------------------------------------------------------------------

SENT = datetime(2026, 3, 1, 10, 5, 0, tzinfo=UTC)  # the resolved fixture is dated 10:05:00.250117


def sent(call: ApiCall | NoCall | tuple[ApiCall, ...], at: datetime = SENT) -> list[OutboundCall]:
    assert isinstance(call, tuple)
    return [c.sent(at) for c in call]


def test_the_resolve_convlife_asked_for_comes_back_as_nothing() -> None:
    record = sent(api_calls_for(auto_closed()))
    result = translate_webhook(fixture("conversation_status_changed_resolved"), recent_calls=record)
    assert isinstance(result, Ignored)
    assert "echo of convlife's own resolve call on conversation 42" in result.reason


def test_the_assignment_convlife_made_comes_back_as_nothing() -> None:
    record = sent(
        api_calls_for(routed("previous_agent", agent_id="9")), SENT - timedelta(minutes=3)
    )
    result = translate_webhook(fixture("conversation_updated_assignee"), recent_calls=record)
    assert isinstance(result, Ignored), result


def test_the_team_assignment_convlife_made_comes_back_as_nothing() -> None:
    record = sent(api_calls_for(routed("line_owner", group_id="4")), SENT - timedelta(minutes=2))
    assert isinstance(
        translate_webhook(fixture("conversation_updated_team"), recent_calls=record), Ignored
    )


def test_the_note_convlife_left_comes_back_as_nothing() -> None:
    note = fixture("message_created_private_note")
    note["content"] = "convlife: no activity for 1 day"
    record = sent(
        api_calls_for(auto_closed(), OutboundOptions(private_note_on_auto_close=True)),
        datetime(2026, 3, 1, 10, 2, 0, tzinfo=UTC),
    )
    assert isinstance(translate_webhook(note, recent_calls=record), Ignored)


def test_the_handover_to_the_bot_convlife_asked_for_comes_back_as_nothing() -> None:
    payload = fixture("conversation_status_changed_resolved")
    payload["status"] = "pending"
    payload["changed_attributes"] = [
        {"status": {"previous_value": "open", "current_value": "pending"}}
    ]
    record = sent(api_calls_for(routed("bot")))
    assert isinstance(translate_webhook(payload, recent_calls=record), Ignored)


def agents_resolve_after(delay: timedelta) -> Translated | Ignored:
    record = sent(api_calls_for(auto_closed()), SENT - delay)
    return translate_webhook(fixture("conversation_status_changed_resolved"), recent_calls=record)


@pytest.mark.parametrize(
    ("delay", "is_echo"),
    [
        (timedelta(seconds=0), True),
        (timedelta(seconds=119), True),
        (timedelta(seconds=121), False),
        (timedelta(seconds=-29), True),  # Chatwoot's clock a little behind ours
        (timedelta(seconds=-31), False),  # dated well before we asked: not ours
    ],
)
def test_an_echo_is_dated_within_the_window_after_the_call(delay: timedelta, is_echo: bool) -> None:
    assert isinstance(agents_resolve_after(delay), Ignored) is is_echo


def test_a_person_doing_something_else_on_the_same_conversation_is_no_echo() -> None:
    """convlife assigned agent 7; a person then assigned agent 9: that is a real transfer."""
    record = sent(api_calls_for(routed("previous_agent", agent_id="7")))
    result = translate_webhook(fixture("conversation_updated_assignee"), recent_calls=record)
    assert isinstance(result, Translated)


def test_a_call_on_another_conversation_or_account_is_no_echo() -> None:
    [call] = sent(api_calls_for(auto_closed()))
    others = [
        OutboundCall("1", "43", call.action, call.target, call.sent_at),
        OutboundCall("2", "42", call.action, call.target, call.sent_at),
    ]
    assert find_echo(fixture("conversation_status_changed_resolved"), "1", others) is None


def test_an_agents_own_note_is_no_echo_of_ours() -> None:
    record = sent(
        api_calls_for(auto_closed(), OutboundOptions(private_note_on_auto_close=True)),
        datetime(2026, 3, 1, 10, 2, 0, tzinfo=UTC),
    )
    note = fixture("message_created_private_note")  # written by agent 7, not by convlife
    assert isinstance(translate_webhook(note, recent_calls=record), Translated)


def test_the_recorded_call_says_what_was_asked() -> None:
    [call] = sent(api_calls_for(routed("previous_agent", agent_id="7")))
    assert call == OutboundCall("1", "42", Action.ASSIGN_AGENT, "7", SENT)
