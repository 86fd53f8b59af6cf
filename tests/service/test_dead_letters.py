"""A dead letter is bounded whatever arrives (row and stream entry at most 16 KiB), carries its
reason code and the account its payload names, on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from events.names import DEAD_LETTERS_STREAM, METRICS_DEAD_LETTERS_KEY
from events.parsing import MAX_DEAD_LETTER_BYTES, REASON_CODES
from service import counters
from store import outbox
from store.tables import dead_letters
from tests.service.builders import T0, account_with, inbound, minutes
from tests.support import Service, new_id


def size(value: object) -> int:
    return 0 if value is None else len(str(value).encode("utf-8"))


def rows_of(service: Service, account: str) -> list[Any]:
    with service.runtime.engine.connect() as connection:
        return list(
            connection.execute(
                select(dead_letters)
                .where(dead_letters.c.account_id == account)
                .order_by(dead_letters.c.id)
            ).all()
        )


def stream_entries(redis: Redis, account: str) -> list[dict[str, str]]:
    return [f for _, f in redis.xrange(DEAD_LETTERS_STREAM) if f.get("account_id") == account]


Hostile = Callable[[str], object]
"""account -> a hostile payload that names the account."""

HOSTILE: dict[str, tuple[Hostile, str]] = {
    "50-KB-unknown-type": (lambda a: {**inbound(a, T0), "type": "x" * 50_000}, "unknown_type"),
    "multi-byte-unknown-type": (
        lambda a: {**inbound(a, T0), "type": "🙂" * 15_000},
        "unknown_type",
    ),
    "newlines-and-escapes-in-the-type": (
        lambda a: {**inbound(a, T0), "type": "\n\x1b[31m\u2028" * 4000},
        "unknown_type",
    ),
    "huge-field-values": (
        lambda a: {**inbound(a, T0), "contact_id": "é" * 15_000, "line_id": "🙂" * 8000},
        "invalid_field",
    ),
    "many-invalid-fields": (
        lambda a: {
            "type": "conversation.closed",
            "account_id": a,
            **dict.fromkeys(("event_id", "conversation_id", "contact_id", "line_id"), "🙂" * 2000),
            **dict.fromkeys(("agent_id", "close_reason", "occurred_at", "closed_by"), "é" * 3000),
        },
        "invalid_field",
    ),
    "multi-byte-not-json": (
        lambda a: f'{{"account_id": "{a}", "type": "' + "🙂" * 15_000,  # 60 KB: under the limit
        "not_json",
    ),
    "not-json-with-nul-and-lone-surrogates": (
        lambda a: f'{{"account_id": "{a}", ' + "\ud800\x00é" * 3000,
        "not_json",
    ),
    "oversized-event": (
        lambda a: {**inbound(a, T0), "pad": "🙂" * 40_000},
        "too_large",
    ),
    "from-the-future-with-a-huge-extra-field": (
        lambda a: {**inbound(a, T0 + minutes(10)), "pad": "é" * 15_000},
        "future",
    ),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_a_dead_letter_row_and_its_stream_entry_stay_within_16_kib_whatever_arrives(
    service: Service, redis: Redis, kind: str
) -> None:
    account = new_id("acct")
    build, code = HOSTILE[kind]

    result = service.ingest([build(account), inbound(account, T0)], T0)
    outbox.relay(service.runtime.engine, service.runtime.redis, T0)

    assert (result.dead_lettered, result.dead_letter_reasons) == (1, [code])
    [row] = rows_of(service, account)
    assert row.reason == code
    assert sum(size(value) for value in row._mapping.values()) <= MAX_DEAD_LETTER_BYTES
    [entry] = stream_entries(redis, account)
    assert sum(size(k) + size(v) for k, v in entry.items()) <= MAX_DEAD_LETTER_BYTES
    assert (entry["account_id"], entry["reason"]) == (account, code)
    assert "\n" not in entry["error"]
    assert "\x1b" not in entry["error"]


def test_a_dead_letter_stored_directly_is_cut_to_its_bounds_too(service: Service) -> None:
    account = new_id("acct")
    with service.runtime.engine.begin() as connection:
        outbox.add_dead_letter(
            connection,
            raw="🙂" * 100_000,
            error="é\n" * 100_000,
            received_at=T0,
            account_id=account,
            event_id="\x00" * 1000,
            reason="poison",
        )
    [row] = rows_of(service, account)
    assert sum(size(value) for value in row._mapping.values()) <= MAX_DEAD_LETTER_BYTES
    assert "\n" not in row.error


def test_a_dead_letter_keeps_the_account_and_event_id_of_a_payload_that_is_not_json(
    service: Service, redis: Redis
) -> None:
    account = new_id("acct")
    text = json.dumps(inbound(account, T0, event_id="ev-1"))[:-1]  # cut: not JSON any more

    result = service.ingest([text], T0)
    outbox.relay(service.runtime.engine, service.runtime.redis, T0)

    assert result.dead_letter_reasons == ["not_json"]
    [row] = rows_of(service, account)
    assert (row.account_id, row.reason) == (account, "not_json")
    [entry] = stream_entries(redis, account)
    assert (entry["account_id"], entry["reason"]) == (account, "not_json")


def test_a_dead_letter_without_an_account_has_an_empty_account_on_the_stream(
    service: Service, redis: Redis
) -> None:
    marker = new_id("raw")
    service.ingest([f"not json {marker}"], T0)
    outbox.relay(service.runtime.engine, service.runtime.redis, T0)
    [entry] = [f for _, f in redis.xrange(DEAD_LETTERS_STREAM) if marker in f["raw"]]
    assert (entry["account_id"], entry["event_id"], entry["reason"]) == ("", "", "not_json")


def test_the_dead_letter_metric_counts_reason_codes_never_error_texts(redis: Redis) -> None:
    def counts() -> dict[str, int]:
        return {k: int(v) for k, v in redis.hgetall(METRICS_DEAD_LETTERS_KEY).items()}

    before = counts()
    counters.record(redis, dead_letter_reasons=["not_an_object", "unknown_type", "unknown_type"])
    after = counts()

    assert after.get("not_an_object", 0) - before.get("not_an_object", 0) == 1
    assert after.get("unknown_type", 0) - before.get("unknown_type", 0) == 2
    assert set(after) <= set(REASON_CODES)


def test_a_poison_dead_letter_keeps_the_account_event_id_and_its_code(
    service: Service, redis: Redis
) -> None:
    from service import deliveries

    account = new_id("acct")
    poison = inbound(account, T0, event_id="ev-poison")

    deliveries._dead_letter(service.runtime, poison, "processing failed: RuntimeError: boom", T0)

    [row] = rows_of(service, account)
    assert (row.reason, row.event_id) == ("poison", "ev-poison")
    assert row.error == "processing failed: RuntimeError: boom"
    [entry] = stream_entries(redis, account)
    assert (entry["reason"], entry["event_id"]) == ("poison", "ev-poison")


def test_a_dead_letter_is_logged_with_its_ids_and_without_its_payload(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    account = account_with(service)
    secret = "my card is 4111 1111 1111 1111"
    bad = {**inbound(account, T0), "contact_id": None, "note": secret}
    with caplog.at_level("INFO"):
        service.ingest([bad], T0)
    [record] = [r for r in caplog.records if r.name == "convlife.dead_letters"]
    assert (record.account_id, record.event_id) == (account, bad["event_id"])  # type: ignore[attr-defined]
    assert secret not in caplog.text
    assert [row.raw for row in service.dead_letters(secret)]  # kept in the database, though
