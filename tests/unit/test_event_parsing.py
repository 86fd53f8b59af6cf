"""Raw input becomes an event, or an InvalidEvent that says what is wrong: never a crash."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import pytest
from pydantic import BaseModel, ValidationError

from events.decisions import AutoClosed, ContactRouted, Route, parse_decision
from events.durations import MAX_DURATION, forms
from events.models import (
    EARLIEST,
    EVENT_TYPES,
    LATEST,
    AccountSettingsUpdated,
    ContactInbound,
    Event,
)
from events.parsing import MAX_EVENT_BYTES, MAX_RAW_KEPT, InvalidEvent, parse_event
from tests.support import conversation_event, event, utc

T = utc("2026-03-01T10:00:00")

NOT_RFC3339 = (
    "occurred_at: Value error, a time is RFC 3339 text with an offset, such as "
    "2026-03-01T10:00:00Z or 2026-03-01T11:00:00+01:00 (no unix seconds, no naive times)"
)
OUT_OF_RANGE = (
    "occurred_at: Value error, a time must be from 2000-01-01T00:00:00Z up to (not including) "
    "9000-01-01T00:00:00Z"
)

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


# --- Every type, every field, every hostile shape ---------------------------------------------

MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model
    for model in get_args(get_args(Event)[0])
}


def test_every_event_type_has_a_model_and_a_valid_example() -> None:
    assert set(MODELS) == set(EVENT_TYPES) == set(VALID)


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_each_type_parses_into_its_own_frozen_model(type_: str) -> None:
    parsed = parse_event(json.dumps(VALID[type_]).encode())
    assert type(parsed) is MODELS[type_]
    assert parsed.event_id == VALID[type_]["event_id"]
    with pytest.raises(ValidationError):
        parsed.account_id = "another"  # type: ignore[misc]


@pytest.mark.parametrize("type_", EVENT_TYPES)
def test_unknown_extra_fields_change_nothing_in_any_type(type_: str) -> None:
    extra = {"upstream_v2": {"nested": [1, 2]}, "priority": 3, "tags": None}
    assert parse_event({**VALID[type_], **extra}) == parse_event(VALID[type_])


REQUIRED = [
    pytest.param(type_, name, id=f"{type_}-without-{name}")
    for type_, model in MODELS.items()
    for name, field in model.model_fields.items()
    if field.is_required()
]


@pytest.mark.parametrize(("type_", "field"), REQUIRED)
def test_every_required_field_left_out_is_named_in_the_reason(type_: str, field: str) -> None:
    payload = {k: v for k, v in VALID[type_].items() if k != field}
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    assert caught.value.reason.startswith(f"{field}:" if field != "type" else "type:")
    assert caught.value.event_id == (None if field == "event_id" else VALID[type_]["event_id"])


@pytest.mark.parametrize(
    ("type_", "change", "reason"),
    [
        (
            "conversation.opened",
            {"bot": "maybe"},
            "bot: Input should be a valid boolean",
        ),
        (
            "agent.updated",
            {"active": "nope"},
            "active: Input should be a valid boolean",
        ),
        (
            "account.settings_updated",
            {"bot_enabled": [1]},
            "bot_enabled: Input should be a valid boolean",
        ),
        (
            "conversation.closed",
            {"close_reason": "x" * 501},
            "close_reason: String should have at most 500 characters",
        ),
        (
            "contact.inbound",
            {"line_id": "l" * 201},
            "line_id: String should have at most 200 characters",
        ),
        (
            "contact.inbound",
            {"contact_id": "   "},
            "contact_id: String should have at least 1 character",
        ),
        (
            "conversation.closed",
            {"closed_by": "robot"},
            "closed_by: Input should be 'agent' or 'system'",
        ),
        ("line.updated", {"agent_id": 5}, "agent_id: Input should be a valid string"),
        ("contact.inbound", {"event_id": 7}, "event_id: Input should be a valid string"),
        (
            "contact.inbound",
            {"occurred_at": "2026-03-01T10:00:00"},
            NOT_RFC3339,
        ),
        (
            "conversation.note",
            {"occurred_at": "2026-03-01T10:00:00.000001"},
            NOT_RFC3339,
        ),
        (
            "conversation.message",
            {"sender": "agent", "agent_id": None},
            "event: Value error, a message with sender 'agent' needs agent_id",
        ),
    ],
    ids=[
        "bool-as-word",
        "active-as-word",
        "bool-as-list",
        "close-reason-too-long",
        "id-too-long",
        "blank-id",
        "bad-enum",
        "id-as-number",
        "event-id-as-number",
        "naive-datetime",
        "naive-datetime-with-µs",
        "agent-message-without-agent",
    ],
)
def test_a_mistyped_field_is_refused_with_a_reason_that_names_it(
    type_: str, change: dict[str, Any], reason: str
) -> None:
    assert reason_of({**VALID[type_], **change}) == reason


@pytest.mark.parametrize(
    "occurred_at",
    ["2026-03-01T10:00:00Z", "2026-03-01T11:00:00+01:00", "2026-03-01T07:00:00-03:00"],
)
def test_any_offset_is_accepted_and_names_the_same_instant(occurred_at: str) -> None:
    assert parse_event({**VALID["contact.inbound"], "occurred_at": occurred_at}).occurred_at == T


@pytest.mark.parametrize("type_", EVENT_TYPES)
@pytest.mark.parametrize(
    ("occurred_at", "reason"),
    [
        (1772359200, NOT_RFC3339),  # unix seconds
        (1772359200.5, NOT_RFC3339),
        ("1772359200", NOT_RFC3339),
        (True, NOT_RFC3339),
        ("2026-03-01T10:00", NOT_RFC3339),  # no seconds
        ("2026-03-01T10:00:00+0100", NOT_RFC3339),  # offset without its colon
        ("2026-03-01", NOT_RFC3339),
        ("0001-01-01T00:00:00+00:01", OUT_OF_RANGE),  # year 0 in UTC: a BC date in PostgreSQL
        ("0001-01-01T00:00:00Z", OUT_OF_RANGE),
        ("1999-12-31T23:59:59.999999Z", OUT_OF_RANGE),
        ("2000-01-01T00:59:59+01:00", OUT_OF_RANGE),  # 1999 in UTC
        ("9000-01-01T00:00:00Z", OUT_OF_RANGE),
        ("8999-12-31T23:30:00-01:00", OUT_OF_RANGE),  # 9000 in UTC
        ("9999-12-31T23:59:59-23:59", OUT_OF_RANGE),  # past 9999 in UTC
    ],
)
def test_a_time_that_is_not_rfc3339_with_an_offset_or_outside_the_bounds_is_refused(
    type_: str, occurred_at: object, reason: str
) -> None:
    assert reason_of({**VALID[type_], "occurred_at": occurred_at}) == reason


@pytest.mark.parametrize(
    ("occurred_at", "instant"),
    [
        ("2000-01-01T00:00:00Z", utc("2000-01-01T00:00:00")),
        ("2000-01-01T01:00:00+01:00", utc("2000-01-01T00:00:00")),
        ("8999-12-31T23:59:59.999999Z", utc("8999-12-31T23:59:59.999999")),
        ("2026-03-01 10:00:00z", T),
        ("2026-03-01t10:00:00.000000001Z", T),  # nanoseconds: kept to the microsecond
        ("2026-03-02T09:59:00+23:59", T),
        ("2026-02-28T10:01:00-23:59", T),
    ],
)
def test_an_accepted_time_is_normalised_to_utc(occurred_at: str, instant: datetime) -> None:
    parsed = parse_event({**VALID["conversation.message"], "occurred_at": occurred_at})
    assert parsed.occurred_at == instant
    assert parsed.occurred_at.utcoffset() == timedelta(0)
    assert parsed.occurred_at.tzinfo is UTC


def test_the_longest_setting_added_to_the_latest_time_still_fits() -> None:
    assert LATEST - timedelta(microseconds=1) + MAX_DURATION < datetime.max.replace(tzinfo=UTC)
    assert datetime.min.replace(tzinfo=UTC) + timedelta(days=366) < EARLIEST


def test_ids_are_stripped_of_surrounding_whitespace() -> None:
    parsed = parse_event({**VALID["contact.inbound"], "contact_id": "  k  "})
    assert isinstance(parsed, ContactInbound)
    assert parsed.contact_id == "k"


def test_every_error_of_one_event_is_listed_on_one_line() -> None:
    payload = {
        k: v for k, v in VALID["contact.inbound"].items() if k not in {"line_id", "contact_id"}
    }
    assert reason_of(payload) == "contact_id: Field required; line_id: Field required"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT24H", timedelta(days=1)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT0.000001S", timedelta(microseconds=1)),
        (3600, timedelta(hours=1)),
        (1, timedelta(seconds=1)),
        (0.5, timedelta(milliseconds=500)),
        (None, None),
    ],
    ids=["P7D", "PT24H", "P1DT2H30M", "1µs", "3600s", "1s", "half-second", "null-is-never"],
)
@pytest.mark.parametrize("field", ["inactivity_close_after", "reassignment_window"])
def test_both_durations_accept_iso_8601_or_seconds_or_null(
    field: str, given: object, expected: timedelta | None
) -> None:
    parsed = parse_event({**VALID["account.settings_updated"], field: given})
    assert isinstance(parsed, AccountSettingsUpdated)
    assert getattr(parsed, field) == expected
    assert field in parsed.model_fields_set


@pytest.mark.parametrize(
    "given",
    [0, 0.0, -1, -3600, "PT0S", "P0D", "-PT1H", "-P7D"],
    ids=["0", "0.0", "-1", "-3600", "PT0S", "P0D", "-PT1H", "-P7D"],
)
@pytest.mark.parametrize("field", ["inactivity_close_after", "reassignment_window"])
def test_a_zero_or_negative_duration_is_refused_and_null_is_the_way_to_say_never(
    field: str, given: object
) -> None:
    assert reason_of({**VALID["account.settings_updated"], field: given}) == (
        f"{field}: Value error, {given!r} is not a valid duration: {forms(allow_never=True)}"
    )


@pytest.mark.parametrize(
    "given", ["tomorrow", "", "P", "P7X", "a fortnight", [7], {"days": 7}, True, "7 days", "3600"]
)
def test_a_duration_that_is_not_one_is_refused_naming_the_field(given: object) -> None:
    assert reason_of(
        {**VALID["account.settings_updated"], "reassignment_window": given}
    ).startswith("reassignment_window: ")


def test_a_duration_longer_than_a_hundred_years_is_refused_as_a_typo() -> None:
    settings = VALID["account.settings_updated"]
    assert isinstance(
        parse_event({**settings, "inactivity_close_after": "P36500D"}), AccountSettingsUpdated
    )
    assert reason_of({**settings, "inactivity_close_after": "P36501D"}) == (
        "inactivity_close_after: Value error, 'P36501D' is not a valid duration: "
        f"{forms(allow_never=True)}"
    )


@pytest.mark.parametrize("field", ["event_id", "account_id", "close_reason"])
def test_a_nul_character_in_a_string_is_refused_because_no_store_can_hold_it(field: str) -> None:
    closed = VALID["conversation.closed"]
    assert reason_of({**closed, field: "a\x00b"}) == (
        f"{field}: Value error, contains a NUL character (U+0000), which cannot be stored"
    )


def test_a_dead_letter_of_any_payload_is_storable_text() -> None:
    with pytest.raises(InvalidEvent) as refused:
        parse_event({"event_id": "e" * 300 + "\x00", "type": "nope", "x": "half \ud83d"})
    assert refused.value.event_id is not None
    assert len(refused.value.event_id) == 200
    refused.value.raw.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in refused.value.raw
    assert "\\u0000" in refused.value.raw


def _deep_list(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


MB = 1024 * 1024
HOSTILE = {
    "empty-string": "",
    "empty-bytes": b"",
    "whitespace": "  \n ",
    "half-an-object": '{"type": "contact.inbound"',
    "trailing-garbage": json.dumps(VALID["contact.inbound"]) + " x",
    "json-null": "null",
    "json-true": "true",
    "json-string": '"contact.inbound"',
    "json-number": "3.5",
    "json-list": "[]",
    "json-list-of-an-event": json.dumps([VALID["contact.inbound"]]),
    "python-none": None,
    "python-list": [VALID["contact.inbound"]],
    "python-float": 1.5,
    "python-object": object(),
    "not-utf-8-bytes": b'{"type": "\xff\xfe"}',
    "lone-surrogate": '{"type": "\ud800"}',
    "type-is-a-number": {**VALID["contact.inbound"], "type": 3},
    "type-is-null": {**VALID["contact.inbound"], "type": None},
    "1MB-string": "x" * MB,
    "1MB-bytes": b"x" * MB,
    "1MB-json-event": json.dumps({**VALID["contact.inbound"], "junk": "x" * MB}),
    "100000-[": "[" * 100_000,
    "100000-[-as-bytes": b"[" * 100_000,
    "deep-objects-in-an-event": json.dumps(VALID["contact.inbound"])[:-1]
    + ', "junk": '
    + '{"a":' * 5_000
    + "1"
    + "}" * 5_000
    + "}",
    "100000-deep-python-list": _deep_list(100_000),
    "100000-deep-python-value": {**VALID["contact.inbound"], "contact_id": _deep_list(100_000)},
    "only-non-string-keys": {("not", "a", "string"): 1, 2: "x"},
}


@pytest.mark.parametrize("payload", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_input_always_ends_as_an_invalid_event(payload: object) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    assert caught.value.reason
    assert "\n" not in caught.value.reason
    assert len(caught.value.raw) <= MAX_RAW_KEPT + len("…[cut]")


@pytest.mark.parametrize("payload", ["[" * 100_000, b"[" * 100_000], ids=["text", "bytes"])
def test_json_nested_too_deeply_is_refused_even_under_a_generous_size_limit(
    payload: str | bytes,
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload, max_bytes=10 * MB)
    assert caught.value.reason.startswith("not JSON: maximum recursion depth exceeded")


@pytest.mark.parametrize(
    "payload",
    ["x" * MB, b"x" * MB, {**VALID["contact.inbound"], "junk": "x" * MB}],
    ids=["text", "bytes", "dict"],
)
def test_a_payload_over_the_limit_is_refused_before_it_is_decoded(payload: object) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    assert caught.value.reason == f"payload larger than {MAX_EVENT_BYTES} bytes"
    assert caught.value.raw.endswith("…[cut]")


def test_the_size_limit_counts_utf8_bytes_and_the_limit_itself_is_allowed() -> None:
    text = json.dumps({**VALID["contact.inbound"], "note": "é" * 100}, ensure_ascii=False)
    size = len(text.encode())
    assert size == len(text) + 100
    assert parse_event(text, max_bytes=size).type == "contact.inbound"
    with pytest.raises(InvalidEvent, match="payload larger than"):
        parse_event(text, max_bytes=size - 1)


@pytest.mark.parametrize("extra", [-1, 0, 1])
@pytest.mark.parametrize("char", ["x", "é", "\n", "🙂"])
def test_a_dict_event_is_refused_exactly_when_its_json_is_over_the_limit(
    char: str, extra: int
) -> None:
    event = {**VALID["contact.inbound"], "note": char * 100}
    size = len(json.dumps(event, ensure_ascii=False).encode())
    limit = size + extra
    if size > limit:
        with pytest.raises(InvalidEvent, match="payload larger than"):
            parse_event(event, max_bytes=limit)
    else:
        assert parse_event(event, max_bytes=limit).type == "contact.inbound"


@pytest.mark.parametrize(
    ("length", "kept"),
    [
        (1, "x"),
        (MAX_RAW_KEPT - 1, "x" * (MAX_RAW_KEPT - 1)),
        (MAX_RAW_KEPT, "x" * MAX_RAW_KEPT),
        (MAX_RAW_KEPT + 1, "x" * MAX_RAW_KEPT + "…[cut]"),
        (MB, "x" * MAX_RAW_KEPT + "…[cut]"),
    ],
    ids=["tiny", "just-under", "exactly-the-limit", "one-over", "1MB"],
)
def test_the_raw_payload_kept_is_cut_to_max_raw_kept(length: int, kept: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event("x" * length, max_bytes=10 * MB)
    assert caught.value.raw == kept


def test_the_raw_payload_of_a_refused_dict_is_its_json() -> None:
    payload = {**VALID["contact.inbound"], "line_id": None}
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    assert json.loads(caught.value.raw) == payload


@pytest.mark.parametrize(
    ("payload", "event_id"),
    [
        ({**VALID["contact.inbound"], "event_id": "ev-9", "line_id": None}, "ev-9"),
        ({**VALID["contact.inbound"], "event_id": "ev-9", "type": "nope"}, "ev-9"),
        (json.dumps({**VALID["contact.inbound"], "event_id": "ev-9", "line_id": 1}), "ev-9"),
        ({**VALID["contact.inbound"], "event_id": 9, "line_id": None}, None),
        ({k: v for k, v in VALID["contact.inbound"].items() if k != "event_id"}, None),
        ('{"event_id": "ev-9", ', None),
        (["ev-9"], None),
    ],
    ids=[
        "missing-field",
        "unknown-type",
        "json-text",
        "event-id-not-a-string",
        "no-event-id",
        "not-json",
        "not-an-object",
    ],
)
def test_the_event_id_is_reported_when_the_payload_has_one(
    payload: object, event_id: str | None
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload)
    assert caught.value.event_id == event_id


def test_an_invalid_event_is_a_value_error_carrying_its_reason() -> None:
    error = InvalidEvent("line_id: Field required", "{}", "ev-1")
    assert isinstance(error, ValueError)
    assert (str(error), error.reason, error.raw, error.event_id) == (
        "line_id: Field required",
        "line_id: Field required",
        "{}",
        "ev-1",
    )


@pytest.mark.parametrize(
    "extra",
    [{("not", "a", "string"): 1}, {"junk": _deep_list(100_000)}],
    ids=["non-string-key", "100000-deep-value"],
)
def test_an_extra_field_python_cannot_even_print_is_ignored_like_any_other(
    extra: dict[Any, Any],
) -> None:
    assert parse_event({**VALID["contact.inbound"], **extra}) == parse_event(
        VALID["contact.inbound"]
    )
