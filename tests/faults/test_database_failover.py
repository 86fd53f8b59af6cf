"""The database fails the way a failover or a load spike makes it fail: nothing is lost and
nothing is dead-lettered, since none of it is the events' fault.

- Read-only failover: every new session of the database is read-only (as on a replica), its
  sessions are cut, then it is writable again. Batches fail with "cannot execute … in a
  read-only transaction" and are retried until it heals.
- Pool timeout: a worker of 8 threads shares 2 pooled connections and waits at most 0.2 s for
  one, while an account's batches are held on a lock: the others time out on the pool and are
  retried.

The database is the test's own (tests/faults/conftest.py); only its settings are changed.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_ADMIN
from tests.faults.harness import CONVERSATIONS, Driver, Stack, assert_nothing_lost_or_doubled

READ_ONLY_SECONDS = 6


def _database(stack: Stack) -> str:
    return stack.database_url.rsplit("/", 1)[1]


def _admin(statement: str) -> None:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


def _cut_sessions(name: str) -> None:
    _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    )


def test_a_read_only_failover_mid_stream_loses_nothing_and_dead_letters_nothing(
    stack: Stack,
) -> None:
    name = _database(stack)
    driver = Driver()
    events = driver.workload(CONVERSATIONS)
    stack.worker()
    stack.start("beat")
    driver.send(stack.broker_url, events[: len(events) // 3], 5)

    _admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    _cut_sessions(name)  # the old primary's sessions end; every new one is read-only
    stack.engine.dispose()
    sender = threading.Thread(
        target=driver.send, args=(stack.broker_url, events[len(events) // 3 :], 5)
    )
    sender.start()
    time.sleep(READ_ONLY_SECONDS)
    # Writable again; the pooled read-only sessions stay open: convlife must drop them itself.
    _admin(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
    sender.join(timeout=60)

    assert_nothing_lost_or_doubled(stack, driver, len(events))
    assert stack.count(driver, len(events)).dead_lettered == 0
    log = stack.log.read_text(errors="replace")
    assert "read-only transaction" in log  # the failover did reach the batches


def test_a_connection_pool_timeout_loses_nothing_and_dead_letters_nothing(stack: Stack) -> None:
    stack.env.update({"CONVLIFE_DATABASE_POOL_SIZE": "1", "CONVLIFE_DATABASE_POOL_TIMEOUT": "0.2"})
    driver = Driver()
    events = driver.workload(CONVERSATIONS)
    stack.start("worker", "--pool", "threads", "--concurrency", "8")
    stack.start("beat")
    # Hold the first account's batches (each waits for this lock holding its connection).
    holder = create_engine(stack.database_url)
    held = holder.connect()
    held.execute(
        text("SELECT pg_advisory_lock(:class, hashtext(:account))"),
        {"class": 0x636C, "account": f"{driver.run}-a0"},
    )
    try:
        driver.send(stack.broker_url, events, 5)
        time.sleep(4)
    finally:
        held.close()
        holder.dispose()  # the session ends, and its lock with it

    assert_nothing_lost_or_doubled(stack, driver, len(events))
    assert stack.count(driver, len(events)).dead_lettered == 0
    assert "QueuePool limit" in stack.log.read_text(errors="replace")  # it did time out
