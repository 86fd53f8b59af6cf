"""A pooled PostgreSQL connection is pinged at checkout only after it has rested.

A ping is a round trip: a message of one event checks out two connections (its transaction,
then the relay's), so pinging every checkout cost two of its fifteen round trips. A connection
that rested `PING_AFTER_IDLE` seconds or more is the kind a server restart or an idle timeout
kills, and is still pinged and replaced when dead."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from gateway.context import Gateway
from service.settings import Settings
from store import db


@pytest.fixture
def engine(postgres_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    """An engine of one pooled connection; `request.param`, when given, is its rest before a
    ping (the default otherwise)."""
    rest = getattr(request, "param", db.PING_AFTER_IDLE)
    engine = db.make_engine(postgres_url, pool_size=1, ping_after_rest=rest)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the dialect's pings (the real ones still go to the server)."""
    seen: list[int] = []
    ping = engine.dialect.do_ping

    def counted(dbapi_connection: object) -> bool:
        seen.append(1)
        return ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted)
    return seen


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def kill(postgres_url: str, pid: int) -> None:
    other = db.make_engine(postgres_url)
    with other.begin() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    other.dispose()


def test_a_connection_used_a_moment_ago_is_not_pinged(engine: Engine, pings: list[int]) -> None:
    first = backend_pid(engine)
    for _ in range(5):
        assert backend_pid(engine) == first  # the same pooled connection each time
    assert pings == []


@pytest.mark.parametrize("engine", [0.0], indirect=True)  # rested long enough at once
def test_a_connection_that_rested_is_pinged(engine: Engine, pings: list[int]) -> None:
    backend_pid(engine)
    backend_pid(engine)
    assert pings == [1]


@pytest.mark.parametrize("engine", [0.0], indirect=True)
def test_a_rested_connection_found_dead_is_replaced_before_use(
    engine: Engine, postgres_url: str, pings: list[int]
) -> None:
    dead = backend_pid(engine)
    kill(postgres_url, dead)
    assert backend_pid(engine) != dead  # no error: the checkout replaced it
    assert pings == [1]


def test_the_gateway_pings_at_every_checkout(postgres_url: str, redis_url: str) -> None:
    """A gateway request that met a connection killed a moment ago would be answered with an
    error (nobody retries it, as a worker retries a batch): its engine pings every time."""
    settings = Settings(database_url=postgres_url, broker_url=redis_url)  # type: ignore[arg-type]
    gateway = Gateway.build(settings, insecure_no_auth=True)
    try:
        dead = backend_pid(gateway.engine)
        kill(postgres_url, dead)
        assert backend_pid(gateway.engine) != dead  # no error: replaced at checkout
    finally:
        gateway.close()


def test_a_connection_killed_while_in_use_fails_once_then_the_pool_recovers(
    engine: Engine, postgres_url: str, pings: list[int]
) -> None:
    dead = backend_pid(engine)
    kill(postgres_url, dead)
    # Not rested, so not pinged: the statement meets the dead connection, which is an outage
    # to its caller (service/failures.py retries it) ...
    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    # ... and the pool has let go of it: the next checkout connects anew.
    assert backend_pid(engine) != dead
    assert pings == []
