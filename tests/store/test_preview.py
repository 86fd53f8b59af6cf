"""The preview's counts: one statement per group of lines, served by the open-activity index."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy.engine import Engine

from policies.state import Status
from store.preview import count_open_by_activity
from tests.store.plans import T0, conversation, plan, statements, stored
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
        # The plan names a partial index of open conversations. Which one (by last activity,
        # or by line) PostgreSQL prefers depends on the statistics: bench/preview.py measures
        # the preview on a million rows.
        chosen = plan(connection, sql, parameters)
    assert "ix_conversations_open_" in chosen
    assert "Seq Scan" not in chosen
    assert "SCAN conversations " not in f"{chosen} "  # SQLite: a SEARCH of the index, not a scan
    assert counted.cumulative == [10, 20]
