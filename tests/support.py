"""Builders for test data: random ids and raw events as upstream sends them (dicts)."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_counter = itertools.count()


def new_id(prefix: str) -> str:
    """A random id, so tests sharing a database or stream never see each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def utc(value: str) -> datetime:
    """`utc("2026-01-01T10:00:00")` -> an aware UTC datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def event(type_: str, account_id: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    """A raw event (a dict) with a fresh event_id unless one is given."""
    fields.setdefault("event_id", new_id(f"ev{next(_counter)}"))
    return {"type": type_, "account_id": account_id, "occurred_at": iso(occurred_at), **fields}


def conversation_event(
    type_: str,
    account_id: str,
    conversation_id: str,
    occurred_at: datetime,
    *,
    contact_id: str = "contact-1",
    line_id: str = "line-1",
    **fields: Any,
) -> dict[str, Any]:
    return event(
        type_,
        account_id,
        occurred_at,
        conversation_id=conversation_id,
        contact_id=contact_id,
        line_id=line_id,
        **fields,
    )


def settings_event(
    account_id: str,
    occurred_at: datetime,
    *,
    close_after: str | float | None = None,
    window: str | float | None = None,
    bot: bool = False,
) -> dict[str, Any]:
    return event(
        "account.settings_updated",
        account_id,
        occurred_at,
        inactivity_close_after=close_after,
        reassignment_window=window,
        bot_enabled=bot,
    )


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)
