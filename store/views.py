"""Read-only views for people and for the HTTP gateway: one conversation explained.

What `convlife conversation show` prints and `GET /v1/accounts/{a}/conversations/{c}` returns
come from the same reads, here, so the two never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from policies.state import AccountSettings, Conversation, LineSettings
from store import configuration, conversations
from store.tables import decisions


@dataclass(frozen=True)
class ConversationView:
    """A conversation, its stored close deadline (UTC, None: never), its account's settings,
    the settings its line overrides (what applies is policies.configuration.effective of the
    two) and every decision made about it, oldest first (each the decision's JSON, with
    `reason`)."""

    state: Conversation
    close_due_at: datetime | None
    account: AccountSettings
    decisions: list[dict[str, Any]]
    line: LineSettings = field(default_factory=LineSettings)


def conversation_decisions(
    connection: Connection, account_id: str, conversation_id: str
) -> list[dict[str, Any]]:
    """Every decision about one conversation, oldest first, as the JSON published."""
    rows = connection.execute(
        select(decisions.c.data)
        .where(
            decisions.c.account_id == account_id,
            decisions.c.conversation_id == conversation_id,
        )
        .order_by(decisions.c.decided_at, decisions.c.decision_id)
    )
    return [json.loads(data) for (data,) in rows]


def conversation_view(
    connection: Connection, account_id: str, conversation_id: str, default: AccountSettings
) -> ConversationView | None:
    """Everything known about one conversation, or None when convlife has never seen it."""
    found = conversations.get(connection, account_id, conversation_id)
    if found is None:
        return None
    state, due = found
    account = configuration.account_settings(connection, [account_id], default)[account_id]
    line = configuration.line_owners(connection, [(account_id, state.line_id)])
    history = conversation_decisions(connection, account_id, conversation_id)
    return ConversationView(
        state, due, account, history, line[(account_id, state.line_id)].overrides
    )
