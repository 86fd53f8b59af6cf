"""A unit of work of two SQLite transactions (a batch, then the relay of its decisions) takes the
write turn once (store/db.py `keeping_the_turn`): the first one's commit keeps it for the second,
which passes it on as every writer does. Checkpoints run after the unit of work, outside the turn
(`checkpoint_outside_the_turn`), not inside a COMMIT, and at most once per interval in a worker
process (`checkpoint_when_due`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from store.db import (
    AUTOCHECKPOINT_BACKSTOP,
    checkpoint_outside_the_turn,
    checkpoint_when_due,
    keeping_the_turn,
    make_engine,
)
from tests.support import turn_taken


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'convlife.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER NOT NULL, filler TEXT NOT NULL)"))
    yield engine
    engine.dispose()


def held_elsewhere(engine: Engine) -> bool:
    """Whether a writer holds the turn, as another process would find it."""
    return turn_taken(f"{engine.url.database}-writer")


def write(engine: Engine, rows: int = 1) -> None:
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO t VALUES (:n, :filler)"),
            [{"n": i, "filler": "x" * 500} for i in range(rows)],
        )


def test_a_commit_in_the_block_keeps_the_turn_for_the_next_transaction_only(
    engine: Engine,
) -> None:
    with keeping_the_turn(engine):
        write(engine)
        assert held_elsewhere(engine)  # kept after the batch's commit, for its relay
        write(engine)
        assert not held_elsewhere(engine)  # the relay passed it on at its commit
        write(engine)  # a third transaction takes a turn of its own, as usual
        assert not held_elsewhere(engine)
    assert not held_elsewhere(engine)


def test_a_turn_kept_for_nobody_is_given_back_at_the_end_of_the_block(engine: Engine) -> None:
    with keeping_the_turn(engine):
        write(engine)  # a batch that made no decision: no relay follows
        assert held_elsewhere(engine)
    assert not held_elsewhere(engine)


def failing_batch(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (1, 'x')"))
        raise RuntimeError("the batch failed")


def test_a_rolled_back_transaction_passes_the_turn_on_at_once(engine: Engine) -> None:
    with keeping_the_turn(engine):
        with pytest.raises(RuntimeError):
            failing_batch(engine)
        assert not held_elsewhere(engine)  # a failed batch has no relay to keep it for
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 0


def batch_then_failure(engine: Engine) -> None:
    with keeping_the_turn(engine):
        write(engine)
        raise RuntimeError("the relay could not start")


def test_an_exception_in_the_block_gives_the_kept_turn_back(engine: Engine) -> None:
    with pytest.raises(RuntimeError):
        batch_then_failure(engine)
    assert not held_elsewhere(engine)


def test_without_turns_the_block_changes_nothing(tmp_path: Path) -> None:
    engine = make_engine("sqlite://")  # in memory: no turn file, no turns
    with keeping_the_turn(engine), engine.begin() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
    checkpoint_outside_the_turn(engine)  # nothing to do, and no error


def rows_in_the_database_file(engine: Engine) -> int:
    """The table's rows as the database file alone holds them (the WAL ignored: `immutable`)."""
    uri = f"file:{engine.url.database}?immutable=1"
    reader = sqlite3.connect(uri, uri=True)
    try:
        return int(reader.execute("SELECT count(*) FROM t").fetchone()[0])
    finally:
        reader.close()


def test_a_commit_leaves_its_pages_in_the_wal_and_the_checkpoint_copies_them(
    engine: Engine,
) -> None:
    settled = sqlite3.connect(str(engine.url.database))  # the table itself into the file
    settled.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    settled.close()
    assert rows_in_the_database_file(engine) == 0
    # 10,000 rows of ~500 bytes: some 1,250 pages, past SQLite's default of 1,000 at which
    # the COMMIT itself would have checkpointed, inside the turn.
    write(engine, rows=10_000)
    assert rows_in_the_database_file(engine) == 0  # the COMMIT did not checkpoint
    checkpoint_outside_the_turn(engine)
    assert rows_in_the_database_file(engine) == 10_000
    assert not held_elsewhere(engine)  # the checkpoint takes no turn


def test_the_automatic_checkpoint_is_only_a_backstop(engine: Engine) -> None:
    with engine.connect() as connection:
        pages: Any = connection.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
    assert pages == AUTOCHECKPOINT_BACKSTOP > 1000


def test_a_worker_checkpoints_at_most_once_per_interval(engine: Engine) -> None:
    """`checkpoint_when_due`: the first unit of work of a process checkpoints; the next ones
    within `every` seconds leave their pages in the WAL; once `every` has passed, the next
    checkpoint copies what they all wrote."""
    write(engine, rows=10)
    assert checkpoint_when_due(engine, every=3600) is True
    assert rows_in_the_database_file(engine) == 10

    write(engine, rows=10)
    assert checkpoint_when_due(engine, every=3600) is False
    write(engine, rows=10)
    assert checkpoint_when_due(engine, every=3600) is False
    assert rows_in_the_database_file(engine) == 10

    assert checkpoint_when_due(engine, every=0) is True
    assert rows_in_the_database_file(engine) == 30
    assert not held_elsewhere(engine)


def test_a_database_without_turns_is_never_checkpointed_by_a_worker() -> None:
    engine = make_engine("sqlite://")  # in memory: no turn file, no WAL of a file
    assert checkpoint_when_due(engine, every=0) is False
