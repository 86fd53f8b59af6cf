"""SQLite's bulk writes bound by hand (store/sqlite_writes.py) store exactly the text that
SQLAlchemy's own binding stores: the sweep compares times as text, so a second format (no
microseconds when they are 0, a `T`, an offset) would order them wrongly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Boolean, Column, Integer, Interval, MetaData, String, Table, event, text

from store import sqlite_writes
from store.db import UTCDateTime, bulk_insert, make_engine

metadata = MetaData()
sample = Table(
    "sample",
    metadata,
    Column("id", String(20), primary_key=True),
    Column("at", UTCDateTime, nullable=True),
    Column("flag", Boolean, nullable=True),
    Column("after", Interval, nullable=True),
    Column("count", Integer, nullable=True),
)

VALUES: list[dict[str, Any]] = [
    {"at": datetime(2026, 3, 1, 10, 0, tzinfo=UTC), "flag": True, "after": timedelta(days=3)},
    {"at": datetime(2026, 3, 1, 10, 0, 0, 500, tzinfo=UTC), "flag": False, "after": None},
    {"at": datetime(1, 1, 1, 0, 1, tzinfo=timezone(timedelta(minutes=1))), "flag": None},
    {"at": datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "count": 7},
    {"at": None, "flag": True, "after": timedelta(seconds=1, microseconds=5), "count": 0},
]


def raw(engine: Any, prefix: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text("SELECT substr(id, 3), at, flag, after, count FROM sample WHERE id LIKE :p"),
                {"p": f"{prefix}%"},
            ).all()
        ]


@pytest.fixture
def engine(tmp_path: Path) -> Any:
    engine = make_engine(f"sqlite:///{tmp_path / 'writes.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def rows(prefix: str) -> list[dict[str, Any]]:
    columns = ("at", "flag", "after", "count")
    return [{"id": f"{prefix}{i}", **{c: v.get(c) for c in columns}} for i, v in enumerate(VALUES)]


def test_an_insert_stores_the_text_sqlalchemy_stores(engine: Any) -> None:
    with engine.begin() as connection:
        connection.execute(sample.insert(), rows("a-"))
        bulk_insert(connection, sample, rows("b-"), key=["id"], on_conflict="nothing")
    assert raw(engine, "b-") == raw(engine, "a-")
    assert raw(engine, "a-")[0][1] == "2026-03-01 10:00:00.000000"


def test_returning_pages_within_the_parameter_limit_and_skips_conflicts(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_writes, "MAX_VARIABLES", 10)  # 2 rows of 5 per statement
    with engine.begin() as connection:
        bulk_insert(connection, sample, rows("c-")[:2], key=["id"], on_conflict="nothing")
        returned = bulk_insert(
            connection,
            sample,
            rows("c-"),
            key=["id"],
            on_conflict="nothing",
            returning=[sample.c.id],
        )
    assert sorted(row.id for row in returned) == ["c-2", "c-3", "c-4"]
    assert len(raw(engine, "c-")) == 5


def test_returning_inserts_of_any_size_use_a_dozen_statement_texts(engine: Any) -> None:
    """The driver keeps every statement text it prepared, and a prepared multi-row VALUES
    holds memory in proportion to its rows: a text per batch size grew each worker by tens of
    MB. Batches of 1 to 300 rows go in pages of powers of two: 9 texts (1, 2, 4, …, 256), and
    every row is inserted and returned."""
    texts: set[str] = set()

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT"):
            texts.add(statement)

    event.listen(engine, "before_cursor_execute", seen)
    stored = 0
    with engine.begin() as connection:
        for size in range(1, 301):
            batch = [{"id": f"e-{size}-{i}", "count": i} for i in range(size)]
            returned = bulk_insert(
                connection,
                sample,
                batch,
                key=["id"],
                on_conflict="nothing",
                returning=[sample.c.id],
            )
            assert sorted(row.id for row in returned) == sorted(row["id"] for row in batch)
            stored += size
    assert len(texts) == 9
    assert len(raw(engine, "e-")) == stored


@pytest.mark.parametrize("count", [0, 1, 5, 500, 2000, 4096, 10_000])
def test_pages_are_powers_of_two_that_cover_the_rows_in_order(count: int) -> None:
    pages = list(sqlite_writes.pages(count, most=4680))
    assert sum(size for _start, size in pages) == count
    assert [start for start, _size in pages] == [
        sum(s for _, s in pages[:i]) for i in range(len(pages))
    ]
    assert all(size & (size - 1) == 0 and size <= 4096 for _start, size in pages)
    if count <= 4096:
        assert len(pages) == count.bit_count()  # one statement per set bit


def test_an_upsert_overwrites_every_column_but_the_key(engine: Any) -> None:
    first, second = rows("d-")[:1], rows("d-")[1:2]
    second[0]["id"] = first[0]["id"]
    with engine.begin() as connection:
        bulk_insert(connection, sample, first, key=["id"], on_conflict="update")
        bulk_insert(connection, sample, second, key=["id"], on_conflict="update")
        connection.execute(sample.insert(), rows("e-")[1:2])
    assert [r[1:] for r in raw(engine, "d-")] == [r[1:] for r in raw(engine, "e-")]


def test_an_update_by_keys_stores_what_sqlalchemy_stores(engine: Any) -> None:
    with engine.begin() as connection:
        connection.execute(sample.insert(), rows("f-") + rows("g-"))
        values = {"at": VALUES[1]["at"], "flag": False, "after": timedelta(hours=2)}
        sqlite_writes.update_by_keys(connection, sample, values, ["id"], [("f-0",), ("f-3",)])
        connection.execute(sample.update().where(sample.c.id.in_(["g-0", "g-3"])).values(values))
    assert raw(engine, "f-") == raw(engine, "g-")


def test_a_naive_time_is_refused_as_sqlalchemy_refuses_it(engine: Any) -> None:
    bad = [{"id": "h-0", "at": datetime(2026, 3, 1), "flag": None, "after": None, "count": None}]
    with pytest.raises(ValueError, match="naive datetime"), engine.begin() as connection:
        bulk_insert(connection, sample, bad, key=["id"], on_conflict="nothing")


def test_returning_a_column_that_needs_converting_is_a_callers_mistake(engine: Any) -> None:
    # TypeError: the sweep sets a row aside on a ValueError (a row fault), never on a bug.
    with pytest.raises(TypeError, match="cannot return at"), engine.begin() as connection:
        bulk_insert(
            connection,
            sample,
            rows("i-"),
            key=["id"],
            on_conflict="nothing",
            returning=[sample.c.at],
        )
