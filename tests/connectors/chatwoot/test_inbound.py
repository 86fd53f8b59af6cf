"""Chatwoot webhooks become convlife events: every mapping rule of docs/integrations/chatwoot.md.

The payloads are fixtures shaped as Chatwoot's source builds them (fixtures/README.md names the
file each follows); every event produced is checked against the contract by parse_event.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from connectors.chatwoot import (
    CloseReasonRule,
    CloseReasonSource,
    PayloadError,
    TranslationRules,
    translate_webhook,
)
from tests.connectors.chatwoot.support import events_of, fixture, ignored


def shape(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["type"], e["event_id"]) for e in events]


# -- conversation_created ------------------------------------------------------------------------


def test_a_created_conversation_opens_with_chatwoots_display_id_inbox_and_contact() -> None:
    [opened] = events_of(fixture("conversation_created"), account_id="1")
    assert opened == {
        "type": "conversation.opened",
        "event_id": "cw:c42:created",
        "account_id": "1",
        "occurred_at": "2026-03-01T09:58:12Z",
        "conversation_id": "42",
        "contact_id": "57",
        "line_id": "3",
    }


def test_a_conversation_created_with_the_contacts_first_message_routes_the_contact_first() -> None:
    payload = fixture("conversation_created")
    payload["messages"] = fixture("message_created_incoming")["conversation"]["messages"]
    events = events_of(payload)  # the message's push data names the account
    assert shape(events) == [
        ("contact.inbound", "cw:c42:m1234:inbound"),
        ("conversation.opened", "cw:c42:created"),
    ]


def test_the_inbound_of_a_message_that_started_a_conversation_names_that_conversation() -> None:
    """So convlife counts conversation 42 as not yet open when the contact wrote, though
    Chatwoot dates its creation in whole seconds, before the message."""
    payload = fixture("conversation_created")
    payload["messages"] = fixture("message_created_incoming")["conversation"]["messages"]
    inbound, opened = events_of(payload)
    assert inbound["conversation_id"] == opened["conversation_id"] == "42"


@pytest.mark.parametrize(
    ("meta", "status", "expected"),
    [
        (
            {"assignee": {"id": 7, "type": "user"}, "assignee_type": "User"},
            "open",
            {"agent_id": "7"},
        ),
        ({"team": {"id": 4, "name": "billing"}}, "open", {"group_id": "4"}),
        ({}, "pending", {"bot": True}),
        (
            {"assignee": {"id": 2, "type": "agent_bot"}, "assignee_type": "AgentBot"},
            "open",
            {"bot": True},
        ),
        ({}, "open", {}),
    ],
    ids=["agent", "team", "pending-is-the-bot", "assigned-to-a-bot", "nobody"],
)
def test_the_opened_event_carries_the_assignee_chatwoot_gave(
    meta: dict[str, Any], status: str, expected: dict[str, Any]
) -> None:
    payload = fixture("conversation_created")
    payload["meta"].update(meta)
    payload["status"] = status
    [opened] = events_of(payload, account_id="1")
    assert {k: opened[k] for k in ("agent_id", "group_id", "bot") if k in opened} == expected


def test_a_conversation_created_resolved_for_a_blocked_contact_is_ignored() -> None:
    payload = fixture("conversation_created")
    payload["status"] = "resolved"
    assert "blocked contact" in ignored(payload, account_id="1")


def test_without_an_account_id_anywhere_the_payload_is_refused() -> None:
    with pytest.raises(PayloadError, match="account"):
        translate_webhook(fixture("conversation_created"))


def test_an_account_given_that_contradicts_the_payloads_is_refused() -> None:
    """A webhook of account 1 posted to account 2's URL must not act on account 2."""
    with pytest.raises(PayloadError, match="of account 1, not of account 2"):
        translate_webhook(fixture("message_created_incoming"), account_id="2")


# -- message_created -----------------------------------------------------------------------------


def test_an_incoming_message_is_a_contact_message_and_a_contact_inbound() -> None:
    inbound, message = events_of(fixture("message_created_incoming"))
    assert inbound == {
        "type": "contact.inbound",
        "event_id": "cw:c42:m1234:inbound",
        "account_id": "1",
        "occurred_at": "2026-03-01T10:00:00.118000Z",
        "contact_id": "57",
        "line_id": "3",
    }
    assert message["type"] == "conversation.message"
    assert message["sender"] == "contact"
    assert message["event_id"] == "cw:c42:m1234:message"
    assert (message["conversation_id"], message["contact_id"], message["line_id"]) == (
        "42",
        "57",
        "3",
    )


def test_the_contacts_message_and_its_inbound_are_dated_when_it_was_written() -> None:
    inbound, message = events_of(fixture("message_created_incoming"))
    assert inbound["occurred_at"] == message["occurred_at"] == "2026-03-01T10:00:00.118000Z"


def test_an_outgoing_message_by_a_user_is_an_agent_message() -> None:
    [message] = events_of(fixture("message_created_outgoing_agent"))
    assert (message["type"], message["sender"], message["agent_id"]) == (
        "conversation.message",
        "agent",
        "7",
    )
    assert message["occurred_at"] == "2026-03-01T10:01:00.487000Z"


def test_an_outgoing_message_by_an_agent_bot_is_a_bot_message() -> None:
    [message] = events_of(fixture("message_created_outgoing_bot"))
    assert (message["sender"], "agent_id" in message) == ("bot", False)


def test_an_outgoing_message_with_no_sender_is_a_bot_message() -> None:
    payload = fixture("message_created_outgoing_agent")
    payload["sender"] = None  # automation rules and campaigns send without a user
    [message] = events_of(payload)
    assert message["sender"] == "bot"


def test_a_private_message_is_a_note_by_its_author() -> None:
    [note] = events_of(fixture("message_created_private_note"))
    assert (note["type"], note["agent_id"], note["event_id"]) == (
        "conversation.note",
        "7",
        "cw:c42:m1237:note",
    )


@pytest.mark.parametrize("message_type", ["activity", "template", 2, 3])
def test_activity_and_template_messages_are_ignored(message_type: str | int) -> None:
    payload = fixture("message_created_activity")
    payload["message_type"] = message_type
    assert "message 1238 is an" in ignored(payload)


def test_a_message_time_in_another_zone_becomes_utc() -> None:
    payload = fixture("message_created_outgoing_agent")
    payload["created_at"] = "2026-03-01T07:01:00.487-03:00"
    [message] = events_of(payload)
    assert message["occurred_at"] == "2026-03-01T10:01:00.487000Z"


# -- conversation_updated ------------------------------------------------------------------------


def test_a_new_assignee_is_a_transfer_to_that_agent() -> None:
    [transferred] = events_of(fixture("conversation_updated_assignee"))
    assert transferred == {
        "type": "conversation.transferred",
        "event_id": "cw:c42:transferred:agent_id9:1772359320.731524",
        "account_id": "1",
        "occurred_at": "2026-03-01T10:02:00.731524Z",
        "conversation_id": "42",
        "contact_id": "57",
        "line_id": "3",
        "agent_id": "9",
    }


def test_a_team_change_that_leaves_no_agent_is_a_transfer_to_the_group() -> None:
    [transferred] = events_of(fixture("conversation_updated_team"))
    assert (transferred["group_id"], "agent_id" in transferred) == ("4", False)


def test_a_team_change_under_an_assigned_agent_is_no_transfer() -> None:
    payload = fixture("conversation_updated_team")
    payload["changed_attributes"] = [{"team_id": {"previous_value": None, "current_value": 4}}]
    payload["meta"]["assignee"] = {"id": 9, "type": "user"}
    payload["meta"]["assignee_type"] = "User"
    assert "stays its assignee" in ignored(payload)


def test_an_unassignment_is_ignored_since_a_transfer_names_a_target() -> None:
    payload = fixture("conversation_updated_assignee")
    payload["changed_attributes"] = [{"assignee_id": {"previous_value": 9, "current_value": None}}]
    payload["meta"]["assignee"] = None
    assert "unassigned" in ignored(payload)


@pytest.mark.parametrize(
    "changed",
    [
        [{"status": {"previous_value": "open", "current_value": "resolved"}}],
        [{"label_list": {"previous_value": [], "current_value": ["vip"]}}],
        None,
    ],
    ids=["status", "labels", "nothing"],
)
def test_conversation_updates_other_than_assignee_or_team_are_ignored(changed: Any) -> None:
    """A resolve sends both conversation_updated and conversation_status_changed: only the
    second counts, or the close would be doubled."""
    payload = fixture("conversation_updated_assignee")
    payload["changed_attributes"] = changed
    assert "no assignee or team change" in ignored(payload)


# -- conversation_status_changed -----------------------------------------------------------------


def test_a_resolve_is_a_close_by_the_assigned_agent_with_the_default_reason() -> None:
    [closed] = events_of(fixture("conversation_status_changed_resolved"))
    assert closed == {
        "type": "conversation.closed",
        "event_id": "cw:c42:status:resolved:1772359500.250117",
        "account_id": "1",
        "occurred_at": "2026-03-01T10:05:00.250117Z",
        "conversation_id": "42",
        "contact_id": "57",
        "line_id": "3",
        "closed_by": "agent",
        "agent_id": "7",
        "close_reason": "resolved",
    }


def test_a_resolve_of_an_unassigned_conversation_is_the_systems() -> None:
    """Chatwoot's own auto-resolve and automation rules resolve conversations nobody holds."""
    payload = fixture("conversation_status_changed_resolved")
    payload["meta"]["assignee"] = None
    payload["meta"]["assignee_type"] = None
    [closed] = events_of(payload)
    assert (closed["closed_by"], closed["close_reason"], "agent_id" in closed) == (
        "system",
        None,
        False,
    )


def test_a_resolve_carrying_a_system_label_is_the_systems_though_an_agent_is_assigned() -> None:
    payload = fixture("conversation_status_changed_resolved")
    payload["labels"] = ["refund", "auto-resolved"]
    rules = TranslationRules(system_resolve_labels=frozenset({"auto-resolved"}))
    [closed] = events_of(payload, rules=rules)
    assert closed["closed_by"] == "system"


@pytest.mark.parametrize(
    ("rule", "labels", "custom_attributes", "reason"),
    [
        (CloseReasonRule(), [], {}, "resolved"),
        (CloseReasonRule(resolved_reason="done"), [], {}, "done"),
        (CloseReasonRule(source=CloseReasonSource.LABEL), ["zeta", "refund"], {}, "refund"),
        (CloseReasonRule(source=CloseReasonSource.LABEL), [], {}, None),
        (
            CloseReasonRule(source=CloseReasonSource.LABEL, labels=frozenset({"solved"})),
            ["refund"],
            {},
            None,
        ),
        (
            CloseReasonRule(source=CloseReasonSource.LABEL, labels=frozenset({"solved"})),
            ["refund", "solved"],
            {},
            "solved",
        ),
        (
            CloseReasonRule(source=CloseReasonSource.CUSTOM_ATTRIBUTE, attribute="outcome"),
            [],
            {"outcome": " sale "},
            "sale",
        ),
        (
            CloseReasonRule(source=CloseReasonSource.CUSTOM_ATTRIBUTE, attribute="outcome"),
            [],
            {"outcome": ""},
            None,
        ),
        (
            CloseReasonRule(source=CloseReasonSource.CUSTOM_ATTRIBUTE, attribute="outcome"),
            [],
            {},
            None,
        ),
    ],
    ids=[
        "default-any-agent-resolve",
        "any-agent-resolve-own-text",
        "label-any",
        "label-none-present",
        "label-not-listed",
        "label-listed",
        "attribute-set",
        "attribute-empty",
        "attribute-missing",
    ],
)
def test_the_close_reason_follows_the_configured_rule(
    rule: CloseReasonRule,
    labels: list[str],
    custom_attributes: dict[str, Any],
    reason: str | None,
) -> None:
    payload = fixture("conversation_status_changed_resolved")
    payload["labels"] = labels
    payload["custom_attributes"] = custom_attributes
    [closed] = events_of(payload, rules=TranslationRules(close_reason=rule))
    assert (closed["closed_by"], closed["close_reason"]) == ("agent", reason)


def test_a_custom_attribute_rule_must_name_its_attribute() -> None:
    with pytest.raises(ValueError, match="names the attribute"):
        CloseReasonRule(source=CloseReasonSource.CUSTOM_ATTRIBUTE)


def test_a_reopen_by_the_contacts_message_routes_the_contact_then_reopens() -> None:
    inbound, opened = events_of(fixture("conversation_status_changed_reopened"))
    assert (inbound["type"], inbound["event_id"], inbound["occurred_at"]) == (
        "contact.inbound",
        "cw:c42:m1301:inbound",
        "2026-03-02T10:00:00Z",
    )
    assert (opened["type"], opened["agent_id"], opened["occurred_at"]) == (
        "conversation.opened",
        "7",
        "2026-03-02T10:00:00.912007Z",
    )
    assert datetime.fromisoformat(inbound["occurred_at"]) < datetime.fromisoformat(
        opened["occurred_at"]
    )


@pytest.mark.parametrize("status", ["open", "pending"])
def test_the_inbound_of_a_message_that_reopened_a_conversation_names_that_conversation(
    status: str,
) -> None:
    payload = fixture("conversation_status_changed_reopened")
    payload["status"] = status
    payload["changed_attributes"] = [
        {"status": {"previous_value": "resolved", "current_value": status}}
    ]
    inbound, _ = events_of(payload)
    assert inbound["conversation_id"] == "42"


def test_the_inbound_of_a_message_webhook_names_no_conversation_since_it_cannot_tell() -> None:
    """message_created shows the conversation after the message: new, reopened or continued
    look the same, and naming a continued conversation would route the contact out of it."""
    inbound, _ = events_of(fixture("message_created_incoming"))
    assert "conversation_id" not in inbound


def test_the_reopen_and_the_message_that_caused_it_give_one_inbound_not_two() -> None:
    """Both webhooks carry the same message id: convlife keeps the first inbound it gets."""
    from_status = events_of(fixture("conversation_status_changed_reopened"))[0]
    message = fixture("message_created_incoming")
    message["id"] = 1301
    message["conversation"] = fixture("conversation_status_changed_reopened")
    from_message = events_of(message)[0]
    assert from_status["event_id"] == from_message["event_id"]


def test_a_reopen_by_an_agent_is_opened_without_an_inbound() -> None:
    payload = fixture("conversation_status_changed_reopened")
    payload["messages"] = fixture("conversation_status_changed_resolved")["messages"]  # outgoing
    assert [e["type"] for e in events_of(payload)] == ["conversation.opened"]


def test_a_handover_to_the_bot_is_opened_by_the_bot() -> None:
    payload = fixture("conversation_status_changed_reopened")
    payload["status"] = "pending"
    payload["changed_attributes"] = [
        {"status": {"previous_value": "open", "current_value": "pending"}}
    ]
    payload["meta"]["assignee"] = None
    payload["meta"]["assignee_type"] = None
    [opened] = events_of(payload)
    assert opened["bot"] is True


@pytest.mark.parametrize(
    ("previous", "current"), [("open", "snoozed"), ("snoozed", "open")], ids=["snooze", "unsnooze"]
)
def test_snoozing_is_ignored_since_a_snoozed_conversation_is_open_for_convlife(
    previous: str, current: str
) -> None:
    payload = fixture("conversation_status_changed_reopened")
    payload["status"] = current
    payload["changed_attributes"] = [
        {"status": {"previous_value": previous, "current_value": current}}
    ]
    ignored(payload)


# -- idempotency ---------------------------------------------------------------------------------

ALL = [
    "conversation_created",
    "message_created_incoming",
    "message_created_outgoing_agent",
    "message_created_outgoing_bot",
    "message_created_private_note",
    "conversation_updated_assignee",
    "conversation_updated_team",
    "conversation_status_changed_resolved",
    "conversation_status_changed_reopened",
]


@pytest.mark.parametrize("name", ALL)
def test_translating_the_same_webhook_twice_gives_the_same_event_ids(name: str) -> None:
    """Chatwoot retries a delivery with the same body, and sends one change to each webhook
    with its own X-Chatwoot-Delivery: the ids never depend on the delivery."""
    first = events_of(fixture(name), account_id="1", delivery_id="d-1")
    again = events_of(fixture(name), account_id="1", delivery_id="d-2")
    assert first == again


def test_every_event_id_across_the_fixtures_is_distinct() -> None:
    ids = [e["event_id"] for name in ALL for e in events_of(fixture(name), account_id="1")]
    inbound_of_reopen = "cw:c42:m1301:inbound"
    assert len(ids) == len(set(ids)), ids
    assert inbound_of_reopen in ids


@pytest.mark.parametrize(
    ("status", "updated_at"),
    [("resolved", 1772359500.250118), ("open", 1772359500.250117), ("pending", 1772359500.250117)],
    ids=["a-microsecond-later", "another-status", "pending"],
)
def test_two_different_status_changes_get_different_ids(status: str, updated_at: float) -> None:
    base = events_of(fixture("conversation_status_changed_resolved"))[-1]["event_id"]
    payload = fixture("conversation_status_changed_resolved")
    payload["status"] = status
    payload["updated_at"] = updated_at
    payload["changed_attributes"] = [
        {"status": {"previous_value": "open", "current_value": status}}
    ]
    assert events_of(payload)[-1]["event_id"] != base


def test_the_delivery_id_is_handed_back_for_the_gateways_records() -> None:
    result = translate_webhook(fixture("message_created_incoming"), delivery_id="4f1c")
    assert result.delivery_id == "4f1c"


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "breaking"),
    [
        ("conversation_status_changed_resolved", {"updated_at": "yesterday"}),
        ("conversation_status_changed_resolved", {"meta": {"assignee": None}}),
        ("conversation_status_changed_resolved", {"id": None}),
        ("message_created_incoming", {"created_at": "2026-03-01T10:00:00"}),
        ("message_created_incoming", {"conversation": None}),
        ("conversation_updated_assignee", {"changed_attributes": {"assignee_id": [7, 9]}}),
    ],
    ids=[
        "updated_at-not-a-time",
        "no-contact",
        "no-conversation-id",
        "time-without-offset",
        "message-without-conversation",
        "changed-attributes-not-a-list",
    ],
)
def test_a_payload_missing_what_chatwoot_always_sends_is_a_clear_error(
    name: str, breaking: dict[str, Any]
) -> None:
    payload = fixture(name)
    payload.update(breaking)
    with pytest.raises(PayloadError):
        translate_webhook(payload)


@pytest.mark.parametrize(
    "event", ["contact_created", "contact_updated", "message_updated", "webwidget_triggered", None]
)
def test_webhooks_that_do_not_concern_the_lifecycle_are_ignored(event: str | None) -> None:
    assert "does not concern the lifecycle" in ignored({"event": event})
