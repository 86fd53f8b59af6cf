"""store.conversations.open_assigned on SQLite and PostgreSQL: how many open conversations each
agent has, for the capacity rule, in one statement served by the open-by-agent index."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from events.models import ContactInbound, ConversationEvent
from events.parsing import parse_event
from policies.state import AccountSettings, ClosedBy, Conversation, Status
from store import batch, conversations
from tests.support import conversation_event, new_id, utc
from tests.support import event as raw_event

T0 = utc("2026-03-01T10:00:00")


def conversation(
    account: str,
    *,
    status: Status = Status.OPEN,
    agent: str | None = None,
    group: str | None = None,
) -> Conversation:
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


def test_each_agent_gets_the_count_of_its_open_conversations_and_zero_when_it_has_none(
    engine: Engine,
) -> None:
    account, other = new_id("acct"), new_id("acct")
    with engine.begin() as connection:
        stored(
            connection,
            conversation(account, agent="ana"),
            conversation(account, agent="ana"),
            conversation(account, agent="ana", status=Status.CLOSED),
            conversation(account, agent="bia"),
            conversation(account, group="ana"),
            conversation(other, agent="ana"),
        )
        counts = conversations.open_assigned(
            connection, {(account, "ana"), (account, "bia"), (account, "caio"), (other, "ana")}
        )
    assert counts == {
        (account, "ana"): 2,
        (account, "bia"): 1,
        (account, "caio"): 0,
        (other, "ana"): 1,
    }


def test_no_agents_asked_means_no_statement(engine: Engine) -> None:
    with engine.connect() as connection, statements(connection) as seen:
        assert conversations.open_assigned(connection, set()) == {}
    assert seen == []


def test_the_count_of_many_agents_is_one_statement_served_by_the_open_by_agent_index(
    engine: Engine,
) -> None:
    account = new_id("acct")
    agents = {(account, f"agent-{n}") for n in range(50)}
    with engine.begin() as connection:
        stored(connection, *(conversation(account, agent=f"agent-{n}") for n in range(0, 50, 2)))
        with statements(connection) as seen:
            counts = conversations.open_assigned(connection, agents)
        [(sql, parameters)] = seen
        if connection.dialect.name == "postgresql":
            # With sequential scans priced out, the plan names the index only if its predicate
            # (status = 'open') matches the query's.
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(
                row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql, parameters)
            )
        else:
            plan = " ".join(
                str(row[-1])
                for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
            )
    assert "ix_conversations_open_by_agent" in plan
    assert sum(counts.values()) == 25
    assert counts[(account, "agent-1")] == 0


def test_a_batch_loads_counts_that_include_the_conversations_it_creates(engine: Engine) -> None:
    # The batch's new conversations are created before the count, so that `decide` can move
    # the counts from the conversations as loaded (here: open, unassigned, counted nowhere).
    account = new_id("acct")
    with engine.begin() as connection:
        marias = conversation(account, agent="ana", status=Status.CLOSED)
        stored(connection, marias, conversation(account, agent="ana"))
    opened = parse_event(
        conversation_event(
            "conversation.opened", account, new_id("c"), T0 + timedelta(minutes=1), agent_id="ana"
        )
    )
    wrote = parse_event(
        raw_event(
            "contact.inbound",
            account,
            T0 + timedelta(minutes=2),
            contact_id=marias.contact_id,
            line_id="line-1",
        )
    )
    assert isinstance(opened, ConversationEvent)
    assert isinstance(wrote, ContactInbound)
    with engine.begin() as connection:
        loaded = batch.load(connection, [opened, wrote], AccountSettings())
    assert loaded.open_assigned == {(account, "ana"): 1}
    new = loaded.conversations[(account, opened.conversation_id)]
    assert (new.is_open, new.assignee_agent_id) == (True, None)


def test_a_batch_without_an_inbound_contact_counts_nothing(engine: Engine) -> None:
    account = new_id("acct")
    opened = parse_event(
        conversation_event("conversation.opened", account, new_id("c"), T0, agent_id="ana")
    )
    with engine.begin() as connection:
        loaded = batch.load(connection, [opened], AccountSettings())
    assert loaded.open_assigned == {}
