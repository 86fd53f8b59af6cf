"""Read-only views for people and for the HTTP gateway: one conversation explained.

What `convlife conversation show` prints and `GET /v1/accounts/{a}/conversations/{c}` returns
come from the same reads, here, so the two never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from policies.configuration import effective, overrides_deadlines
from policies.inactivity import close_deadline, next_check, warning_at
from policies.state import AccountSettings, Agent, Conversation, LineSettings
from store import configuration, conversations
from store.tables import decisions


@dataclass(frozen=True)
class ConversationView:
    """A conversation, its stored next check (UTC, None: never; the close deadline, or the
    close warning's time while one is pending), its account's settings, the settings its line
    overrides (what applies is `settings`) and every decision made about it, oldest first
    (each the decision's JSON, with `reason`)."""

    state: Conversation
    close_due_at: datetime | None
    account: AccountSettings
    decisions: list[dict[str, Any]]
    line: LineSettings = field(default_factory=LineSettings)
    closing_agent: tuple[Agent, int] | None = None
    """The agent who closed it (what is known of them, and how many open conversations they
    have now), when an agent closed it: whether a returning contact would go back to them."""

    @property
    def settings(self) -> AccountSettings:
        """The settings that apply to the conversation: its account's, with its line's
        overrides."""
        return effective(self.account, self.line)

    @property
    def warning_pending(self) -> bool:
        """Whether the stored next check is this idle period's close warning."""
        warn_at = warning_at(self.state, self.settings)
        return (
            self.close_due_at is not None
            and warn_at is not None
            and (
                abs(self.close_due_at - warn_at) < timedelta(seconds=1)  # stores round differently
            )
        )

    @property
    def closes_at(self) -> datetime | None:
        """When it closes unless there is activity (UTC; None: never): the stored next check,
        or, while that is the warning's, the deadline the settings give after it."""
        if self.warning_pending:
            return close_deadline(self.state, self.settings)
        return self.close_due_at


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
    overrides = line[(account_id, state.line_id)].overrides
    if due is not None and conversations.due_scan_covers(
        connection, account_id, state.line_id, overrides_deadlines(overrides)
    ):
        # A settings change made it due at once and left its stored next check for the
        # sweep's due scan (store.conversations.reschedule_open): the rule's is the one that
        # holds.
        rule = next_check(state, effective(account, overrides))
        due = due if rule is None else min(due, rule)
    history = conversation_decisions(connection, account_id, conversation_id)
    closing_agent = None
    if state.closing_agent_id is not None:
        key = (account_id, state.closing_agent_id)
        known = configuration.agent_states(connection, [key]).get(key, Agent())
        closing_agent = (known, conversations.open_assigned(connection, [key])[key])
    return ConversationView(state, due, account, history, overrides, closing_agent)
