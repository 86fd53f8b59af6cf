"""On SQLite a unit of work (a message's batch, or a sweep's batch, then the relay of their
decisions) takes the write turn once, and its WAL is checkpointed after it when a checkpoint is
due, outside the turn (store/db.py `keeping_the_turn`, `checkpoint_when_due`). On PostgreSQL
nothing of it applies."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import pytest

import store.db
from service import deadlines, deliveries
from store import outbox
from store.db import another_writer_holds_the_turn
from tests.service.builders import T0, account_with, inbound, minutes, opened
from tests.support import Service, new_id, utc


@pytest.fixture
def relays_see(service: Service, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether, as each relay starts, another thread finds the write turn taken."""
    if service.runtime.engine.dialect.name != "sqlite":
        pytest.skip("only SQLite's writers take turns")
    seen: list[bool] = []
    relay = outbox.relay

    def looked_at(engine: Any, *args: Any, **kwargs: Any) -> int:
        glance = threading.Thread(target=lambda: seen.append(another_writer_holds_the_turn(engine)))
        glance.start()
        glance.join(5)
        return relay(engine, *args, **kwargs)

    monkeypatch.setattr(outbox, "relay", looked_at)
    return seen


def test_a_message_and_the_relay_of_its_decisions_take_the_turn_once(
    service: Service, relays_see: list[bool]
) -> None:
    account = account_with(service)
    relays_see.clear()
    deliveries.handle([inbound(account, T0, contact=new_id("k"))], service.runtime, T0)
    assert relays_see == [True]  # the batch's turn was still this thread's as its relay began
    assert not another_writer_holds_the_turn(service.runtime.engine)  # and given back after


def test_a_sweep_batch_and_the_relay_of_its_closes_take_the_turn_once(
    service: Service, relays_see: list[bool]
) -> None:
    account = account_with(service, close_after="PT1M")
    long_ago = utc("2001-01-01T00:00:00")  # claimed before any other test's conversations
    service.ingest([opened(account, f"c{i}", at=long_ago) for i in range(3)], T0)
    relays_see.clear()
    deadlines.sweep(service.runtime, lambda: T0 + minutes(1), None, shares_with_ingest=True)
    assert service.count_decisions(account) == 3
    assert relays_see
    assert all(relays_see)  # each batch's turn was still held as its relay began
    assert not another_writer_holds_the_turn(service.runtime.engine)


def test_after_a_message_what_it_wrote_is_in_the_database_file_itself(
    service: Service, relays_see: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    account = account_with(service)
    event = inbound(account, T0, contact=new_id("k"))
    # Due at once (a worker checkpoints at most every CHECKPOINT_EVERY seconds).
    monkeypatch.setattr(store.db, "CHECKPOINT_EVERY", 0.0)
    deliveries.handle([event], service.runtime, T0)
    # The file alone, the WAL ignored: the checkpoint after the message copied it there.
    uri = f"file:{service.runtime.engine.url.database}?immutable=1"
    reader = sqlite3.connect(uri, uri=True)
    try:
        found = reader.execute(
            "SELECT count(*) FROM processed_events WHERE event_id = ?", (event["event_id"],)
        ).fetchone()[0]
    finally:
        reader.close()
    assert found == 1
