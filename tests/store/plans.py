"""For the store tests that hold a query to one statement served by an index: conversations to
store, the statements a block runs, and the plan each database gives one of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

from policies.state import ClosedBy, Conversation, Status
from store import conversations
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


def conversation(
    account: str,
    *,
    status: Status = Status.OPEN,
    agent: str | None = None,
    group: str | None = None,
) -> Conversation:
    """A conversation of `account` on line-1, last active at T0, with random ids."""
    closed = status is Status.CLOSED
    return Conversation(
        account_id=account,
        conversation_id=new_id("c"),
        contact_id=new_id("contact"),
        line_id="line-1",
        status=status,
        last_activity_at=T0,
        status_changed_at=T0,
        assignee_agent_id=agent,
        assignee_group_id=group,
        closed_at=T0 if closed else None,
        closed_by=ClosedBy.AGENT if closed else None,
        closing_agent_id=agent if closed else None,
        close_reason="resolved" if closed else None,
    )


def stored(connection: Connection, *states: Conversation) -> None:
    conversations.save(connection, {(c.account_id, c.conversation_id): (c, None) for c in states})


@contextmanager
def statements(connection: Connection) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements (with their parameters) run on `connection` inside the block."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", record)


def plan(connection: Connection, sql: str, parameters: Any) -> str:
    """The plan of `sql` on the connection's database, its lines joined by spaces.

    On PostgreSQL sequential scans are priced out first (for the rest of the transaction), so
    that the plan names a partial index only if its predicate matches the query's. On SQLite it
    is EXPLAIN QUERY PLAN's detail column.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return " ".join(row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql, parameters))
    return " ".join(
        str(row[-1]) for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
    )


def plan_nodes(connection: Connection, sql: str, parameters: Any) -> list[tuple[str, str, str]]:
    """(node type, relation, index) of every node of PostgreSQL's plan of `sql`, as planned now
    (EXPLAIN (FORMAT JSON)), with no planner setting changed."""
    explained = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql, parameters)
    return _nodes(explained.scalar_one()[0]["Plan"])  # psycopg reads json as Python


def _nodes(plan: dict[str, Any]) -> list[tuple[str, str, str]]:
    here = (plan["Node Type"], plan.get("Relation Name", ""), plan.get("Index Name", ""))
    return [here, *(node for child in plan.get("Plans", []) for node in _nodes(child))]
