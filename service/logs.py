"""Logging: plain text by default, one JSON object per line with CONVLIFE_LOG_FORMAT=json.

Decisions and dead letters are logged with their ids as fields (account_id, conversation_id,
event_id, …), never with the raw payload: it may hold what a contact wrote. Ids and errors come
from upstream: both formats escape control characters, so no input can forge a log line or
send escape sequences to the terminal of whoever reads the log.
"""

from __future__ import annotations

import json
import logging
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
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
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
    """One INFO line per decision: `<type> <account>: <reason>` and its ids as fields."""
    if not decision_log.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "decision_id": made.decision_id,
        "decision_type": made.type,
        "account_id": made.account_id,
        "conversation_id": made.conversation_id,
        "contact_id": made.contact_id,
    }
    if isinstance(made, ContactRouted):
        fields |= {"event_id": made.inbound_event_id, "route": made.route.value}
        fields |= {"agent_id": made.agent_id, "group_id": made.group_id}
    if isinstance(made, CloseWarning):
        fields["closes_at"] = made.closes_at.isoformat()
    # The record is made and handled here, as `Logger.info` would, minus its search of the
    # stack for the caller (no convlife format prints it): a line per decision is on the
    # sweep's and the router's hot path.
    decision_log.handle(
        decision_log.makeRecord(
            decision_log.name,
            logging.INFO,
            __file__,
            _DECISION_LINE,
            f"{made.type} {made.account_id}: {made.reason}",
            (),
            None,
            "decision",
            fields,
        )
    )


_DECISION_LINE = decision.__code__.co_firstlineno


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
