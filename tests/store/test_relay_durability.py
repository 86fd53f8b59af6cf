"""What the relay's commit may lose, and what it may not.

The relay's own transaction only deletes outbox rows (and marks dead letters sent) of entries
already on the stream: on PostgreSQL it commits without waiting for the WAL flush
(`synchronous_commit = off`, for that transaction only). The decisions' commit still waits: a
decision acknowledged as stored is on disk."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from events.decisions import ContactRouted, Route
from store import outbox
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def routed(account: str) -> ContactRouted:
    return ContactRouted(
        decision_id=new_id("d"),
        account_id=account,
        decided_at=T0,
        reason="test",
        inbound_event_id=new_id("e"),
        contact_id="k",
        line_id="l",
        route=Route.BOT,
    )


def test_only_the_relays_commit_skips_the_flush_and_the_setting_ends_with_it(
    engine: Engine, redis_url: str, statements: list[str]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite in WAL mode with synchronous=NORMAL never waits for a flush at commit")
    made = [routed(new_id("acct"))]
    with engine.begin() as connection:
        outbox.add_decisions(connection, made)
    stored = list(statements)
    publisher = Redis.from_url(redis_url)
    assert outbox.relay(engine, publisher, T0, made=made) == 1
    publisher.close()

    relayed = statements[len(stored) :]
    assert not any("synchronous_commit" in s for s in stored)
    assert any("SET LOCAL synchronous_commit = off" in s for s in relayed)
    with engine.connect() as connection:  # the same pooled connection, a new transaction
        assert connection.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
