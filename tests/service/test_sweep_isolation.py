"""A row the sweep cannot read or close never stops the others, and a sweep that fails shows.

The bad rows are planted with SQL, as a bug or a hand edit would leave them: a BC timestamp on
PostgreSQL (psycopg cannot read it back), text that is no time on SQLite, a status no code knows.
Each test runs on SQLite and PostgreSQL where the row can exist there; every `now` is chosen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from events.names import HEARTBEAT_KEY, METRICS_SWEEP_KEY, SWEEP_FAILURES_KEY
from observability.health import run_checks
from policies.state import Status
from service.deadlines import sweep
from service.runtime import Runtime
from store.db import make_engine
from store.tables import conversations as conversations_table
from tests.service.builders import T0, account_with, message, minutes, opened
from tests.support import Service, close_refused, new_id

UNREADABLE: dict[str, dict[str, str]] = {
    # PostgreSQL stores it; psycopg refuses to load it ("timestamp too small (before year 1)").
    "bc-timestamp": {"postgresql": "last_activity_at = '0001-12-31 23:59:00+00 BC'"},
    # SQLite keeps datetimes as text: text that is no time cannot be converted on read.
    "not-a-time": {"sqlite": "last_activity_at = 'not a time'"},
    "unknown-status": {
        "postgresql": "status = 'weird'",
        "sqlite": "status = 'weird'",
    },
}


@pytest.fixture
def planted(engine: Engine) -> Iterator[list[tuple[str, str]]]:
    """Rows planted by a test, deleted afterwards: the PostgreSQL database is shared."""
    keys: list[tuple[str, str]] = []
    yield keys
    with engine.begin() as connection:
        for account, conversation in keys:
            connection.execute(
                delete(conversations_table).where(
                    conversations_table.c.account_id == account,
                    conversations_table.c.conversation_id == conversation,
                )
            )


def plant(
    service: Service, planted: list[tuple[str, str]], assignment: str, due: datetime
) -> tuple[str, str]:
    """A due conversation whose row then gets `assignment` (SQL), due before every other."""
    account = account_with(service, close_after="PT1M")
    conversation = new_id("bad")
    service.ingest(opened(account, conversation), T0)
    planted.append((account, conversation))
    with service.runtime.engine.begin() as connection:
        connection.execute(
            text(
                f"UPDATE conversations SET {assignment}, close_due_at = :due "
                "WHERE account_id = :account AND conversation_id = :conversation"
            ),
            {"due": due, "account": account, "conversation": conversation},
        )
    return account, conversation


def quarantined_count(service: Service) -> int:
    return int(service.runtime.redis.hget(METRICS_SWEEP_KEY, "quarantined") or 0)


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_an_unreadable_row_is_quarantined_and_the_other_accounts_close_in_the_same_sweep(
    service: Service, database_url: str, planted: list[tuple[str, str]], kind: str
) -> None:
    dialect = "postgresql" if database_url.startswith("postgresql") else "sqlite"
    if dialect not in UNREADABLE[kind]:
        pytest.skip(f"{dialect} cannot hold this row")
    good = [account_with(service, close_after="PT1M") for _ in range(3)]
    for account in good:
        service.ingest([opened(account, "c1"), message(account, T0 + minutes(1))], T0 + minutes(1))
    bad_account, bad = plant(service, planted, UNREADABLE[kind][dialect], T0 - minutes(1))
    before = quarantined_count(service)

    sweep(service.runtime, lambda: T0 + minutes(3))  # the bad row is the first claimed

    for account in good:
        assert [d["type"] for d in service.decisions(account)] == ["conversation.auto_closed"]
        assert service.conversation(account, "c1")[0].auto_closed
    [letter] = service.dead_letters(bad)
    assert letter.account_id == bad_account
    assert f"conversation {bad!r} of account {bad_account!r} cannot be closed" in letter.error
    assert "quarantined" in letter.error
    with service.runtime.engine.connect() as connection:
        due = connection.execute(
            text(
                "SELECT close_due_at FROM conversations "
                "WHERE account_id = :account AND conversation_id = :conversation"
            ),
            {"account": bad_account, "conversation": bad},
        ).scalar_one()
    assert due is None  # out of the due set: no sweep trips on it again
    assert quarantined_count(service) - before == 1
    assert service.close_due(T0 + minutes(4), bad_account) == []
    assert len(service.dead_letters(bad)) == 1


def test_a_row_whose_close_cannot_be_written_is_quarantined_and_the_rest_is_written(
    service: Service, database_url: str, planted: list[tuple[str, str]]
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL trigger refuses the write; SQLite runs the same code path")
    good = [account_with(service, close_after="PT1M") for _ in range(2)]
    for account in good:
        service.ingest(opened(account, "c1"), T0)
    bad_account, bad = plant(service, planted, "contact_id = contact_id", T0 - minutes(1))
    # A data exception (SQLSTATE 22000) on closing this one row, as a CHECK or a bad value would
    # raise; the quarantine (an UPDATE that leaves it open) still goes through.
    with close_refused(service.runtime.engine, bad):
        sweep(service.runtime, lambda: T0 + minutes(3))

    for account in good:
        assert [d["type"] for d in service.decisions(account)] == ["conversation.auto_closed"]
    assert service.decisions(bad_account) == []  # its decision went with its failed write
    [letter] = service.dead_letters(bad)
    assert "refused by the test" in letter.error
    state, due = service.conversation(bad_account, bad)
    assert (state.status, due) == (Status.OPEN, None)


def test_a_sweep_that_fails_writes_no_heartbeat_and_counts_the_failure(
    service: Service, tmp_path: Any
) -> None:
    redis = service.runtime.redis
    redis.delete(HEARTBEAT_KEY, SWEEP_FAILURES_KEY)
    errors_before = int(redis.hget(METRICS_SWEEP_KEY, "errors") or 0)
    broken = make_engine(f"sqlite:///{tmp_path}/no/such/dir/convlife.db")
    failing = Runtime(settings=service.runtime.settings, engine=broken, redis=redis)
    clock = iter([T0, T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=1)])

    for _ in range(2):
        with pytest.raises(OperationalError):
            sweep(failing, lambda: next(clock))

    assert redis.get(HEARTBEAT_KEY) is None
    streak = {k.decode(): v.decode() for k, v in redis.hgetall(SWEEP_FAILURES_KEY).items()}
    assert streak["count"] == "2"
    assert streak["since"] == T0.isoformat()
    assert streak["error"].startswith("OperationalError: ")
    assert int(redis.hget(METRICS_SWEEP_KEY, "errors") or 0) - errors_before == 2

    sweep(service.runtime, lambda: T0 + timedelta(seconds=2))

    assert redis.get(HEARTBEAT_KEY) == (T0 + timedelta(seconds=2)).isoformat().encode()
    assert redis.hgetall(SWEEP_FAILURES_KEY) == {}
    broken.dispose()


def test_health_fails_when_sweeps_keep_failing_and_says_how_many_and_since_when(
    service: Service,
) -> None:
    redis = service.runtime.redis
    settings = service.runtime.settings
    redis.set(HEARTBEAT_KEY, T0.isoformat())
    redis.delete(SWEEP_FAILURES_KEY)
    redis.hset(
        SWEEP_FAILURES_KEY,
        mapping={"count": 90, "since": T0.isoformat(), "error": "DataError: timestamp too small"},
    )

    [recent] = run_checks(settings, ("beat",), T0 + timedelta(seconds=5))
    [stale] = run_checks(settings, ("beat",), T0 + timedelta(seconds=45))

    assert recent.ok  # a short streak (a database restart) is reported, not failed
    assert "90 sweeps failed in a row since 2026-03-01T10:00:00+00:00" in recent.detail
    assert not stale.ok
    assert "last successful sweep 45s ago" in stale.detail
    assert "90 sweeps failed in a row since 2026-03-01T10:00:00+00:00" in stale.detail
    assert "DataError: timestamp too small" in stale.detail
    redis.delete(HEARTBEAT_KEY, SWEEP_FAILURES_KEY)
