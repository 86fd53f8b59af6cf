"""A SQLite engine keeps its connections: a commit is not a WAL checkpoint. A connection may
be made read-only (a snapshot without the write lock) and its pooled connection writes again
for the next writer.

Closing the last connection to a WAL database checkpoints it and removes the WAL file. With a
connection per transaction every commit paid for that checkpoint (a sixth of a sweep's CPU per
close); pooled, the WAL stays and SQLite checkpoints it now and then by itself.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from store.db import READ_ONLY, make_engine


def test_the_wal_outlives_a_committed_transaction(tmp_path: Path) -> None:
    database = tmp_path / "convlife.db"
    engine = make_engine(f"sqlite:///{database}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        for x in range(3):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
        assert Path(f"{database}-wal").exists()
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 3
    finally:
        engine.dispose()
    assert not Path(f"{database}-wal").exists()  # the last connection closed: checkpointed


def test_threads_share_the_pool_of_a_file_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'convlife.db'}", pool_size=2)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    errors: list[BaseException] = []

    def write(x: int) -> None:
        try:
            for _ in range(20):
                with engine.begin() as connection:
                    connection.execute(text("INSERT INTO t VALUES (:x)"), {"x": x})
        except BaseException as error:  # a connection used across threads raises here
            errors.append(error)

    threads = [threading.Thread(target=write, args=(x,)) for x in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    try:
        assert errors == []
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 80
    finally:
        engine.dispose()


def test_a_memory_database_is_one_per_thread_as_before() -> None:
    engine = make_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
        connection.execute(text("INSERT INTO t VALUES (1)"))
    with engine.connect() as connection:  # the same thread: the same database
        assert connection.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    engine.dispose()


def test_a_read_only_connection_refuses_a_write_at_once_and_its_next_writer_writes(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'convlife.db'}", pool_size=1)  # one, reused
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (x TEXT)")
        with engine.connect().execution_options(**{READ_ONLY: True}) as connection:
            with connection.begin():
                assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
            with pytest.raises(OperationalError, match="readonly"), connection.begin():
                connection.exec_driver_sql("INSERT INTO t VALUES ('a')")
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES ('b')")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT x FROM t").all() == [("b",)]
    finally:
        engine.dispose()
