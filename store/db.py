"""Engines for PostgreSQL and SQLite, and the column types both share."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import orjson
from sqlalchemy import Column, DateTime, Table, Text, bindparam, cast, event, func, select
from sqlalchemy import column as sql_column
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

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if self.impl_instance.result_processor(dialect, coltype) is not None:
            return super().result_processor(dialect, coltype)

        # The driver hands out datetimes itself (psycopg: aware, in the session's time zone,
        # which convlife sets to UTC): one call per value, and none of the conversion when it is
        # UTC already. Read in bulk (a batch's conversations), the two calls of the generic
        # TypeDecorator path cost a tenth of the read phase.
        def process(value: datetime | None) -> datetime | None:
            if value is None or value.tzinfo is UTC:
                return value
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

        return process


def make_engine(
    url: str, *, pool_size: int = 5, pool_timeout: float = 30.0, **kwargs: Any
) -> Engine:
    """An engine for `url`. Connects lazily; call it after a fork, never at import time.

    SQLite gets WAL, a busy timeout, and `BEGIN IMMEDIATE` for every transaction, so that
    several worker processes take the write lock up front instead of failing to upgrade; it
    opens a connection per use, so the pool options (PostgreSQL: `pool_size` kept, as many
    again at peak, `pool_timeout` seconds to wait for one) do not apply to it.

    `hide_parameters`: an error names the statement, never the values bound to it, so a
    payload's content (what a contact wrote, an id with a newline in it) never reaches a log.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30}, **kwargs)
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_pre_ping=True,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        **kwargs,
    )
    _configure_postgresql(engine)
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


def rows_param(name: str, columns: Sequence[Column[Any]]) -> TableValuedAlias:
    """`json_to_recordset(:name) AS name(col1 type1, …)`: on PostgreSQL, a batch of rows passed
    as one JSON parameter. Any batch is then one short statement with one cached plan, and
    encoding it is one C-speed `json.dumps` (psycopg dumps arrays element by element in Python,
    which cost more than the rest of the statement).

    Bind it with `{name: rows_json(rows)}`.
    """
    return (
        func.json_to_recordset(cast(bindparam(name, type_=Text), postgresql.JSON))
        .table_valued(*[sql_column(c.name, c.type) for c in columns])
        .render_derived(name=name, with_types=True)
    )


def rows_json(rows: Iterable[Mapping[str, Any]]) -> str:
    """Rows (dicts keyed by column name) as the JSON `rows_param` reads."""
    # A batch's rows share values (the claim time, `decided_at`): each is converted once.
    converted: dict[object, str] = {}

    def default(value: object) -> str:
        if not isinstance(value, datetime):
            return _json_value(value)
        if (text := converted.get(value)) is None:
            text = converted[value] = _json_value(value)
        return text

    listed = list(rows)
    try:
        # orjson writes the rows in C about 4x faster than `json` (its dumps is most of a
        # batch's encoding cost); datetimes still come to `default`, which makes them UTC.
        encoded = orjson.dumps(listed, default=default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        return encoded.decode()
    except orjson.JSONEncodeError:
        # What orjson refuses and `json` writes (a lone surrogate, an int past 64 bits) goes
        # the old way, so the database, not the encoder, says what it makes of it.
        return json.dumps(listed, default=default, separators=(",", ":"))


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: convlife stores aware UTC datetimes only")
        # Converted here as `UTCDateTime` does on the other path: PostgreSQL must never get a
        # raw offset (year 1 at +00:01 would be stored as a BC date psycopg cannot read back).
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} as a row value")


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

    PostgreSQL gets one `INSERT … SELECT FROM json_to_recordset(:rows)`: a fixed statement
    text whatever the batch size, so its plan is cached and it goes in one round trip. SQLite
    gets executemany (multi-row VALUES pages when rows are returned).
    """
    if not rows:
        return []
    names = list(rows[0])
    dialect = connection.dialect.name
    if dialect == "postgresql":
        source = rows_param("rows", [table.c[name] for name in names])
        statement: Any = postgresql.insert(table).from_select(
            names, select(*[source.c[name] for name in names])
        )
        params: Any = {"rows": rows_json(rows)}
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
    # On SQLite, SQLAlchemy pages the executemany itself within the bound-parameter limit.
    result = connection.execute(statement, params)
    return list(result.all()) if returning else []
