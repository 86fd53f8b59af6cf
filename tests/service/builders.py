"""Raw events for the service tests, on top of tests.support: one account per test, ids random."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.support import Service, conversation_event, event, new_id, settings_event, utc

T0 = utc("2026-03-01T10:00:00")
µs = timedelta(microseconds=1)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def account_with(service: Service, **settings: Any) -> str:
    """A fresh account, configured an hour before T0 (close_after=, window=, bot=)."""
    account = new_id("acct")
    service.ingest(settings_event(account, T0 - minutes(60), **settings), T0)
    return account


def opened(account: str, conversation: str = "c1", at: datetime = T0, **fields: Any) -> dict:
    return conversation_event("conversation.opened", account, conversation, at, **fields)


def message(account: str, at: datetime, conversation: str = "c1", **fields: Any) -> dict:
    return conversation_event(
        "conversation.message", account, conversation, at, sender="contact", **fields
    )


def agent_close(account: str, at: datetime, reason: str | None = "resolved", **kw: Any) -> dict:
    return conversation_event(
        "conversation.closed",
        account,
        kw.pop("conversation", "c1"),
        at,
        closed_by="agent",
        agent_id=kw.pop("agent", "ana"),
        close_reason=reason,
        **kw,
    )


def inbound(
    account: str, at: datetime, contact: str = "contact-1", line: str = "line-1", **fields: Any
) -> dict:
    return event("contact.inbound", account, at, contact_id=contact, line_id=line, **fields)


def routes(service: Service, account: str) -> list[dict]:
    """The account's contact.routed decisions, as stored."""
    return [d for d in service.decisions(account) if d["type"] == "contact.routed"]


def routed(service: Service, account: str) -> dict:
    """The account's one contact.routed decision (fails if there is not exactly one)."""
    [decision] = routes(service, account)
    return decision
