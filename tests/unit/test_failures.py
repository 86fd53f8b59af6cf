"""Whose fault an error is (service/failures.py): the table that decides between retrying a
message and dead-lettering an event, and the retry delays."""

from __future__ import annotations

import random
import sqlite3

import psycopg.errors as pg
import pytest
import sqlalchemy.exc as sa
from billiard.exceptions import SoftTimeLimitExceeded  # type: ignore[import-untyped]
from kombu.exceptions import OperationalError as BrokerError
from redis import exceptions as redis_errors

from events.parsing import InvalidEvent
from service.failures import Fault, fault_of, retry_delay


def wrapped(kind: type[sa.DBAPIError], orig: Exception, **kw: bool) -> sa.DBAPIError:
    """An error as SQLAlchemy raises it: the driver's error inside."""
    return kind("INSERT …", {}, orig, **kw)


ENVIRONMENT: dict[str, BaseException] = {
    "server gone": wrapped(sa.OperationalError, pg.OperationalError("server closed")),
    "admin shutdown": wrapped(sa.OperationalError, pg.AdminShutdown("terminating")),
    "deadlock": wrapped(sa.OperationalError, pg.DeadlockDetected("deadlock")),
    "serialization failure": wrapped(sa.OperationalError, pg.SerializationFailure("retry")),
    "read-only after a failover": wrapped(
        sa.InternalError,
        pg.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction"),
    ),
    "interface error": wrapped(sa.InterfaceError, pg.InterfaceError("connection closed")),
    "connection invalidated": wrapped(sa.DBAPIError, pg.Error("lost"), connection_invalidated=True),
    "not migrated": wrapped(sa.ProgrammingError, pg.UndefinedTable("no relation")),
    "no privilege on a replica": wrapped(
        sa.ProgrammingError, pg.InsufficientPrivilege("permission denied")
    ),
    "too many connections": wrapped(sa.OperationalError, pg.TooManyConnections("too many")),
    "disk full": wrapped(sa.OperationalError, pg.DiskFull("no space")),
    "lock not available": wrapped(sa.OperationalError, pg.LockNotAvailable("nowait")),
    "statement timeout": wrapped(sa.OperationalError, pg.QueryCanceled("timeout")),
    "server internal error": wrapped(sa.InternalError, pg.InternalError_("XX000")),
    "sqlite read-only file": wrapped(
        sa.OperationalError, sqlite3.OperationalError("attempt to write a readonly database")
    ),
    "sqlite locked": wrapped(sa.OperationalError, sqlite3.OperationalError("database is locked")),
    "pool exhausted": sa.TimeoutError("QueuePool limit of size 5 overflow 5 reached"),
    "pre-ping disconnection": sa.DisconnectionError("connection dead"),
    "redis away": redis_errors.ConnectionError("refused"),
    "redis timeout": redis_errors.TimeoutError("timed out"),
    "redis loading": redis_errors.BusyLoadingError("loading"),
    "redis read-only replica": redis_errors.ReadOnlyError("READONLY"),
    "redis out of memory": redis_errors.ResponseError("OOM command not allowed"),
    "broker away": BrokerError("connection refused"),
    "socket refused": ConnectionRefusedError("refused"),
    "socket timeout": TimeoutError("timed out"),
    "soft time limit": SoftTimeLimitExceeded(),
}

THE_EVENTS: dict[str, BaseException] = {
    "a value the database refuses": wrapped(sa.DataError, pg.InvalidDatetimeFormat("bad date")),
    "a date out of range": wrapped(sa.DataError, pg.DatetimeFieldOverflow("out of range")),
    "an integrity error": wrapped(sa.IntegrityError, pg.UniqueViolation("duplicate")),
    "a bug in our code": ValueError("cannot apply"),
    "a missing key": KeyError("conversation"),
    "a type error": TypeError("unsupported"),
    "recursion": RecursionError("too deep"),
    "an invalid event": InvalidEvent("contact_id: Field required", "{}"),
}


@pytest.mark.parametrize("name", list(ENVIRONMENT))
def test_an_error_of_the_surroundings_is_never_the_events_fault(name: str) -> None:
    assert fault_of(ENVIRONMENT[name]) is Fault.ENVIRONMENT


@pytest.mark.parametrize("name", list(THE_EVENTS))
def test_an_error_that_may_come_from_the_content_is_looked_for_in_the_events(name: str) -> None:
    assert fault_of(THE_EVENTS[name]) is Fault.EVENT


@pytest.mark.parametrize("attempt", range(40))
def test_a_retry_waits_at_most_30_seconds_and_a_sixth_of_the_visibility_timeout(
    attempt: int,
) -> None:
    for timeout in (10, 90, 3600):
        delay = retry_delay(attempt, timeout, random.Random(attempt))
        assert 0 < delay <= min(30, timeout / 6)


def test_retry_delays_grow_exponentially_from_half_a_second_to_the_cap() -> None:
    lowest = [retry_delay(n, 3600, random.Random()) for n in range(8)]
    assert 0.5 <= lowest[0] <= 1
    assert 1 <= lowest[1] <= 2
    assert 4 <= lowest[3] <= 8
    assert 15 <= lowest[7] <= 30


def test_retry_delays_are_jittered_so_workers_do_not_come_back_in_step() -> None:
    rng = random.Random(7)
    delays = {round(retry_delay(6, 3600, rng), 3) for _ in range(50)}
    assert len(delays) > 40
    assert min(delays) >= 15
    assert max(delays) <= 30
