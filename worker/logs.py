"""Logging: plain text by default, one JSON object per line with CONVLIFE_LOG_FORMAT=json.

Decisions and dead letters are logged with their ids as fields (account_id, conversation_id,
event_id, …), never with the raw payload: it may hold what a contact wrote.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from events.decisions import AutoClosed, ContactRouted

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
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`time LEVEL logger message key=value …`: the same id fields as the JSON format carries."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and key != "error" and value is not None
        ]
        return " ".join([line, *fields]) if fields else line


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


def decision(made: AutoClosed | ContactRouted) -> None:
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
    decision_log.info("%s %s: %s", made.type, made.account_id, made.reason, extra=fields)


def dead_letter(error: str, account_id: str | None, event_id: str | None) -> None:
    dead_letter_log.warning(
        "dead letter: %s",
        error,
        extra={"account_id": account_id, "event_id": event_id, "error": error},
    )
