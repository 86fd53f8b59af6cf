"""Counting what a settings change would close: open conversations by last activity.

One statement per preview, answered from a partial index of open conversations: the one built
for it, `ix_conversations_open_activity` (account_id, last_activity_at, line_id WHERE status =
'open'), gives a range scan up to the furthest cutoff, each horizon a filtered count of it, so
the cost follows the conversations that would close, not the account's size. (On some
statistics the planner prefers `ix_conversations_open_line`; tests/store/test_preview.py
requires one of the two, never a scan of the table.)
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from policies.state import LineSettings, Status
from store.configuration import overrides_of
from store.tables import conversations, lines


@dataclass(frozen=True)
class Counted:
    cumulative: list[int]
    """Per cutoff, the open conversations whose last activity is at or before it."""
    sample: list[str]
    """Ids of some that are at or before the first cutoff, oldest activity first."""


def lines_overriding(connection: Connection, account_id: str) -> dict[str, LineSettings]:
    """The account's lines that override any setting, with their overrides."""
    rows = connection.execute(
        select(lines.c.line_id, lines.c.overrides).where(
            lines.c.account_id == account_id, lines.c.overrides.is_not(None)
        )
    )
    return {row.line_id: overrides_of(row.overrides) for row in rows}


def count_open_by_activity(
    connection: Connection,
    account_id: str,
    cutoffs: Sequence[datetime | None],
    *,
    line_id: str | None = None,
    excluded_lines: Collection[str] = (),
    sample_size: int = 10,
) -> Counted:
    """Open conversations of the account (or of one line; or of every line but
    `excluded_lines`) whose last activity is at or before each cutoff (None: counts 0)."""
    given = [cutoff for cutoff in cutoffs if cutoff is not None]
    if not given:
        return Counted([0] * len(cutoffs), [])
    scope: list[ColumnElement[bool]] = [
        conversations.c.account_id == account_id,
        conversations.c.status == Status.OPEN.value,
    ]
    if line_id is not None:
        scope.append(conversations.c.line_id == line_id)
    if excluded_lines:
        scope.append(conversations.c.line_id.not_in(sorted(excluded_lines)))
    activity = conversations.c.last_activity_at
    columns: list[Any] = [
        func.count().filter(activity <= cutoff).label(f"c{number}")
        for number, cutoff in enumerate(given)
    ]
    row = connection.execute(select(*columns).where(*scope, activity <= max(given))).one()
    counts = iter(row)
    cumulative = [0 if cutoff is None else int(next(counts)) for cutoff in cutoffs]
    sample: list[str] = []
    first = cutoffs[0]
    if first is not None and sample_size > 0:
        sample = list(
            connection.execute(
                select(conversations.c.conversation_id)
                .where(*scope, activity <= first)
                .order_by(activity, conversations.c.conversation_id)
                .limit(sample_size)
            ).scalars()
        )
    return Counted(cumulative, sample)
