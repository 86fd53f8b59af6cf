"""A sweep's claim walks the deadline index in order, even right after a settings change made
many conversations due at once, when PostgreSQL's statistics still say none is.

Planned from those statistics, the claim fetched every due row and sorted them all before
locking 500 (an external sort on disk for 100,000 rows: 48 ms per claim instead of 0.7 ms),
and a burst of closes spent most of the database's time there."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text

from store.conversations import claim_due
from store.db import make_engine
from store.migrate import upgrade
from tests.store.plans import plan_nodes

DUE = 20_000


def test_a_claim_right_after_a_mass_reschedule_walks_the_deadline_index(fresh_url: str) -> None:
    if not fresh_url.startswith("postgresql"):
        pytest.skip("SQLite's planner keeps no statistics that a reschedule makes stale")
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversations (account_id, conversation_id, contact_id, line_id, "
                "status, last_activity_at, assignee_bot, close_due_at) "
                "SELECT 'acct', 'c' || n, 'k' || n, 'l1', 'open', :now, false, "
                ":now + interval '10 years' + (n * 7919 % :count) * interval '1 second' "
                "FROM generate_series(1, :count) AS n"
            ),
            {"now": now, "count": DUE},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE conversations"))  # statistics: nothing is due
    with engine.begin() as connection:  # a settings change: every one is due now
        connection.execute(
            text("UPDATE conversations SET close_due_at = close_due_at - interval '11 years'")
        )

    sent: list[tuple[str, Any]] = []

    def listen(_conn: object, _cursor: object, statement: str, params: Any, *_: object) -> None:
        sent.append((statement, params))

    with engine.begin() as connection:
        event.listen(connection, "before_cursor_execute", listen)
        claimed = claim_due(connection, now, 100)
        event.remove(connection, "before_cursor_execute", listen)
        statement, params = next((s, p) for s, p in sent if "FOR UPDATE SKIP LOCKED" in s)
        nodes = [kind for kind, _, _ in plan_nodes(connection, statement, params)]
    engine.dispose()

    assert "Sort" not in nodes, nodes
    assert "Index Scan" in nodes, nodes
    # And it still claims the most overdue first, in deadline order (7919 is prime: the n-th
    # row's deadline is the (n * 7919 mod DUE)-th second, so the rows' order on disk is not
    # the deadlines' order, as after any real life of a table).
    oldest = sorted(range(1, DUE + 1), key=lambda n: n * 7919 % DUE)[:100]
    assert [c.conversation_id for c in claimed.conversations] == [f"c{n}" for n in oldest]
