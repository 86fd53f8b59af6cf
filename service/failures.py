"""Whose fault an error is, and how long to wait before trying again: the one place that decides
between retrying a batch and dead-lettering an event.

The rule: an event is dead-lettered only for something about the event itself (it does not
validate, or its own processing keeps failing while the rest of its batch applies). An error
of the surroundings (the database is away, read-only after a failover, out of connections,
deadlocked, slow; Redis or the broker is away) is never the event's fault: its batch is
retried with backoff, as long as it takes, and never acked away.
"""

from __future__ import annotations

import random
from enum import Enum

from billiard.exceptions import SoftTimeLimitExceeded  # type: ignore[import-untyped]
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    InternalError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout


class Fault(Enum):
    ENVIRONMENT = "environment"
    """Not the event's fault: retry the whole batch later, never dead-letter."""
    EVENT = "event"
    """Maybe the content's fault: find the event (split the batch), dead-letter it if it alone
    keeps failing."""


_ENVIRONMENT_TYPES: tuple[type[BaseException], ...] = (
    OperationalError,  # server gone, admin shutdown, deadlock, serialization failure
    InternalError,  # "cannot execute … in a read-only transaction" after a failover
    InterfaceError,  # the driver lost its connection
    DisconnectionError,  # the checkout ping found a rested connection dead (store/db.py)
    PoolTimeout,  # every pooled connection is busy
    RedisError,  # streams or metrics Redis away, loading, read-only, out of memory
    BrokerError,  # the broker is away
    ConnectionError,  # sockets: refused, reset
    TimeoutError,  # sockets: timed out
    SoftTimeLimitExceeded,  # the task ran past its time limit: the database was slow
)

_ENVIRONMENT_SQLSTATE_CLASSES = {
    "08",  # connection exception
    "25",  # invalid transaction state (read-only transaction)
    "40",  # transaction rollback: deadlock, serialization failure
    "42",  # the schema is not what the code expects (not migrated yet, privileges)
    "53",  # insufficient resources: disk full, out of memory, too many connections
    "55",  # object not in prerequisite state: lock not available
    "57",  # operator intervention: shutdown, query cancelled (statement timeout)
    "58",  # system error: I/O
    "XX",  # internal error of the server
}


def fault_of(error: BaseException) -> Fault:
    """Classify an error raised while applying a batch."""
    if isinstance(error, _ENVIRONMENT_TYPES):
        return Fault.ENVIRONMENT
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return Fault.ENVIRONMENT
        sqlstate = getattr(error.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _ENVIRONMENT_SQLSTATE_CLASSES:
            return Fault.ENVIRONMENT
    return Fault.EVENT


def drop_pooled_connections_after(error: BaseException, engine: Engine) -> None:
    """After a database error of the surroundings, close the pool's idle connections, so the
    next attempt connects afresh. After a failover, a pooled connection may still reach the old
    primary, now a read-only replica, and would fail every retry (a ping only checks that it
    answers)."""
    if isinstance(error, DBAPIError) and fault_of(error) is Fault.ENVIRONMENT:
        engine.dispose()


def retry_delay(attempt: int, visibility_timeout: float, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (0 for the first): exponential from 1 s, capped at
    30 s and at a sixth of the visibility timeout, with equal jitter (half fixed, half random)
    so that workers retrying after one outage do not come back in step.

    The cap keeps a retry's countdown far under the visibility timeout: the Redis transport
    hands a message whose countdown outlives the timeout to another worker early.
    """
    ceiling = min(30.0, visibility_timeout / 6)
    delay = min(ceiling, float(2 ** min(attempt, 16)))
    return delay / 2 + (rng or random).uniform(0, delay / 2)


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
