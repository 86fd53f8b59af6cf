"""Raw input becomes an event, or an InvalidEvent that says what is wrong: never a crash."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from events.decisions import AutoClosed, ContactRouted, Route, parse_decision
from events.models import EVENT_TYPES, AccountSettingsUpdated
from events.parsing import MAX_RAW_KEPT, InvalidEvent, parse_event
from tests.support import conversation_event, event, utc

T = utc("2026-03-01T10:00:00")

VALID: dict[str, dict[str, Any]] = {
    "conversation.opened": conversation_event("conversation.opened", "a", "c", T, agent_id="x"),
    "conversation.message": conversation_event(
        "conversation.message", "a", "c", T, sender="agent", agent_id="x"
    ),
    "conversation.note": conversation_event("conversation.note", "a", "c", T),
    "conversation.transferred": conversation_event(
        "conversation.transferred", "a", "c", T, group_id="g"
    ),
    "conversation.closed": conversation_event(
        "conversation.closed", "a", "c", T, closed_by="agent", agent_id="x", close_reason=None
    ),
    "contact.inbound": event("contact.inbound", "a", T, contact_id="k", line_id="l"),
    "account.settings_updated": event(
        "account.settings_updated", "a", T, inactivity_close_after="P7D"
    ),
    "line.updated": event("line.updated", "a", T, line_id="l", group_id=None),
    "agent.updated": event("agent.updated", "a", T, agent_id="x", active=False),
}


def reason_of(payload: object) -> str:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    return caught.value.reason


@pytest.mark.parametrize("type_", EVENT_TYPES)
@pytest.mark.parametrize("form", ["dict", "json-text", "json-bytes"])
def test_every_event_type_parses_from_a_dict_or_json(type_: str, form: str) -> None:
    raw = VALID[type_]
    payload: object = {
        "dict": raw,
        "json-text": json.dumps(raw),
        "json-bytes": json.dumps(raw).encode(),
    }[form]
    parsed = parse_event(payload)
    assert parsed.type == type_
    assert parsed.occurred_at == T


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT24H", timedelta(hours=24)),
        (3600, timedelta(hours=1)),
        (None, None),
    ],
)
def test_durations_are_iso_8601_or_seconds_and_null_means_never(
    given: object, expected: timedelta | None
) -> None:
    parsed = parse_event({**VALID["account.settings_updated"], "inactivity_close_after": given})
    assert isinstance(parsed, AccountSettingsUpdated)
    assert parsed.inactivity_close_after == expected


def test_fields_left_out_of_a_settings_update_are_not_marked_as_given() -> None:
    parsed = parse_event(VALID["account.settings_updated"])
    assert isinstance(parsed, AccountSettingsUpdated)
    assert "reassignment_window" not in parsed.model_fields_set


@pytest.mark.parametrize("duration", [0, -5, "PT0S"])
def test_a_duration_must_be_positive(duration: object) -> None:
    payload = {**VALID["account.settings_updated"], "reassignment_window": duration}
    assert reason_of(payload).startswith("reassignment_window:")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"contact_id": None}, "contact_id"),
        ({"occurred_at": "2026-03-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"sender": "robot"}, "sender"),
        ({"event_id": ""}, "event_id"),
        ({"account_id": 42}, "account_id"),
    ],
    ids=["missing", "naive-datetime", "not-a-datetime", "bad-enum", "empty-id", "wrong-type"],
)
def test_a_missing_or_mistyped_field_is_named_in_the_reason(
    change: dict[str, Any], field: str
) -> None:
    payload = {**VALID["conversation.message"], **change}
    payload = {k: v for k, v in payload.items() if v is not None}
    assert reason_of(payload).startswith(f"{field}:")


@pytest.mark.parametrize(
    ("payload", "starts"),
    [
        ("not json at all", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        ("[1, 2]", "an event is a JSON object"),
        (42, "an event is a JSON object"),
        ({"type": "conversation.exploded"}, "type:"),
        ({"event_id": "x"}, "type:"),
        ("[" * 100_000 + "]" * 100_000, "payload larger"),
        ('{"a":' * 3000 + "1" + "}" * 3000, "not JSON"),
        ({**VALID["contact.inbound"], "junk": "x" * 1_000_000}, "payload larger"),
    ],
    ids=[
        "not-json",
        "wrong-encoding",
        "a-list",
        "a-number",
        "unknown-type",
        "no-type",
        "deep-and-large",
        "deep-nesting",
        "1MB-string",
    ],
)
def test_hostile_input_gives_a_clear_reason_and_never_another_exception(
    payload: object, starts: str
) -> None:
    assert reason_of(payload).startswith(starts)


def test_a_refused_payload_is_kept_cut_to_a_bounded_size() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event("x" * 100_000)
    assert len(caught.value.raw) <= MAX_RAW_KEPT + 10


def test_the_event_id_of_an_invalid_event_is_reported_when_present() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event({**VALID["contact.inbound"], "line_id": None})
    assert caught.value.event_id == VALID["contact.inbound"]["event_id"]


def test_unknown_extra_fields_are_ignored() -> None:
    assert parse_event({**VALID["contact.inbound"], "new_upstream_field": 1}).type == (
        "contact.inbound"
    )


@pytest.mark.parametrize(
    "payload",
    [
        {**VALID["conversation.transferred"], "agent_id": "x"},
        {**VALID["conversation.transferred"], "group_id": None},
        {**VALID["conversation.closed"], "agent_id": None},
        {**VALID["line.updated"], "agent_id": "x", "group_id": "g"},
    ],
    ids=["transfer-to-two", "transfer-to-none", "agent-close-without-agent", "two-owners"],
)
def test_contradictory_events_are_refused(payload: dict[str, Any]) -> None:
    reason_of(payload)


def test_decisions_round_trip_through_their_json() -> None:
    closed = AutoClosed(
        decision_id="d1",
        account_id="a",
        decided_at=T,
        reason="r",
        conversation_id="c",
        contact_id="k",
        line_id="l",
        last_activity_at=T,
        closed_at=T,
        inactivity_close_after=timedelta(days=3),
    )
    routed = ContactRouted(
        decision_id="d2",
        account_id="a",
        decided_at=T,
        reason="r",
        inbound_event_id="e",
        contact_id="k",
        line_id="l",
        route=Route.LINE_OWNER,
        group_id="g",
    )
    for decision in (closed, routed):
        assert parse_decision(decision.model_dump_json()) == decision
    assert json.loads(closed.model_dump_json())["inactivity_close_after"] == "P3D"
