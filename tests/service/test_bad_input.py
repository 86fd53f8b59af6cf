"""Bad input goes to the dead letters, one row per bad event with the error, and the valid
events of the same batch are applied all the same.

Each test runs on SQLite and PostgreSQL; every `now` is chosen, nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from policies.state import Status
from tests.service.builders import T0, account_with, inbound, minutes, opened, routed, µs
from tests.support import Service, conversation_event, event, new_id

Bad = Callable[[str, str], Any]
"""(account, marker) -> a bad payload that carries the marker somewhere in its raw text."""


def without(payload: dict, field: str) -> dict:
    return {key: value for key, value in payload.items() if key != field}


BAD: dict[str, tuple[Bad, str]] = {
    "not-json": (lambda a, m: f'{{"type": "contact.inbound", "marker": "{m}"', "not JSON: "),
    "not-an-object": (lambda a, m: [m, 1], "an event is a JSON object, got list"),
    "unknown-type": (
        lambda a, m: {**inbound(a, T0), "type": "contact.waved", "marker": m},
        "type: ",
    ),
    "missing-field": (
        lambda a, m: {**without(inbound(a, T0), "contact_id"), "marker": m},
        "contact_id: Field required",
    ),
    "mistyped-field": (
        lambda a, m: {**event("agent.updated", a, T0, agent_id="ana", active="maybe"), "m": m},
        "active: ",
    ),
    "naive-occurred_at": (
        lambda a, m: {**inbound(a, T0), "occurred_at": "2026-03-01T10:00:00", "marker": m},
        "occurred_at: ",
    ),
    "year-1-at-an-odd-offset": (
        lambda a, m: {
            **conversation_event("conversation.message", a, "c1", T0, sender="contact"),
            "occurred_at": "0001-01-01T00:00:00+00:01",
            "marker": m,
        },
        "occurred_at: Value error, a time must be from 2000-01-01T00:00:00Z",
    ),
    "closed-in-year-9999": (
        lambda a, m: {
            **conversation_event("conversation.closed", a, "c1", T0, closed_by="system"),
            "occurred_at": "9999-12-31T23:59:59-23:59",
            "marker": m,
        },
        "occurred_at: Value error, a time must be from 2000-01-01T00:00:00Z",
    ),
    "unix-seconds": (
        lambda a, m: {**inbound(a, T0), "occurred_at": 1772359200, "marker": m},
        "occurred_at: Value error, a time is RFC 3339 text with an offset",
    ),
    "empty-id": (lambda a, m: {**inbound(a, T0), "line_id": "  ", "marker": m}, "line_id: "),
    "transfer-to-nobody": (
        lambda a, m: {**conversation_event("conversation.transferred", a, "c1", T0), "m": m},
        "event: Value error, a transfer names exactly one",
    ),
    "negative-setting": (
        lambda a, m: {
            **event("account.settings_updated", a, T0, inactivity_close_after=-5),
            "marker": m,
        },
        "inactivity_close_after: Value error, -5 is not a valid duration",
    ),
    "oversized": (
        lambda a, m: {**inbound(a, T0), "marker": m, "pad": "x" * 70_000},
        "payload larger than 65536 bytes",
    ),
    "from-the-future": (
        lambda a, m: {**inbound(a, T0 + minutes(5) + µs), "marker": m},
        "occurred_at 2026-03-01T10:05:00.000001+00:00 is more than 0:05:00 ahead",
    ),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_event_is_dead_lettered_with_its_error_and_the_rest_of_the_batch_applies(
    service: Service, kind: str
) -> None:
    account = account_with(service, bot=True)
    marker = new_id("bad")
    build, error = BAD[kind]
    good = inbound(account, T0)

    result = service.ingest([opened(account, "before"), build(account, marker), good], T0)

    assert (result.applied, result.dead_lettered) == (2, 1)
    [letter] = service.dead_letters(marker)
    assert letter.error.startswith(error), letter.error
    assert letter.received_at == T0
    assert routed(service, account)["inbound_event_id"] == good["event_id"]
    assert service.conversation(account, "before")[0].last_activity_at == T0


def test_a_dead_letter_keeps_the_account_and_event_id_it_could_read(service: Service) -> None:
    account = account_with(service)
    bad = {**without(inbound(account, T0), "line_id"), "marker": new_id("bad")}
    service.ingest([bad], T0)
    [letter] = service.dead_letters(bad["marker"])
    assert (letter.account_id, letter.event_id) == (account, bad["event_id"])


def test_a_dead_letter_keeps_at_most_8_kib_of_the_raw_payload(service: Service) -> None:
    marker = new_id("bad")
    service.ingest([f"{marker} " + "y" * 100_000], T0)
    [letter] = service.dead_letters(marker)
    assert letter.raw.startswith(marker)
    assert len(letter.raw) <= 8 * 1024 + len("…[cut]")


def test_an_event_exactly_at_the_clock_skew_limit_is_accepted(service: Service) -> None:
    account = account_with(service, bot=True)
    at_the_limit = T0 + service.runtime.settings.max_clock_skew
    result = service.ingest(inbound(account, at_the_limit), T0)
    assert (result.applied, result.dead_lettered) == (1, 0)


def test_events_from_long_ago_are_accepted(service: Service) -> None:
    account = account_with(service, bot=True)
    result = service.ingest(inbound(account, T0 - timedelta(days=400)), T0)
    assert (result.applied, result.dead_lettered) == (1, 0)


def test_a_batch_as_json_text_is_split_into_its_events(service: Service) -> None:
    account = account_with(service, bot=True)
    marker = new_id("bad")
    batch = [inbound(account, T0), {"type": "nope", "marker": marker}]
    result = service.ingest(json.dumps(batch), T0)
    assert (result.applied, result.dead_lettered) == (1, 1)


def test_a_bad_event_changes_no_state(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    bad = {**conversation_event("conversation.closed", account, "c1", T0 + minutes(1))}
    result = service.ingest(bad, T0 + minutes(1))  # closed_by is missing
    assert result.dead_lettered == 1
    state, due = service.conversation(account, "c1")
    assert (state.status, due) == (Status.OPEN, T0 + minutes(30))


def test_bad_events_are_dead_lettered_and_the_rest_of_the_batch_is_applied(
    service: Service,
) -> None:
    account = account_with(service, bot=True)
    marker = new_id("bad")
    result = service.ingest(
        [
            f"not json {marker}",
            {"type": "conversation.exploded", "marker": marker},
            {**inbound(account, T0), "contact_id": None, "marker": marker},
            {**inbound(account, T0), "marker": marker, "pad": "x" * 70_000},
            {**inbound(account, T0 + timedelta(hours=1)), "marker": marker},
            inbound(account, T0),
        ],
        T0,
    )

    assert (result.applied, result.dead_lettered) == (1, 5)
    errors = sorted(row.error.split(":")[0].split(" ")[0] for row in service.dead_letters(marker))
    assert errors == ["contact_id", "not", "occurred_at", "payload", "type"]
    assert routed(service, account)["route"] == "bot"


# --- input the database cannot store ---------------------------------------------------------


def test_an_event_id_too_long_is_dead_lettered_and_the_batch_applies(
    service: Service,
) -> None:
    account = account_with(service, bot=True)
    marker = new_id("bad")
    bad = {**inbound(account, T0), "event_id": "e" * 201, "marker": marker}

    result = service.ingest([bad, inbound(account, T0)], T0)

    assert (result.applied, result.dead_lettered) == (1, 1)
    [letter] = service.dead_letters(marker)
    assert letter.error.startswith("event_id: String should have at most 200 characters")


def test_a_nul_character_in_an_event_never_takes_its_batch_down(
    service: Service,
) -> None:
    account = account_with(service, bot=True)
    marker = new_id("bad")
    with_nul = {**opened(account, "c\x00"), "marker": marker}
    not_json_with_nul = f"not json {marker} \x00"

    good = inbound(account, T0)

    result = service.ingest([with_nul, not_json_with_nul, good], T0)

    # The event with NUL may be stored or refused; it must not take its batch down.
    assert result.applied + result.dead_lettered == 3
    assert [row.error for row in service.dead_letters(f"not json {marker}")] == [
        "not JSON: Expecting value: line 1 column 1 (char 0)"
    ]
    assert routed(service, account)["inbound_event_id"] == good["event_id"]


def test_a_lone_surrogate_in_an_event_is_dead_lettered_and_the_batch_applies(
    service: Service,
) -> None:
    account = account_with(service, bot=True)
    marker = new_id("bad")
    half_an_emoji = {**opened(account, "c1"), "agent_id": "ana\ud83d", "marker": marker}

    result = service.ingest([half_an_emoji, inbound(account, T0)], T0)

    assert (result.applied, result.dead_lettered) == (1, 1)
    [letter] = service.dead_letters(marker)
    assert letter.error.startswith("agent_id: ")
