"""Logging: plain text by default, one JSON object per line with CONVLIFE_LOG_FORMAT=json.

Decisions and dead letters are logged with their ids as fields (account_id, conversation_id,
event_id, …), never with the raw payload: it may hold what a contact wrote. Ids and errors come
from upstream: both formats escape control characters, so no input can forge a log line or
send escape sequences to the terminal of whoever reads the log.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from events.decisions import CloseWarning, ContactRouted, Decision
from events.parsing import printable, printable_json

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

decision_log = logging.getLogger("convlife.decisions")
dead_letter_log = logging.getLogger("convlife.dead_letters")


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "message", …extra fields}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        head: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
        }
        if (batch := _lines_of(record)) is not None:
            return "\n".join(
                printable_json(json.dumps(head | {"message": message} | fields, ensure_ascii=False))
                for message, fields in batch
            )
        line = head | {"message": record.getMessage()}
        line.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return printable_json(json.dumps(line, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value …` on one line: the same id fields as the JSON format
    carries. Control characters in it (a newline or an ANSI escape in an id) are written as
    escapes. A traceback keeps its lines, each indented, so none of them can pass for a log line
    of its own."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        if (batch := _lines_of(record)) is not None:
            head = f"{record.asctime} {record.levelname} {record.name} "
            return "\n".join(
                printable(
                    head
                    + " ".join([message, *(f"{k}={v}" for k, v in fields.items() if v is not None)])
                )
                for message, fields in batch
            )
        fields = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and key != "error" and value is not None
        ]
        return printable(" ".join([super().formatMessage(record), *fields]))

    def formatException(self, ei: Any) -> str:  # noqa: N802
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("  " + printable(line) for line in text.split("\n"))


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":
        # A line per task received/succeeded is noise at a sweep a second; convlife logs its
        # own line per decision and per dead letter.
        for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat"):
            logging.getLogger(name).setLevel(logging.WARNING)


def decision(made: Decision) -> None:
    """One INFO line for one decision (see `decisions`)."""
    decisions([made])


def decisions(made: Sequence[Decision]) -> None:
    """One INFO line per decision: `<type> <account>: <reason>` and its ids as fields.

    A batch's lines travel in ONE log record (its `decision_lines`), which both convlife
    formats write out as one line per decision, as if each had its own record: making,
    handling and flushing a record per decision was a quarter of the router's CPU. Another
    formatter prints the record's message, which holds every decision's line too."""
    if not made or not decision_log.isEnabledFor(logging.INFO):
        return
    lines = [_decision_line(decision) for decision in made]
    decision_log.handle(
        # Made as `Logger.info` would, minus its search of the stack for the caller (no
        # convlife format prints it).
        decision_log.makeRecord(
            decision_log.name,
            logging.INFO,
            __file__,
            _DECISION_LINE,
            "%s",
            ("\n".join(message for message, _fields in lines),),
            None,
            "decisions",
            {"decision_lines": lines},
        )
    )


_DECISION_LINE = decisions.__code__.co_firstlineno


def _decision_line(made: Decision) -> tuple[str, dict[str, Any]]:
    fields: dict[str, Any] = {
        "decision_id": made.decision_id,
        "decision_type": made.type,
        "account_id": made.account_id,
        "conversation_id": made.conversation_id,
        "contact_id": made.contact_id,
    }
    if isinstance(made, ContactRouted):
        fields["event_id"] = made.inbound_event_id
        fields["route"] = made.route.value
        fields["agent_id"] = made.agent_id
        fields["group_id"] = made.group_id
    elif isinstance(made, CloseWarning):
        fields["closes_at"] = made.closes_at.isoformat()
    return f"{made.type} {made.account_id}: {made.reason}", fields


def _lines_of(record: logging.LogRecord) -> list[tuple[str, dict[str, Any]]] | None:
    lines: list[tuple[str, dict[str, Any]]] | None = record.__dict__.get("decision_lines")
    return lines


def dead_letter(
    error: str, account_id: str | None, event_id: str | None, reason: str | None = None
) -> None:
    """One line per dead letter: its reason code, error and ids (never the payload)."""
    dead_letter_log.warning(
        "dead letter (%s) account %s event %s: %s",
        reason or "unknown",
        account_id,
        event_id,
        error,
        extra={"account_id": account_id, "event_id": event_id, "error": error, "reason": reason},
    )
