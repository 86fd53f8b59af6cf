"""Engines for PostgreSQL and SQLite, and the column types both share."""

from __future__ import annotations

import fcntl
import functools
import json
import os
import threading
import time
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import orjson
from psycopg.types.array import ListBinaryDumper
from sqlalchemy import (
    Column,
    DateTime,
    Table,
    Text,
    bindparam,
    cast,
    event,
    func,
    literal_column,
    select,
    true,
)
from sqlalchemy import column as sql_column
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect, Engine, Row, create_engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.sql.dml import Insert, ReturningInsert
from sqlalchemy.sql.selectable import Select, TableValuedAlias
from sqlalchemy.types import NullType, TypeDecorator

from store import sqlite_writes


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

    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # SQLite's naive UTC text, written here in one step: the generic path (this type's
        # process_bind_param, then the SQLite type's own formatting through a dict) cost 11 µs a
        # value, two thirds of it in `datetime.replace` and the dict; this costs 4. The text is
        # the same: `YYYY-MM-DD HH:MM:SS.ffffff`, SQLAlchemy's default storage format.
        def utc_text(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime: convlife stores aware UTC datetimes only")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return _SQLITE_TEXT % (
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
            )

        return utc_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if (parse := self.impl_instance.result_processor(dialect, coltype)) is not None:
            # SQLite's text, made an aware UTC datetime by one C call (0.4 µs) where
            # SQLAlchemy's parse and then `datetime.replace(tzinfo=UTC)` took 4: a batch's read
            # phase parses every stored time of its conversations, inside the write turn.
            def parse_utc(value: str | None) -> datetime | None:
                if value is None:
                    return None
                try:
                    return _from_iso(value + "+00:00")
                except (TypeError, ValueError):
                    pass  # not naive text (a number, or text with an offset): the long way
                parsed = parse(value)
                assert isinstance(parsed, datetime)
                return (
                    parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
                )

            return parse_utc

        # The driver hands out datetimes itself (psycopg: aware, in the session's time zone,
        # which convlife sets to UTC): one call per value, and none of the conversion when it is
        # UTC already. Read in bulk (a batch's conversations), the two calls of the generic
        # TypeDecorator path cost a tenth of the read phase.
        def process(value: datetime | None) -> datetime | None:
            if value is None or value.tzinfo is UTC:
                return value
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

        return process


_SQLITE_TEXT = "%04d-%02d-%02d %02d:%02d:%02d.%06d"
_from_iso = datetime.fromisoformat

PING_AFTER_IDLE = 1.0
"""Seconds a pooled PostgreSQL connection may rest before its next checkout pings it."""


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    pool_timeout: float = 30.0,
    ping_after_rest: float = PING_AFTER_IDLE,
    **kwargs: Any,
) -> Engine:
    """An engine for `url`. Connects lazily; call it after a fork, never at import time.

    SQLite gets WAL, a busy timeout, and `BEGIN IMMEDIATE` for every transaction, so that
    several worker processes take the write lock up front instead of failing to upgrade. Both
    keep connections in a pool (`pool_size` kept, as many again at peak, `pool_timeout` seconds
    to wait for one). For SQLite that matters more than it seems: closing the last connection
    to a WAL database checkpoints and removes the WAL, so a connection per transaction (as
    until issue 15) made every commit a checkpoint: a sixth of a sweep's CPU per close.

    `hide_parameters`: an error names the statement, never the values bound to it, so a
    payload's content (what a contact wrote, an id with a newline in it) never reaches a log.

    `ping_after_rest` (PostgreSQL): seconds a pooled connection may rest before its checkout
    pings it (`_ping_after_rest`); 0 pings at every checkout, for a caller whose failures
    nobody retries for it, as the gateway's requests.
    """
    kwargs.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        if _database_file(make_url(url).database) is None:
            # Each connection to `:memory:` is a database of its own: one per thread, as
            # SQLAlchemy does for it by default (a test's database, never a deployment's).
            engine = create_engine(url, **kwargs)
        else:
            engine = create_engine(
                url,
                connect_args={"timeout": 30},
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=pool_timeout,
                **kwargs,
            )
        _configure_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=pool_timeout,
        **kwargs,
    )
    _configure_postgresql(engine, ping_after_rest)
    return engine


def _configure_postgresql(engine: Engine, ping_after_rest: float) -> None:
    _ping_after_rest(engine, ping_after_rest)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Every session in UTC, whatever the server's TimeZone: `timestamptz + interval '1 day'`
        # is then exactly 24 h, never 23 or 25 across a daylight-saving change.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()
        dbapi_connection.adapters.register_dumper(BinaryTexts, ListBinaryDumper)


class BinaryTexts(list[str]):
    """Strings that a PostgreSQL statement takes as one `text[]` parameter in psycopg's binary
    format (each engine's connections are told so at connect): the server copies each string
    as it is, where a JSON or text-array parameter makes it scan each one for quotes and
    escapes. Bind it through `binary_texts(name)`.

    For the decisions' `data` (a JSON document of ~500 bytes each): inside the batch's JSON
    rows, PostgreSQL spent 11-13 µs a decision parsing them back out (json_to_recordset);
    a binary array of the same strings, 2.6 µs (scratch measurement, 2,000 rows a statement).
    psycopg's text format for arrays quotes each element in Python: slower than either."""


def binary_texts(name: str) -> TableValuedAlias:
    """`unnest(:name) WITH ORDINALITY AS name(value, n)`: the strings of a `BinaryTexts`
    parameter as rows, numbered from 1 in the list's order (to join to the rows they belong
    to)."""
    return (
        func.unnest(cast(bindparam(name, type_=NullType()), postgresql.ARRAY(Text)))
        .table_valued("value", with_ordinality="n")
        .render_derived(name=name)
    )


def _ping_after_rest(engine: Engine, seconds: float) -> None:
    """Ping a pooled connection at checkout only if it has rested `seconds` or more since its
    checkin (SQLAlchemy's `pool_pre_ping` pings at every checkout).

    A ping is a round trip, and a message of one event checks out a connection twice (its
    transaction, then the relay's): two of its 15 round trips. A connection checked in a moment
    ago is as good as the statement that just ran on it; one that rested is the kind a server
    restart or an idle timeout kills, and a dead one is replaced here (the pool retries the
    checkout on `DisconnectionError`). A connection killed within the last second fails its
    first statement instead, which the callers already treat as an outage and retry
    (service/failures.py: the batch rolls back, the pool is dropped)."""

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["rested_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        rested_since = record.info.pop("rested_since", None)
        if rested_since is None or time.monotonic() - rested_since < seconds:
            return  # just connected, or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError(f"pooled connection found dead: {error}") from error


def _configure_sqlite(engine: Engine) -> None:
    path = _database_file(engine.url.database)
    turns = WriterTurns(path + "-writer") if path else None
    if turns is not None:
        _TURNS[engine] = turns

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin() below decide
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if turns is not None:
            # Checkpoints are the workers' job, after a unit of work when one is due and outside
            # the write turn (`checkpoint_when_due`); the automatic one, run by a COMMIT that
            # finds 1,000 pages in the WAL (SQLite's default), ran inside the turn. This bound
            # stays as a backstop for a writer that never checkpoints (40 MB of 4 KB pages).
            cursor.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_BACKSTOP}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # `query_only` is the connection's until set again: a snapshot turns it on, a writer off.
        if connection.get_execution_options().get(READ_ONLY, False):
            if not connection.info.get(READ_ONLY):
                connection.exec_driver_sql("PRAGMA query_only = ON")
                connection.info[READ_ONLY] = True
            connection.exec_driver_sql("BEGIN")  # a snapshot: no write lock, no turn
            return
        if connection.info.get(READ_ONLY):
            connection.exec_driver_sql("PRAGMA query_only = OFF")
            connection.info[READ_ONLY] = False
        if turns is None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        turns.wait()
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            turns.done()
            raise

    if turns is not None:
        # Both fire just before the driver's COMMIT/ROLLBACK: the next writer's BEGIN IMMEDIATE
        # then finds the lock a commit away at most, which SQLite's own wait (1 ms first) covers.
        event.listen(engine, "commit", lambda _connection: turns.done(committing=True))
        event.listen(engine, "rollback", lambda _connection: turns.done())


_TURNS: weakref.WeakKeyDictionary[Engine, WriterTurns] = weakref.WeakKeyDictionary()


def another_writer_holds_the_turn(engine: Engine) -> bool:
    """SQLite: whether a writer of this engine's database would now wait for another's turn (a
    glance: it may change at once). False for a database without turns (PostgreSQL, memory)."""
    turns = _TURNS.get(engine)
    return turns is not None and turns.taken()


@contextmanager
def keeping_the_turn(engine: Engine) -> Iterator[None]:
    """SQLite: a unit of work of two transactions in a row (a batch, then the relay of its
    decisions) takes the write turn once. The first transaction's commit keeps the turn for the
    second, which passes it on just before its own COMMIT, as every writer does.

    Without it, the relay asked for the turn again right after the batch's commit, and waited
    for the whole batch of the other worker process (~35 ms of 500 routed inbound) with nothing
    to do: the parsing and deciding of its next message, which could have run meanwhile, came
    only after, while the turn sat free. The kept turn puts the batch's COMMIT inside the turn;
    the WAL checkpoint SQLite ran in it moved out (`checkpoint_outside_the_turn`). PostgreSQL
    has no turns: nothing changes there."""
    turns = _TURNS.get(engine)
    if turns is None:
        yield
        return
    with turns.keep():
        yield


AUTOCHECKPOINT_BACKSTOP = 10_000
"""Pages in a SQLite WAL at which a COMMIT checkpoints by itself (SQLite's default is 1,000)."""


def checkpoint_outside_the_turn(engine: Engine) -> None:
    """SQLite: copy what the WAL holds into the database file (a passive checkpoint: it waits
    for no reader or writer, and leaves what it cannot copy for the next one), outside any
    transaction and write turn, while the other writers go on.

    A worker calls it after a unit of work (paced: `checkpoint_when_due`). With SQLite's
    automatic checkpoint, the COMMIT that crossed 1,000 pages copied them and synced the files;
    once the turn is kept from a batch to its relay (`keeping_the_turn`), that COMMIT is inside
    the turn, where it cost more than the relay's second wait for the turn had: default run,
    SQLite, 100,000 routed inbound, the turn kept and checkpoints here, against neither: 1.12x,
    1.15x, 1.20x in three interleaved pairs; the turn kept with automatic checkpoints: 0.95x,
    1.08x, 1.01x."""
    if _TURNS.get(engine) is None:
        return
    with engine.connect() as connection:
        # The driver's own connection, in autocommit: SQLAlchemy would begin a transaction
        # (and take the turn) for the PRAGMA, and a checkpoint cannot run inside one anyway.
        driver_connection = connection.connection.dbapi_connection
        assert driver_connection is not None
        driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


CHECKPOINT_EVERY = 0.25
"""Seconds a worker process lets pass between its checkpoints of a SQLite database."""

_LAST_CHECKPOINT: weakref.WeakKeyDictionary[Engine, tuple[int, float]] = weakref.WeakKeyDictionary()


def checkpoint_when_due(engine: Engine, every: float | None = None) -> bool:
    """SQLite: `checkpoint_outside_the_turn`, unless this process checkpointed this database
    less than `every` seconds (default `CHECKPOINT_EVERY`) ago; returns whether it did.
    Workers call it after each unit of work.

    A checkpoint after every unit copied each page as often as units changed it, and synced
    the database file each time: ~650 µs for a message of one event, whose own commit costs
    30-50. Paced, a page changed by several units is copied once, and a process syncs at most
    four times a second; the WAL holds what a quarter of a second writes, far under the
    backstop. Default run, SQLite, 100,000 routed inbound, three interleaved pairs against a
    checkpoint after every unit: 4,961/4,637/4,642 against 4,292/4,437/4,780 events/s (the
    process tree's CPU for the run: 31.8/34.1/34.2 s against 36.4/35.6/32.9 s)."""
    if _TURNS.get(engine) is None:
        return False
    pid, now = os.getpid(), time.monotonic()
    last = _LAST_CHECKPOINT.get(engine)
    interval = CHECKPOINT_EVERY if every is None else every
    if last is not None and last[0] == pid and now - last[1] < interval:
        return False
    checkpoint_outside_the_turn(engine)
    _LAST_CHECKPOINT[engine] = (pid, now)
    return True


READ_ONLY = "convlife_read_only"
"""SQLite: the execution option of a connection that only reads (`engine.connect()
.execution_options(**{READ_ONLY: True})`): its transactions are a WAL snapshot taken without
the write lock or a writer's turn, and any write in them fails at once (`PRAGMA query_only`)
instead of waiting for the lock."""


def _database_file(name: str | None) -> str | None:
    """The file of the SQLite database a URL names (also from a `file:` URI name); None for
    one in memory."""
    database = name or ""
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
        if database.startswith("//"):  # file://host/path: the host is empty or localhost
            database = "/" + database[2:].split("/", 1)[-1]
    if not database or database == ":memory:" or "mode=memory" in (name or ""):
        return None
    return database


class WriterTurns:
    """Writers of one SQLite file take turns, each starting as soon as the last one is done.

    SQLite has one write lock, and a writer that finds it taken sleeps in its busy handler,
    1, 2, 5 … 25, 50, 100 ms at a time: with two worker processes, the lock sat free while both
    slept, and `convlife run` routed 2,570 events/s against 4,523/s with one process. Here a
    writer first waits its turn: a thread lock within the process, and across processes an
    exclusive `flock` on `<database>-writer`, polled every `NAP` seconds. The turn is only a
    queue in front of SQLite's lock, never a replacement: a writer that waited `patience`
    seconds goes on to `BEGIN IMMEDIATE` (and SQLite's own wait) without it, so a stuck
    process delays the others, never deadlocks them; a thread that already holds the turn (a
    second connection of its own) does not wait for itself.
    """

    NAP = 0.0005

    def __init__(self, path: str, patience: float = 30.0) -> None:
        self._path = path
        self._patience = patience
        self._threads = threading.Lock()
        self._holder = threading.local()
        self._fd: int | None = None
        self._fd_pid = 0

    def wait(self) -> None:
        if getattr(self._holder, "kept", False):
            # The turn a transaction of this block ended, kept for this one: once, its own end
            # passes the turn on as usual.
            self._holder.kept = self._holder.keeping = False
            self._holder.depth = 1
            return
        if depth := getattr(self._holder, "depth", 0):
            self._holder.depth = depth + 1  # this thread's own turn: SQLite decides, as
            return  # without turns; the turn ends with the outermost transaction
        give_up = time.monotonic() + self._patience
        if not self._threads.acquire(timeout=self._patience):
            return
        try:
            fd = self._file()
        except OSError:
            # No turn file (a read-only directory): SQLite's own lock and wait, as before.
            self._threads.release()
            return
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > give_up:
                    self._threads.release()
                    return
                time.sleep(self.NAP)
        self._holder.depth = 1

    def taken(self) -> bool:
        """Whether another thread or process holds the turn now (tried without waiting)."""
        if getattr(self._holder, "depth", 0) or getattr(self._holder, "kept", False):
            return False  # this thread's own
        if not self._threads.acquire(blocking=False):
            return True
        try:
            fd = self._file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        except OSError:
            return False  # no turn file: no turns
        finally:
            self._threads.release()

    def done(self, *, committing: bool = False) -> None:
        depth = getattr(self._holder, "depth", 0)
        if depth == 0:
            return  # no turn taken (waited out its patience)
        self._holder.depth = depth - 1
        if depth > 1:
            return
        if committing and getattr(self._holder, "keeping", False):
            self._holder.kept = True  # for the next transaction of this thread (`keep`)
            return
        self._release()

    @contextmanager
    def keep(self) -> Iterator[None]:
        """Within the block, the turn a committing transaction of this thread ends is kept for
        its next one, which then passes it on as usual; released at the end of the block if
        no transaction came to take it."""
        self._holder.keeping = True
        try:
            yield
        finally:
            self._holder.keeping = False
            if getattr(self._holder, "kept", False):
                self._holder.kept = False
                self._release()

    def _release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()

    def _file(self) -> int:
        # One open file per process: a forked child must not share its parent's (a flock
        # belongs to the open file, so parent and child would hold the same turn).
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = os.getpid()
        return self._fd


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


def each_key(keys: TableValuedAlias, lookup: Select[Any], name: str) -> Select[Any]:
    """`lookup` run once per row of `keys` (a `rows_param`): a SELECT whose WHERE names the key
    row's columns, made a LATERAL subquery (`keys JOIN LATERAL (lookup OFFSET 0) ON true`).
    Selects the lookup's columns.

    A join of a record set to a table leaves the access path to the planner, which counts
    `json_to_recordset` as 100 rows whatever the batch and prices one index probe per key above
    a scan of a table of up to some 40,000 rows: it hashed the keys and read the whole table
    once per statement (in the default run's inbound phase, 5.6 million rows of
    `conversations` read for 100,000 events; a platform sending one event per message paid a
    scan of the table per event). `OFFSET 0` keeps the subquery from being merged into a join,
    so the plan is a probe per key. Which index it probes comes from the table's statistics:
    before a table's first ANALYZE the planner guessed wrong (service/statistics.py takes them
    early). Rows come out in the order of `keys`, each key's lookup in turn: a lookup that
    locks (`with_for_update`) locks in that order.
    """
    found = lookup.offset(literal_column("0")).lateral(name)
    return select(found).select_from(keys).join(found, true())


def keys_json(keys: Iterable[Sequence[str]]) -> str:
    """Keys (tuples of text) as one JSON array of arrays: SQLite's `json_each(:keys)`, each key
    read back with `value ->> 0`, `value ->> 1`, … (orjson, as `rows_json`)."""
    listed = [list(key) for key in keys]
    try:
        return orjson.dumps(listed).decode()
    except orjson.JSONEncodeError:
        return json.dumps(listed, separators=(",", ":"))


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
    gets the rows bound by hand (store/sqlite_writes.py): executemany, or multi-row VALUES
    pages when rows are returned.
    """
    if not rows:
        return []
    dialect = connection.dialect.name
    if dialect == "sqlite":
        return sqlite_writes.insert_rows(
            connection, table, rows, key=key, on_conflict=on_conflict, returning=returning
        )
    if dialect != "postgresql":
        raise NotImplementedError(f"convlife supports PostgreSQL and SQLite, not {dialect}")
    statement = insert_from_json(table, tuple(rows[0]), tuple(key), on_conflict, tuple(returning))
    result = connection.execute(statement, {"rows": rows_json(rows)})
    return list(result.all()) if returning else []


@functools.lru_cache(maxsize=64)
def insert_from_json(
    table: Table,
    names: tuple[str, ...],
    key: tuple[str, ...],
    on_conflict: str,
    returning: tuple[Column[Any], ...],
) -> Insert | ReturningInsert[Any]:
    """The statement `bulk_insert` sends for one shape of rows, built once and kept: building
    it (and SQLAlchemy's cache key of it, which a kept statement memoizes) cost more CPU than
    the round trip for a message of one event."""
    source = rows_param("rows", [table.c[name] for name in names])
    statement = postgresql.insert(table).from_select(
        list(names), select(*[source.c[name] for name in names])
    )
    if on_conflict == "update":
        statement = statement.on_conflict_do_update(
            index_elements=list(key),
            set_={name: statement.excluded[name] for name in names if name not in key},
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(key))
    return statement.returning(*returning) if returning else statement
