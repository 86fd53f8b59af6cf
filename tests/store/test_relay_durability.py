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
from sqlalchemy.engine import Connection, Engine

from events.decisions import ContactRouted, Route
from store import outbox
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


@pytest.fixture
def at_commit(engine: Engine) -> Iterator[list[str]]:
    """`synchronous_commit` as each commit of the engine finds it, in order."""
    seen: list[str] = []

    def record(connection: Connection) -> None:
        driver = connection.connection.driver_connection
        seen.append(driver.execute("SHOW synchronous_commit").fetchone()[0])  # type: ignore[union-attr]

    event.listen(engine, "commit", record)
    yield seen
    event.remove(engine, "commit", record)


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


@pytest.mark.parametrize("with_dead_letters", [False, True])
def test_only_the_relays_commit_skips_the_flush_and_the_setting_ends_with_it(
    engine: Engine, redis_url: str, at_commit: list[str], with_dead_letters: bool
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite in WAL mode with synchronous=NORMAL never waits for a flush at commit")
    made = [routed(new_id("acct"))]
    with engine.begin() as connection:
        outbox.add_decisions(connection, made)
    publisher = Redis.from_url(redis_url)
    sent = outbox.relay(engine, publisher, T0, made=made, with_dead_letters=with_dead_letters)
    publisher.close()
    with engine.begin() as connection:  # the same pooled connection, a new transaction
        connection.execute(text("SELECT 1"))

    assert sent >= 1
    # The decisions' commit waits for the flush, the relay's does not, the next one does again.
    assert at_commit == ["on", "off", "on"]
