"""SQLite decides a batch ahead, from a snapshot, while another writer holds the write turn; the
transaction uses those decisions only if it finds what the snapshot found.

A writer is held in the middle of its transaction by another thread of the test (the turn is the
same whether its holder is a thread or a process).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest

from events.parsing import parse_event
from service.ingest import apply_events, claim_fresh, decide_ahead
from tests.service.builders import T0, account_with, agent_close, inbound, minutes, opened
from tests.support import Service, event


@contextmanager
def another_writer(service: Service) -> Iterator[None]:
    """Another thread in a write transaction (holding the turn) for the block's duration."""
    inside, leave = threading.Event(), threading.Event()

    def write() -> None:
        with service.runtime.engine.begin():
            inside.set()
            leave.wait(10)

    writer = threading.Thread(target=write)
    writer.start()
    assert inside.wait(10)
    try:
        yield
    finally:
        leave.set()
        writer.join(10)


def routed_account(service: Service) -> str:
    """An account whose contact-1 has a conversation an agent closed with a reason at T0."""
    account = account_with(service, window="P1D", bot=False)
    service.ingest(event("line.updated", account, T0, line_id="line-1", agent_id="olga"), T0)
    service.ingest([opened(account), agent_close(account, T0)], T0)
    return account


@pytest.fixture
def sqlite_service(service: Service) -> Service:
    if service.runtime.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL writes batches side by side: nothing is decided ahead")
    return service


def decided_ahead_and_applied(
    service: Service, payload: list[dict], now: datetime, between: list[dict] | None = None
) -> tuple[bool, list[str]]:
    """Decide `payload` ahead while another writer holds the turn, apply `between` (if any)
    once the turn is free, then the transaction: whether the guess held, and the routes."""
    runtime = service.runtime
    events = [parse_event(item) for item in payload]
    with another_writer(service):
        guess = decide_ahead(events, runtime, now)
    assert guess is not None
    if between:
        service.ingest(between, now)
    with runtime.engine.begin() as connection:
        fresh = claim_fresh(connection, events, now)
        decisions, held = apply_events(connection, fresh, runtime, now, guess)
    return held, [str(getattr(d, "route", "")) for d in decisions]


def test_while_another_writer_holds_the_turn_a_batch_is_decided_ahead_and_that_is_used(
    sqlite_service: Service,
) -> None:
    account = routed_account(sqlite_service)
    writes_at = T0 + minutes(5)
    result: list = []
    ingesting = threading.Thread(
        target=lambda: result.append(sqlite_service.ingest(inbound(account, writes_at), writes_at))
    )
    with another_writer(sqlite_service):
        ingesting.start()
        time.sleep(0.5)  # it glances at the turn at once, decides, then waits for the turn
    ingesting.join(10)

    [outcome] = result
    assert outcome.decided_ahead is True
    assert [d.route for d in outcome.decisions] == ["previous_agent"]
    assert [d["route"] for d in sqlite_service.decisions(account) if "route" in d] == [
        "previous_agent"
    ]


def test_with_the_turn_free_nothing_is_decided_ahead(sqlite_service: Service) -> None:
    account = routed_account(sqlite_service)
    writes_at = T0 + minutes(5)

    outcome = sqlite_service.ingest(inbound(account, writes_at), writes_at)

    assert outcome.decided_ahead is False
    assert [d.route for d in outcome.decisions] == ["previous_agent"]


def test_a_guess_is_not_used_once_the_state_it_read_has_changed(sqlite_service: Service) -> None:
    account = routed_account(sqlite_service)
    writes_at = T0 + minutes(5)
    reopened = opened(account, at=T0 + minutes(1))  # after the guess, before its transaction

    held, routes = decided_ahead_and_applied(
        sqlite_service, [inbound(account, writes_at)], writes_at, between=[reopened]
    )

    assert held is False
    assert routes == ["open_conversation"]  # the guess said previous_agent


def test_a_guess_is_not_used_once_its_event_was_applied_by_another_worker(
    sqlite_service: Service,
) -> None:
    account = routed_account(sqlite_service)
    writes_at = T0 + minutes(5)
    payload = [inbound(account, writes_at)]

    held, routes = decided_ahead_and_applied(sqlite_service, payload, writes_at, between=payload)

    assert held is False
    assert routes == []  # a duplicate: nothing decided twice
    assert len([d for d in sqlite_service.decisions(account) if "route" in d]) == 1


def test_a_guess_that_holds_decides_as_the_transaction_would(sqlite_service: Service) -> None:
    account = routed_account(sqlite_service)
    writes_at = T0 + minutes(5)

    held, routes = decided_ahead_and_applied(
        sqlite_service, [inbound(account, writes_at)], writes_at
    )

    assert held is True
    assert routes == ["previous_agent"]


def test_a_batch_that_would_create_a_conversation_gets_no_guess_and_does_not_wait_for_the_lock(
    sqlite_service: Service,
) -> None:
    account = account_with(sqlite_service, window="P1D")
    events = [parse_event(opened(account, "new-conversation"))]
    with another_writer(sqlite_service):
        started = time.monotonic()
        guess = decide_ahead(events, sqlite_service.runtime, T0)
        took = time.monotonic() - started

    assert guess is None
    assert took < 5  # refused at once by the read-only snapshot, not after the 30 s lock wait
    sqlite_service.ingest(opened(account, "new-conversation"), T0)  # the transaction creates it
    assert sqlite_service.conversation(account, "new-conversation")[0].is_open


def test_postgresql_decides_nothing_ahead(service: Service) -> None:
    if service.runtime.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's case is above")
    account = routed_account(service)
    writes_at = T0 + minutes(5)
    events = [parse_event(inbound(account, writes_at))]
    with another_writer(service):
        assert decide_ahead(events, service.runtime, writes_at) is None


def test_a_guess_has_its_decisions_serialized_before_the_transaction_takes_the_turn(
    sqlite_service: Service,
) -> None:
    """The text of each decision (its row's `data`, and what the relay sends) is made with the
    guess, outside the turn, and is the text the decision serializes to."""
    account = routed_account(sqlite_service)
    writes_at = T0 + minutes(5)
    events = [parse_event(inbound(account, writes_at))]

    with another_writer(sqlite_service):
        guess = decide_ahead(events, sqlite_service.runtime, writes_at)

    assert guess is not None
    [decision] = guess.decided.decisions
    assert "data" in vars(decision)  # cached_property: computed already
    assert decision.data == decision.model_dump_json()
