"""The preview's counts: one statement per group of lines, served by the open-activity index."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy.engine import Engine

from policies.state import Status
from store.preview import count_open_by_activity
from tests.store.test_open_assigned import T0, conversation, statements, stored
from tests.support import new_id

HOUR = timedelta(hours=1)


def test_each_cutoff_counts_the_open_conversations_idle_since_it_or_longer(
    engine: Engine,
) -> None:
    account = new_id("acct")
    idle = [
        replace(conversation(account), last_activity_at=T0 - hours * HOUR) for hours in range(10)
    ]
    closed = replace(conversation(account, status=Status.CLOSED), last_activity_at=T0 - 50 * HOUR)
    other_line = replace(conversation(account), line_id="line-2", last_activity_at=T0 - 50 * HOUR)
    with engine.begin() as connection:
        stored(connection, *idle, closed, other_line)
        counted = count_open_by_activity(
            connection, account, [T0 - 8 * HOUR, None, T0 - 2 * HOUR, T0], line_id="line-1"
        )
        everywhere_else = count_open_by_activity(
            connection, account, [T0], excluded_lines=["line-1"]
        )

    assert counted.cumulative == [2, 0, 8, 10]  # idle 8 h or more: 8 and 9 h; None counts 0
    assert counted.sample == [idle[9].conversation_id, idle[8].conversation_id]  # oldest first
    assert everywhere_else.cumulative == [1]


def test_the_counts_are_one_statement_served_by_an_index_of_open_conversations(
    engine: Engine,
) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        stored(
            connection,
            *(replace(conversation(account), last_activity_at=T0 - n * HOUR) for n in range(30)),
        )
        with statements(connection) as seen:
            counted = count_open_by_activity(
                connection, account, [T0 - 20 * HOUR, T0 - 10 * HOUR], sample_size=0
            )
        [(sql, parameters)] = seen
        if connection.dialect.name == "postgresql":
            # With sequential scans priced out, the plan names a partial index of open
            # conversations only if its predicate (status = 'open') matches the query's. Which
            # one (by last activity, or by line) the planner prefers depends on the statistics:
            # bench/preview.py measures the preview on a million rows.
            connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = " ".join(
                row[0] for row in connection.exec_driver_sql("EXPLAIN " + sql, parameters)
            )
        else:
            plan = " ".join(
                str(row[-1])
                for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, parameters)
            )
    assert "ix_conversations_open_" in plan
    assert "Seq Scan" not in plan
    assert "SCAN conversations " not in f"{plan} "  # SQLite: a SEARCH of the index, not a scan
    assert counted.cumulative == [10, 20]
