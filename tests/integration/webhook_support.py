"""What the webhook integration tests share: a fast delivery config, the clock, a wait, and a
database of the test's own on each store (`fresh`, a fixture: import it into the test module)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from policies.delivery import CircuitPolicy, DeliveryConfig, RetryPolicy
from store.db import make_engine
from store.migrate import upgrade
from tests.conftest import POSTGRES_ADMIN
from tests.faults.harness import fresh_database

FAST = DeliveryConfig(
    timeout=2.0,
    retry=RetryPolicy(base=0.5, cap=5.0, give_up_after=timedelta(minutes=5)),
    circuit=CircuitPolicy(failures_to_open=5, cool_down=timedelta(seconds=2), max_in_flight=4),
    max_in_flight=16,
    budget=2.0,
    poll=0.05,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A database of this test's own: a dispatcher claims for every subscription there is."""
    if request.param == "sqlite":
        url, drop = request.getfixturevalue("sqlite_url"), None
    else:
        request.getfixturevalue("postgres_url")  # skips/fails like the rest without PostgreSQL
        url, drop = fresh_database(POSTGRES_ADMIN)
        upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()
    if drop is not None:
        drop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
