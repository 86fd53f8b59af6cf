"""Ingest looks each conversation of a batch up by its key, whatever the table's size and
whatever its statistics say, and never through a plan kept from when the table was small.

Joined to the batch's keys as a record set, the lookups were planned as a hash of the keys and a
scan of the whole table whenever the planner priced the scan below one index probe per key (a
table of up to some 40,000 rows): 5.6 million rows read for the default run's 100,000 inbound
events, and a scan per event for a platform sending one event per message."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from service.statistics import LOOK_EVERY, FirstStatistics
from store.configuration import agent_states
from store.conversations import lock
from store.db import make_engine
from store.migrate import upgrade
from tests.store.plans import plan, plan_nodes, statements

ROWS = 20_000
"""Conversations of one account: a table the planner would rather scan than probe 100 times."""


@pytest.fixture
def engine(fresh_url: str) -> Iterator[Engine]:
    if not fresh_url.startswith("postgresql"):
        pytest.skip("SQLite plans a lookup by key without statistics, and keeps no plans")
    upgrade(fresh_url)
    engine = make_engine(fresh_url)
    yield engine
    engine.dispose()


def add_conversations(connection: Connection, first: int, last: int) -> None:
    connection.execute(
        text(
            "INSERT INTO conversations (account_id, conversation_id, contact_id, line_id, "
            "status, last_activity_at, assignee_bot) "
            "SELECT 'acct', 'c' || n, 'k' || n, 'l1', 'open', now(), false "
            "FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS n"
        ),
        {"first": first, "last": last},
    )


def locked_in_a_batch(connection: Connection, numbers: range) -> tuple[set[str], list[Any]]:
    """`lock` of these conversations (by key, and by contact and line): the ids it returned and
    the statements it sent, with their parameters."""
    with statements(connection) as sent, connection.begin():
        found = lock(
            connection,
            {("acct", f"c{n}") for n in numbers[::2]},
            {("acct", f"k{n}", "l1") for n in numbers[1::2]},
        )
    return {conversation_id for _, conversation_id in found}, sent


def explained(connection: Connection, sent: list[Any]) -> list[list[tuple[str, str, str]]]:
    return [plan_nodes(connection, statement, params) for statement, params in sent]


def test_a_batch_probes_the_indexes_of_a_table_the_planner_would_rather_scan(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        add_conversations(connection, 1, ROWS)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE conversations"))  # true statistics: 20,000 rows

    with engine.connect() as connection:
        found, sent = locked_in_a_batch(connection, range(1, 201))
        plans = explained(connection, sent)

    assert found == {f"c{n}" for n in range(1, 201)}
    assert len(plans) == 2  # the contacts' conversations, then the lock of all by key
    for nodes in plans:
        scanned = {(relation, index) for kind, relation, index in nodes if relation}
        assert ("conversations", "") not in scanned, nodes  # no sequential scan
        assert any(kind == "Index Scan" for kind, _, _ in nodes), nodes
    by_contact, by_key = plans
    assert ("Index Scan", "conversations", "ix_conversations_contact_line") in by_contact
    assert ("Index Scan", "conversations", "conversations_pkey") in by_key


def kept_plan(connection: Connection, sent: list[Any]) -> list[tuple[str, str, str]]:
    """The plan PostgreSQL keeps for the lock by key that psycopg prepared on this connection."""
    params = next(p for s, p in sent if "FOR UPDATE" in s)
    name = connection.execute(
        text("SELECT name FROM pg_prepared_statements WHERE statement LIKE '%FOR UPDATE%'")
    ).scalar_one()
    keys = params["keys"].replace("'", "''")
    return plan_nodes(connection, f"EXECUTE {name}('{keys}')", ())


def test_the_plan_kept_while_the_table_was_new_is_replaced_once_it_holds_rows(
    engine: Engine,
) -> None:
    looks = FirstStatistics(clock=lambda: 0.0)
    with engine.connect() as connection:
        with connection.begin():
            add_conversations(connection, 1, 4)
        # Enough uses on one connection for psycopg to prepare the statements (their fifth) and
        # for PostgreSQL to keep one plan of each (after five), all while the table is new.
        for _ in range(12):
            assert locked_in_a_batch(connection, range(1, 5))[0] == {"c1", "c2", "c3", "c4"}
        with connection.begin():
            add_conversations(connection, 5, ROWS)
        looks.after_ingest(engine)  # what each ingest process does after a batch
        found, sent = locked_in_a_batch(connection, range(1, 201))
        with connection.begin():
            kept = kept_plan(connection, sent)

    assert found == {f"c{n}" for n in range(1, 201)}
    assert ("Index Scan", "conversations", "conversations_pkey") in kept, kept
    assert looks.settled is False  # it looks once more, finds statistics, then never again


def test_statistics_are_taken_once_a_table_holds_rows_and_then_never_looked_for(
    engine: Engine,
) -> None:
    now = [0.0]
    looks = FirstStatistics(clock=lambda: now[0])
    looks.after_ingest(engine)  # an empty table: nothing to take yet
    assert (looks.settled, analyzed(engine)) == (False, False)
    with engine.begin() as connection:
        add_conversations(connection, 1, 10)
    looks.after_ingest(engine)  # too soon after the last look: nothing is asked
    assert analyzed(engine) is False
    now[0] += LOOK_EVERY
    looks.after_ingest(engine)
    assert (looks.settled, analyzed(engine)) == (False, True)
    now[0] += LOOK_EVERY
    looks.after_ingest(engine)
    assert looks.settled is True


def analyzed(engine: Engine) -> bool:
    with engine.connect() as connection:
        reltuples = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE relname = 'conversations'")
        ).scalar_one()
    return bool(reltuples >= 0)


def test_the_agents_a_batch_names_are_probed_by_key_among_many(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO agents (account_id, agent_id, active, updated_at) "
                "SELECT 'acct-' || (n % 50), 'agent-' || n, true, now() "
                "FROM generate_series(1, CAST(:rows AS integer)) AS n"
            ),
            {"rows": ROWS},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE agents"))
    wanted = {(f"acct-{n % 50}", f"agent-{n}") for n in range(1, 201)}

    with engine.connect() as connection:
        with statements(connection) as sent, connection.begin():
            found = agent_states(connection, wanted)
        (nodes,) = explained(connection, sent)

    assert set(found) == wanted
    assert ("agents", "") not in {(relation, index) for _, relation, index in nodes}, nodes
    assert ("Index Scan", "agents", "agents_pkey") in nodes, nodes


def test_on_sqlite_a_batch_is_one_statement_probing_both_indexes(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO conversations (account_id, conversation_id, contact_id, line_id, "
                "status, last_activity_at, assignee_bot) "
                "VALUES ('acct', ?, ?, 'l1', 'open', '2026-03-01 10:00:00.000000', 0)",
                [(f"c{n}", f"k{n}") for n in range(1, ROWS + 1)],
            )
        with engine.connect() as connection:
            found, sent = locked_in_a_batch(connection, range(1, 201))
            [(statement, params)] = sent[1:]  # after the BEGIN IMMEDIATE
            detail = plan(connection, statement, params)
    finally:
        engine.dispose()

    assert found == {f"c{n}" for n in range(1, 201)}
    assert "SCAN c" not in detail, detail
    assert "SEARCH c USING INDEX sqlite_autoindex_conversations_1" in detail, detail
    assert "SEARCH c USING INDEX ix_conversations_contact_line" in detail, detail
