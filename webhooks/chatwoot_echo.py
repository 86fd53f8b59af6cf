"""The record of the Chatwoot API calls convlife made, for echo recognition
(connectors/chatwoot/echo.py): the dispatcher writes one before each call, the gateway's
Chatwoot route reads the conversation's record before translating a webhook.

Kept in Redis (the streams Redis, `CHATWOOT_CALLS_KEY_PREFIX`), one short list per
conversation that expires on its own: an echo is dated within `ECHO_WINDOW` of its call, so
nothing older is ever needed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from redis import Redis

from connectors.chatwoot.echo import CLOCK_SKEW, ECHO_WINDOW, Action, OutboundCall
from events.names import CHATWOOT_CALLS_KEY_PREFIX

KEEP_CALLS = 50
"""Calls kept per conversation (newest first): far more than convlife makes in a window."""

TTL = ECHO_WINDOW + CLOCK_SKEW + timedelta(minutes=5)
"""A record outlives any echo that could match it, with room for a webhook that is late."""


def key(account_id: str, conversation_id: str) -> str:
    return f"{CHATWOOT_CALLS_KEY_PREFIX}{account_id}:{conversation_id}"


def record(redis: Redis, call: OutboundCall) -> None:
    """Remember a call about to be made (before it is sent: its echo may arrive before the
    answer does)."""
    entry = json.dumps(
        {
            "action": str(call.action),
            "target": call.target,
            "sent_at": call.sent_at.isoformat(),
        }
    )
    name = key(call.account_id, call.conversation_id)
    with redis.pipeline(transaction=True) as pipe:
        pipe.lpush(name, entry)
        pipe.ltrim(name, 0, KEEP_CALLS - 1)
        pipe.expire(name, int(TTL.total_seconds()))
        pipe.execute()


def recent(redis: Redis, account_id: str, conversation_id: str) -> list[OutboundCall]:
    """The calls recorded for one conversation, newest first (unreadable entries skipped)."""
    calls = []
    for raw in redis.lrange(key(account_id, conversation_id), 0, KEEP_CALLS - 1):
        try:
            entry = json.loads(raw)
            calls.append(
                OutboundCall(
                    account_id,
                    conversation_id,
                    Action(entry["action"]),
                    entry["target"],
                    datetime.fromisoformat(entry["sent_at"]),
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return calls
