"""Structured logs: one JSON line per decision and per dead letter, ids as fields, no payload."""

from __future__ import annotations

import json
import logging

import pytest

from events.decisions import ContactRouted, Route
from tests.support import utc
from worker import logs


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
