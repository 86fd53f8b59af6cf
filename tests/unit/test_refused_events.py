"""A refused event becomes an InvalidEvent with a reason code, the account it names, and fields
bounded whatever the input: one dead letter is never larger than MAX_DEAD_LETTER_BYTES."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import parsing
from events.models import EVENT_TYPES
from events.parsing import (
    MAX_DEAD_LETTER_BYTES,
    MAX_ECHO,
    REASON_CODES,
    InvalidEvent,
    account_named_in,
    parse_event,
    printable,
    printable_json,
    refuse,
)
from tests.support import conversation_event, event, utc

T = utc("2026-03-01T10:00:00")
MB = 1024 * 1024


def refused(payload: object, **kwargs: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(payload, **kwargs)
    return caught.value


def inbound(**fields: Any) -> dict[str, Any]:
    return {**event("contact.inbound", "acme", T, contact_id="k", line_id="l"), **fields}


def stored_bytes(error: InvalidEvent) -> int:
    """What a dead letter of this error stores, all its fields together, in UTF-8 bytes."""
    fields = [error.raw, error.reason, error.code, error.account_id or "", error.event_id or ""]
    return sum(len(field.encode("utf-8")) for field in fields)


HOSTILE: dict[str, object] = {
    "50-KB-unknown-type": inbound(type="x" * 50_000),
    "1-MB-unknown-type-as-text": json.dumps(inbound(type="t" * MB)),
    "multi-byte-unknown-type": inbound(type="🙂" * 15_000),
    "unknown-type-with-newlines-and-ansi": inbound(type="\n\x1b[31mFORGED\u2028" * 5_000),
    "huge-field-values": inbound(contact_id="é" * 15_000, line_id="🙂" * 8_000),
    "many-invalid-fields": {
        **inbound(),
        **{f"x{n}": n for n in range(300)},
        "contact_id": ["🙂" * 900],
        "line_id": {"k": "é" * 900},
        "event_id": "e" * 900,
        "account_id": "🙂" * 900,
        "occurred_at": "\U0010ffff" * 900,
    },
    "every-field-of-every-type-wrong": {
        "type": "conversation.closed",
        **dict.fromkeys(("event_id", "account_id", "conversation_id"), "🙂" * 2000),
        **dict.fromkeys(("contact_id", "line_id", "agent_id", "close_reason"), "é" * 2000),
        "occurred_at": "🙂" * 2000,
        "closed_by": "🙂" * 2000,
    },
    "multi-byte-not-json": "🙂" * 15_000 + "{",
    "lone-surrogates-and-nul": "\ud800\x00" * 15_000,
    "huge-account-id": inbound(account_id="🙂" * 50_000),
    "huge-event-id-and-missing-field": {
        k: v for k, v in inbound(event_id="\x00" * 20_000).items() if k != "line_id"
    },
}


@pytest.mark.parametrize("payload", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_dead_letter_holds_at_most_16_kib_whatever_the_input(payload: object) -> None:
    error = refused(payload, max_bytes=10 * MB)
    assert stored_bytes(error) <= MAX_DEAD_LETTER_BYTES
    assert "\n" not in error.reason
    assert "\x1b" not in error.reason


def test_an_unknown_type_is_echoed_cut_to_100_characters_on_one_line() -> None:
    error = refused(inbound(type="\x1b[2J" + "x" * 50_000))
    assert error.code == "unknown_type"
    assert error.reason.startswith("type: '\\x1b[2J" + "x" * (MAX_ECHO - 4) + "…' is not one of")
    assert len(error.reason) < 400
    assert all(type_ in error.reason for type_ in EVENT_TYPES)


def test_many_invalid_fields_are_listed_up_to_ten_and_counted() -> None:
    payload = {"type": "conversation.closed", **dict.fromkeys(("contact_id", "line_id"), 5)}
    payload |= {f: [] for f in ("event_id", "account_id", "conversation_id", "agent_id")}
    payload |= {"occurred_at": 1.5, "closed_by": 3, "close_reason": 7, "bot": 1}
    error = refused(payload)
    assert error.code == "invalid_field"
    assert error.reason.count(";") <= 10


CODES: dict[str, tuple[object, str]] = {
    "not-json": ('{"type": ', "not_json"),
    "json-nested-too-deeply": ("[" * 100_000, "not_json"),
    "not-an-object": ("[1, 2]", "not_an_object"),
    "a-bare-string": ('"hello"', "not_an_object"),
    "too-large": ("x" * MB, "too_large"),
    "unknown-type": (inbound(type="contact.waved"), "unknown_type"),
    "no-type": ({k: v for k, v in inbound().items() if k != "type"}, "unknown_type"),
    "type-not-a-string": (inbound(type=5), "unknown_type"),
    "missing-field": ({k: v for k, v in inbound().items() if k != "line_id"}, "invalid_field"),
    "mistyped-field": (inbound(line_id=5), "invalid_field"),
    "rule-broken": (
        conversation_event("conversation.transferred", "acme", "c1", T),
        "invalid_field",
    ),
}


@pytest.mark.parametrize(("payload", "code"), CODES.values(), ids=CODES.keys())
def test_every_refusal_carries_its_reason_code(payload: object, code: str) -> None:
    assert refused(payload, max_bytes=10 * MB if code == "not_json" else 65536).code == code


def test_the_reason_codes_are_the_documented_set() -> None:
    assert set(REASON_CODES) == {
        "not_json",
        "not_an_object",
        "too_large",
        "unknown_type",
        "invalid_field",
        "future",
        "poison",
        "too_many_events",
        "quarantined",
    }


ACCOUNTS: dict[str, tuple[object, str | None]] = {
    "missing-field": ({k: v for k, v in inbound().items() if k != "line_id"}, "acme"),
    "unknown-type": (inbound(type="nope"), "acme"),
    "not-json-text": ('{"account_id": "acme", "type": "contact.inbound", ', "acme"),
    "not-json-bytes": (b'{"account_id" : "acme", oops', "acme"),
    "too-large-text": (json.dumps(inbound(pad="x" * 70_000)), "acme"),
    "too-large-dict": (inbound(pad="x" * 70_000), "acme"),
    "account-after-a-huge-field": ('{"pad": "' + "x" * 70_000 + '", "account_id": "acme"', "acme"),
    "escaped-account": ('{"account_id": "a\\"cme", ', 'a"cme'),
    "account-named-only-inside-a-string": ('{"note": "\\"account_id\\": \\"victim\\"", ', None),
    "account-not-a-string": (inbound(account_id=7), None),
    "no-account": ('{"type": "contact.inbound"', None),
}


@pytest.mark.parametrize(("payload", "account"), ACCOUNTS.values(), ids=ACCOUNTS.keys())
def test_a_refused_event_names_the_account_its_payload_names(
    payload: object, account: str | None
) -> None:
    assert refused(payload).account_id == account


def test_the_account_of_a_refused_event_is_cut_to_200_characters() -> None:
    assert refused(inbound(account_id="a" * 5000, line_id=None)).account_id == "a" * 200
    assert account_named_in('{"account_id": "' + "a" * 300 + '"') == "a" * 300


@pytest.mark.parametrize("form", ["dict", "text"])
def test_an_event_refused_after_parsing_keeps_its_event_and_account_ids(form: str) -> None:
    payload = inbound(event_id="ev-7")
    error = refuse(payload if form == "dict" else json.dumps(payload), "boom", "poison")
    assert (error.code, error.event_id, error.account_id) == ("poison", "ev-7", "acme")


@pytest.mark.parametrize("field", ["bot", "bot_enabled", "active"])
@pytest.mark.parametrize("value", ["yes", "true", "True", "on", 1, 0, "false", "1", 1.0, None])
def test_a_boolean_field_takes_only_json_true_or_false(field: str, value: object) -> None:
    payload = {
        "bot": conversation_event("conversation.opened", "acme", "c1", T, bot=value),
        "bot_enabled": event("account.settings_updated", "acme", T, bot_enabled=value),
        "active": event("agent.updated", "acme", T, agent_id="ana", active=value),
    }[field]
    if value is None and field in ("bot_enabled", "active"):
        # null keeps the current value, as leaving the field out does
        assert getattr(parse_event(payload), field) is None
        return
    error = refused(payload)
    assert error.code == "invalid_field"
    assert error.reason.startswith(f"{field}: Input should be a valid boolean")


@pytest.mark.parametrize("field", ["bot", "bot_enabled", "active"])
@pytest.mark.parametrize("value", [True, False])
def test_json_true_and_false_are_booleans(field: str, value: bool) -> None:
    payload = {
        "bot": conversation_event("conversation.opened", "acme", "c1", T, bot=value),
        "bot_enabled": event("account.settings_updated", "acme", T, bot_enabled=value),
        "active": event("agent.updated", "acme", T, agent_id="ana", active=value),
    }[field]
    assert getattr(parse_event(json.dumps(payload)), field) is value


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\nb", "a\\x0ab"),
        ("a\r\nb", "a\\x0d\\x0ab"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("\x00\x7f\x9b", "\\x00\\x7f\\x9b"),
        ("line\u2028sep\u2029", "line\\u2028sep\\u2029"),
        ("\u202eevil", "\\u202eevil"),
        ("plain é 🙂 \\n", "plain é 🙂 \\n"),
    ],
)
def test_printable_writes_control_characters_as_visible_escapes(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_printable_json_is_the_same_json_value_without_raw_control_characters() -> None:
    value = {"id": "a\x7f\x85\x9b\u2028\u2029\u202e\n\x1b é"}
    text = printable_json(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == value
    assert not any(0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029\u202e\n\x1b" for c in text)
    assert "é" in text


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_text_without_a_control_character_is_left_as_it_is_and_any_other_escaped(
    text: str,
) -> None:
    # printable's fast path (`str.isprintable`) must agree with escaping every character.
    assert printable(text) == text.translate(parsing._CONTROL)
    assert printable_json(text) == text.translate(parsing._JSON_CONTROL)
