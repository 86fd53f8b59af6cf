"""SQLite writers take turns (store/db.py WriterTurns): the next writer starts when the last is
done, never deadlocks on a stuck one, and one thread never waits for itself."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from store.db import WriterTurns, _database_file, make_engine
from tests.support import turn_taken


@pytest.fixture
def turn_file(tmp_path: Path) -> str:
    return str(tmp_path / "convlife.db-writer")


taken = turn_taken


@pytest.fixture
def waiting() -> Iterator[list[threading.Thread]]:
    threads: list[threading.Thread] = []
    yield threads
    for thread in threads:
        thread.join(timeout=5)


def test_the_next_writer_waits_until_the_last_one_is_done(
    turn_file: str, waiting: list[threading.Thread]
) -> None:
    first, second = WriterTurns(turn_file), WriterTurns(turn_file)  # as two processes
    first.wait()
    got_it, finish, finished = threading.Event(), threading.Event(), threading.Event()

    def write() -> None:  # a turn is taken and given back by the same thread
        second.wait()
        got_it.set()
        finish.wait(5)
        second.done()
        finished.set()

    thread = threading.Thread(target=write)
    waiting.append(thread)
    thread.start()
    assert not got_it.wait(0.3)  # still waiting while the first writes
    first.done()
    assert got_it.wait(5)
    assert taken(turn_file)
    finish.set()
    assert finished.wait(5)
    assert not taken(turn_file)


def test_a_stuck_writer_delays_the_next_for_its_patience_and_no_longer(turn_file: str) -> None:
    stuck, patient = WriterTurns(turn_file), WriterTurns(turn_file, patience=0.2)
    stuck.wait()
    patient.wait()  # returns without the turn: SQLite's own lock decides from here
    patient.done()  # and ending it releases nothing it did not take
    assert taken(turn_file)
    stuck.done()
    assert not taken(turn_file)


def test_a_thread_that_holds_the_turn_does_not_wait_for_itself(turn_file: str) -> None:
    turns = WriterTurns(turn_file, patience=5)
    turns.wait()
    turns.wait()  # a second transaction of the same thread: no wait (else 5 s here)
    turns.done()
    assert taken(turn_file)  # the outer transaction still holds it
    turns.done()
    assert not taken(turn_file)


def test_threads_of_one_process_take_turns_too(
    turn_file: str, waiting: list[threading.Thread]
) -> None:
    turns = WriterTurns(turn_file)
    turns.wait()
    got_it = threading.Event()
    thread = threading.Thread(target=lambda: (turns.wait(), got_it.set(), turns.done()))
    waiting.append(thread)
    thread.start()
    assert not got_it.wait(0.3)
    turns.done()
    assert got_it.wait(5)


def test_writers_of_two_engines_in_turn_lose_no_update(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    setup = make_engine(url)
    with setup.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))

    def add(times: int) -> None:
        engine = make_engine(url)  # its own turns, as another process's
        for _ in range(times):
            with engine.begin() as connection:
                n = connection.execute(text("SELECT n FROM counter")).scalar_one()
                connection.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})
        engine.dispose()

    threads = [threading.Thread(target=add, args=(50,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with setup.connect() as connection:
        assert connection.execute(text("SELECT n FROM counter")).scalar_one() == 100
    assert (tmp_path / "turns.db-writer").exists()
    assert not taken(str(tmp_path / "turns.db-writer"))


def test_without_a_turn_file_writers_go_on_as_sqlite_alone_would(tmp_path: Path) -> None:
    turns = WriterTurns(str(tmp_path / "no such directory" / "convlife.db-writer"))
    turns.wait()  # cannot make the file (a read-only directory, say): no turn, no error
    turns.done()
    turns.wait()
    turns.done()


@pytest.mark.parametrize(
    ("url", "file"),
    [
        ("sqlite:///{dir}/a.db", "{dir}/a.db"),
        ("sqlite:///file:{dir}/a.db?mode=ro&uri=true", "{dir}/a.db"),
        ("sqlite://", None),
        ("sqlite:///:memory:", None),
    ],
)
def test_the_turn_file_sits_beside_the_database_file(
    tmp_path: Path, url: str, file: str | None
) -> None:
    engine = make_engine(url.format(dir=tmp_path))
    assert _database_file(engine.url.database) == (file.format(dir=tmp_path) if file else None)


def test_a_glance_tells_whether_another_writer_holds_the_turn(turn_file: str) -> None:
    turns = WriterTurns(turn_file)
    assert turns.taken() is False  # free
    other_process = os.open(turn_file, os.O_RDWR | os.O_CREAT)
    fcntl.flock(other_process, fcntl.LOCK_EX)
    try:
        assert turns.taken() is True  # held elsewhere
    finally:
        os.close(other_process)
    turns.wait()
    try:
        assert turns.taken() is False  # this thread's own turn
        seen: list[bool] = []
        other_thread = threading.Thread(target=lambda: seen.append(turns.taken()))
        other_thread.start()
        other_thread.join(5)
        assert seen == [True]  # held by another thread of the process
    finally:
        turns.done()
    assert turns.taken() is False  # a glance takes nothing
    assert taken(turn_file) is False
