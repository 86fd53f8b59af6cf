"""Engines for PostgreSQL and SQLite, and the column types both share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Table, bindparam, event, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine, Row, create_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.selectable import TableValuedAlias
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


def unnested(name: str, columns: Sequence[Column[Any]]) -> TableValuedAlias:
    """`unnest(:name_col1, :name_col2, …) AS name(col1, col2, …)`: on PostgreSQL, rows passed as
    one array per column. A batch of any size is then one short statement with one cached plan,
    instead of a statement text (and a parse) that grows with the batch.

    Bind it with `unnest_params(name, columns, rows)`.
    """
    arrays = [
        bindparam(f"{name}_{column.name}", type_=postgresql.ARRAY(column.type))
        for column in columns
    ]
    return (
        func.unnest(*arrays)
        .table_valued(*[column.name for column in columns])
        .render_derived(name=name, with_types=False)
    )


def unnest_params(
    name: str, columns: Sequence[Column[Any]], rows: Iterable[Sequence[Any]]
) -> dict[str, list[Any]]:
    """The parameters of `unnested(name, columns)` for these rows (tuples in column order)."""
    arrays: list[list[Any]] = [[] for _ in columns]
    for row in rows:
        for array, value in zip(arrays, row, strict=True):
            array.append(value)
    return {f"{name}_{column.name}": array for column, array in zip(columns, arrays, strict=True)}


def bulk_insert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    on_conflict: str,
    returning: Sequence[Column[Any]] = (),
) -> list[Row[Any]]:
    """Insert `rows` (dicts with the same columns) in one go; a row whose `key` exists is
    skipped (`on_conflict="nothing"`) or overwrites it (`"update"`). Returns the `returning`
    columns of the rows inserted or updated.

    PostgreSQL gets one `INSERT … SELECT FROM unnest(arrays)`: a fixed statement text whatever
    the batch size, so its plan is cached and psycopg sends it in one round trip. SQLite gets
    executemany, which SQLAlchemy folds into multi-row VALUES pages.
    """
    if not rows:
        return []
    names = list(rows[0])
    dialect = connection.dialect.name
    if dialect == "postgresql":
        columns = [table.c[name] for name in names]
        source = unnested("r", columns)
        statement: Any = postgresql.insert(table).from_select(
            names, select(*[source.c[name] for name in names])
        )
        params: Any = unnest_params("r", columns, ([row[n] for n in names] for row in rows))
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
        params = list(rows)
    else:
        raise NotImplementedError(f"convlife supports PostgreSQL and SQLite, not {dialect}")
    if on_conflict == "update":
        statement = statement.on_conflict_do_update(
            index_elements=key,
            set_={name: statement.excluded[name] for name in names if name not in key},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=key)
    if returning:
        statement = statement.returning(*returning)
    if dialect == "sqlite":
        found: list[Row[Any]] = []
        for chunk in chunks(params, _SQLITE_ROWS_PER_STATEMENT):
            result = connection.execute(statement, chunk)
            if returning:
                found.extend(result)
        return found
    result = connection.execute(statement, params)
    return list(result) if returning else []


_SQLITE_ROWS_PER_STATEMENT = 500
