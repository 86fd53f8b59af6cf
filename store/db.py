"""Engines for PostgreSQL and SQLite, and the column types both share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Table, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine, create_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite keeps naive text, so UTC is implied)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: convlife stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. Connects lazily; call it after a fork, never at import time.

    SQLite gets WAL, a busy timeout, and `BEGIN IMMEDIATE` for every transaction, so that
    several worker processes take the write lock up front instead of failing to upgrade.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, **kwargs)
    _configure_postgresql(engine)
    # Bulk INSERTs (upserts included) go as multi-row VALUES pages even without RETURNING:
    # psycopg's executemany otherwise sends one statement per row.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def _configure_postgresql(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Every session in UTC, whatever the server's TimeZone: `timestamptz + interval '1 day'`
        # is then exactly 24 h, never 23 or 25 across a daylight-saving change.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin() below decide
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def insert_ignoring_conflicts(
    connection: Connection, table: Table, index_elements: Sequence[str]
) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` for the connection's dialect."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=index_elements)
    raise NotImplementedError(f"convlife supports PostgreSQL and SQLite, not {dialect}")


def upsert(connection: Connection, table: Table, index_elements: Sequence[str]) -> Any:
    """`INSERT … ON CONFLICT (key) DO UPDATE SET` every other column to the inserted value.

    Execute it with a list of rows: SQLAlchemy sends them as multi-row VALUES pages.
    """
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise NotImplementedError(f"convlife supports PostgreSQL and SQLite, not {dialect}")
    columns = {
        column.name: statement.excluded[column.name]
        for column in table.columns
        if column.name not in index_elements
    }
    return statement.on_conflict_do_update(index_elements=index_elements, set_=columns)


def chunks(rows: Iterable[Mapping[str, Any]], size: int) -> Iterable[list[Mapping[str, Any]]]:
    """Rows in lists of at most `size` (SQLite limits bound parameters per statement)."""
    chunk: list[Mapping[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
