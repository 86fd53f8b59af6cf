"""Planner statistics of a young table, taken by convlife once the table holds rows.

PostgreSQL plans from statistics that only ANALYZE takes (autovacuum's comes a minute or more
after a table starts filling). Until then the planner guesses, and for a lookup by primary key
it guessed another index that starts with `account_id`: every row of the account read for each
key. Once any statistics exist, even taken at a few rows, it tells a key from an account
(tests/store/test_lookup_plan.py). SQLite plans a lookup by key without statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

_STATES = text(
    # reltuples is -1 until a table's first ANALYZE or VACUUM (PostgreSQL 14 and later).
    "SELECT relname, reltuples >= 0 AS analyzed, pg_relation_size(oid) > 0 AS has_rows "
    "FROM pg_class WHERE relname IN :tables AND relnamespace = current_schema()::regnamespace"
).bindparams(bindparam("tables", expanding=True))


@dataclass(frozen=True)
class Young:
    waiting: list[str]
    """Tables that hold rows and have no statistics yet."""
    settled: bool
    """Every table asked about has statistics: nothing more will ever be waiting."""


def young_tables(connection: Connection, tables: Sequence[str]) -> Young:
    rows = connection.execute(_STATES, {"tables": list(tables)}).all()
    analyzed = {name for name, done, _ in rows if done}
    return Young(
        waiting=sorted(name for name, done, has_rows in rows if not done and has_rows),
        settled=analyzed == set(tables),
    )


def analyze(connection: Connection, tables: Sequence[str]) -> None:
    """ANALYZE these tables; one that another ANALYZE (or autovacuum) holds is skipped."""
    quote = connection.dialect.identifier_preparer.quote
    connection.exec_driver_sql(f"ANALYZE (SKIP_LOCKED) {', '.join(quote(t) for t in tables)}")
