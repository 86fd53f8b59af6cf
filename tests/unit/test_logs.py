"""Structured logs: one JSON line per decision and per dead letter, ids as fields, no payload."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest

from events.decisions import AutoClosed, ContactRouted, Route
from service import logs
from tests.support import utc


@pytest.fixture
def json_lines() -> list[str]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(logs.JsonFormatter().format(record))

    handler = Collect()
    for logger in (logs.decision_log, logs.dead_letter_log):
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield lines
    for logger in (logs.decision_log, logs.dead_letter_log):
        logger.removeHandler(handler)


def test_a_decision_is_one_json_line_with_its_ids(json_lines: list[str]) -> None:
    logs.decision(
        ContactRouted(
            decision_id="d1",
            account_id="acme",
            decided_at=utc("2026-03-01T10:00:00"),
            reason="agent ana closed c1 with reason 'resolved' 1h before",
            inbound_event_id="e9",
            contact_id="maria",
            line_id="sales",
            route=Route.PREVIOUS_AGENT,
            agent_id="ana",
        )
    )
    [line] = json_lines
    record = json.loads(line)
    assert record["decision_type"] == "contact.routed"
    assert (record["account_id"], record["event_id"], record["route"]) == (
        "acme",
        "e9",
        "previous_agent",
    )
    assert record["agent_id"] == "ana"


def test_a_dead_letter_line_names_the_error_and_the_ids(json_lines: list[str]) -> None:
    logs.dead_letter("contact_id: Field required", "acme", "e1")
    [line] = json_lines
    record = json.loads(line)
    assert (record["account_id"], record["event_id"]) == ("acme", "e1")
    assert record["error"] == "contact_id: Field required"


HOSTILE_ID = "e1\n2026-03-01 10:00:00,000 INFO convlife.decisions forged \x1b[31mred\u2028\x9b"


@pytest.fixture
def text_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logs.TextFormatter())
    for logger in (logs.decision_log, logs.dead_letter_log):
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield out
    for logger in (logs.decision_log, logs.dead_letter_log):
        logger.removeHandler(handler)


def test_a_dead_letter_with_a_hostile_id_is_one_text_line_with_the_escapes_visible(
    text_lines: io.StringIO,
) -> None:
    logs.dead_letter(f"type: {HOSTILE_ID}", f"acme{HOSTILE_ID}", HOSTILE_ID, "unknown_type")
    written = text_lines.getvalue()
    assert written.count("\n") == 1
    assert written.endswith("\n")
    assert "\\x0a2026-03-01 10:00:00,000 INFO convlife.decisions forged \\x1b[31mred" in written
    assert "\\u2028\\x9b" in written
    assert "\x1b" not in written
    assert "\u2028" not in written
    assert "\x9b" not in written


def test_a_decision_with_hostile_ids_is_one_text_line(text_lines: io.StringIO) -> None:
    logs.decision(
        ContactRouted(
            decision_id="d1",
            account_id=f"acme{HOSTILE_ID}",
            decided_at=utc("2026-03-01T10:00:00"),
            reason=f"agent {HOSTILE_ID} closed it",
            inbound_event_id=HOSTILE_ID,
            contact_id=HOSTILE_ID,
            line_id="sales",
            route=Route.BOT,
        )
    )
    assert text_lines.getvalue().count("\n") == 1


def test_a_traceback_in_the_text_format_is_indented_under_its_line() -> None:
    try:
        raise ValueError(f"bad {HOSTILE_ID}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, "f", 1, "failed", (), sys.exc_info())
    lines = logs.TextFormatter().format(record).split("\n")
    assert lines[0].endswith("ERROR x failed")
    assert all(line.startswith("  ") for line in lines[1:])
    assert not any(c in "".join(lines) for c in "\x1b\u2028\x9b")


def test_a_json_log_line_has_no_raw_control_characters_and_keeps_the_values(
    json_lines: list[str],
) -> None:
    logs.dead_letter("type: x", f"acme{HOSTILE_ID}", HOSTILE_ID, "unknown_type")
    [line] = json_lines
    assert not any(c in line for c in "\n\x1b\u2028\x9b")
    record = json.loads(line)
    assert (record["account_id"], record["event_id"]) == (f"acme{HOSTILE_ID}", HOSTILE_ID)
    assert record["reason"] == "unknown_type"


def test_a_text_log_line_carries_the_same_ids_as_a_json_one() -> None:
    root = logging.getLogger()
    kept = (root.handlers[:], root.level)
    try:
        logs.configure("INFO", "text")
        formatter = root.handlers[0].formatter
    finally:
        root.handlers[:], level = kept
        root.setLevel(level)
    assert formatter is not None
    record = logging.LogRecord("convlife.decisions", logging.INFO, "", 0, "routed", (), None)
    record.__dict__.update(account_id="acme", conversation_id="c1", event_id="e4", agent_id=None)
    assert formatter.format(record).endswith(
        " INFO convlife.decisions routed account_id=acme conversation_id=c1 event_id=e4"
    )


def _closed(n: int, account: str = "acme") -> AutoClosed:
    return AutoClosed(
        decision_id=f"d{n}",
        account_id=account,
        decided_at=utc("2026-03-01T10:00:00"),
        reason=f"no action for 1d in c{n}",
        conversation_id=f"c{n}",
        contact_id=f"k{n}",
        line_id="sales",
        last_activity_at=utc("2026-02-28T10:00:00"),
        closed_at=utc("2026-03-01T10:00:00"),
        inactivity_close_after=timedelta(days=1),
    )


def test_a_batch_of_decisions_is_written_as_one_json_line_each(json_lines: list[str]) -> None:
    logs.decisions([_closed(1), _closed(2), _closed(3, account=f"acme{HOSTILE_ID}")])
    [written] = json_lines  # one record for the batch ...
    records = [json.loads(line) for line in written.split("\n")]  # ... one line per decision
    assert [r["conversation_id"] for r in records] == ["c1", "c2", "c3"]
    assert [r["decision_id"] for r in records] == ["d1", "d2", "d3"]
    assert records[0]["message"] == "conversation.auto_closed acme: no action for 1d in c1"
    assert {r["logger"] for r in records} == {"convlife.decisions"}
    assert records[2]["account_id"] == f"acme{HOSTILE_ID}"
    assert not any(c in written for c in "\x1b\u2028\x9b")


def test_a_batch_in_the_text_format_is_one_line_per_decision_like_a_single_one(
    text_lines: io.StringIO,
) -> None:
    logs.decision(_closed(1))
    single = text_lines.getvalue()
    text_lines.seek(0)
    text_lines.truncate()
    logs.decisions([_closed(1), _closed(2, account=f"acme{HOSTILE_ID}")])
    first, second = text_lines.getvalue().removesuffix("\n").split("\n")
    # Same line as the decision logged alone (past the timestamp).
    assert first.split(" INFO ", 1)[1] == single.removesuffix("\n").split(" INFO ", 1)[1]
    assert first.endswith(
        "conversation.auto_closed acme: no action for 1d in c1 decision_id=d1 "
        "decision_type=conversation.auto_closed account_id=acme conversation_id=c1 contact_id=k1"
    )
    assert " INFO convlife.decisions conversation.auto_closed acmee1\\x0a2026" in second


def test_no_record_is_made_for_an_empty_batch(json_lines: list[str]) -> None:
    logs.decisions([])
    assert json_lines == []


def test_a_foreign_formatter_still_sees_every_decision_in_the_message() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logs.decision_log.addHandler(handler)
    logs.decision_log.setLevel(logging.INFO)
    try:
        logs.decisions([_closed(1), _closed(2)])
    finally:
        logs.decision_log.removeHandler(handler)
    assert out.getvalue() == (
        "INFO conversation.auto_closed acme: no action for 1d in c1\n"
        "conversation.auto_closed acme: no action for 1d in c2\n"
    )
