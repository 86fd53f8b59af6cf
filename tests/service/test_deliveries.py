"""What the handler makes of a message that fails (service/deliveries.py), on SQLite and
PostgreSQL, with no Celery: the outcome the task maps to ack or retry.

- An event that breaks its batch for its own reasons: the batch is split into single events,
  the others apply, the event alone is retried and then dead-lettered.
- The database failing over (read-only) or out of connections is never the events' fault:
  the message is retried, with backoff, as often as it takes; nothing is dead-lettered, nothing
  is lost, and it applies once the database is back.
- A message carries at most CONVLIFE_MAX_EVENTS_PER_MESSAGE events; the rest are dead-lettered.
- A redelivery after its event ids were pruned reports only what it stored.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import create_engine, delete, func, select, text
from sqlalchemy.engine import Engine

from events.models import Event
from policies.conversation import apply_event
from policies.state import Conversation
from service.deliveries import (
    MAX_POISON_ATTEMPTS,
    Applied,
    Outcome,
    RetryLater,
    Split,
    handle,
)
from service.runtime import Runtime
from service.settings import Settings
from store.db import make_engine
from store.migrate import upgrade
from store.tables import dead_letters, processed_events
from tests.conftest import POSTGRES_ADMIN
from tests.service.builders import T0, agent_close, inbound, minutes, opened, routed
from tests.support import Service, new_id, settings_event

NOW = T0 + minutes(10)


def with_settings(service: Service, **changes: Any) -> Runtime:
    runtime = service.runtime
    return Runtime(
        settings=runtime.settings.model_copy(update=changes),
        engine=runtime.engine,
        redis=runtime.redis,
    )


def dead_letters_of(engine: Engine, account: str) -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(dead_letters).where(dead_letters.c.raw.contains(account))
            ).all()
        )


def applied_of(engine: Engine, account: str) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(processed_events.c.account_id == account)
            ).scalar_one()
        )


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> str:
    """A marker: an event whose event_id starts with it makes the handler fail the way a bug
    triggered by one event's content does (a ValueError deep in the apply)."""
    marker = new_id("poison")

    def apply_or_break(state: Conversation | None, event: Event) -> Conversation:
        if event.event_id.startswith(marker):
            raise ValueError(f"cannot apply {event.event_id}")
        return apply_event(state, event)

    monkeypatch.setattr("service.ingest.apply_event", apply_or_break)
    return marker


# --- an event that breaks its batch ---------------------------------------------------------


def test_a_batch_one_event_breaks_is_split_into_single_events_and_nothing_of_it_applies(
    service: Service, poison: str
) -> None:
    account = new_id("acct")
    good = [opened(account, "c1"), opened(account, "c2")]
    bad = {**opened(account, "c3"), "event_id": f"{poison}-1"}

    outcome = handle([good[0], bad, good[1]], service.runtime, NOW)

    assert isinstance(outcome, Split)
    assert outcome.parts == [[good[0]], [bad], [good[1]]]
    assert "ValueError" in outcome.reason
    assert applied_of(service.runtime.engine, account) == 0
    assert dead_letters_of(service.runtime.engine, account) == []


def test_after_a_split_the_others_apply_and_the_event_alone_is_dead_lettered_after_retries(
    service: Service, poison: str
) -> None:
    account = new_id("acct")
    bad = {**opened(account, "c3"), "event_id": f"{poison}-1"}
    split = handle([opened(account, "c1"), bad, opened(account, "c2")], service.runtime, NOW)
    assert isinstance(split, Split)

    outcomes: list[Outcome] = []
    for part in split.parts:
        attempt, own_failures = 0, 0
        while True:
            outcome = handle(part, service.runtime, NOW, attempt, own_failures)
            outcomes.append(outcome)
            if not isinstance(outcome, RetryLater):
                break
            attempt, own_failures = attempt + 1, outcome.own_failures

    kinds = [type(outcome).__name__ for outcome in outcomes]
    poisoned = ["RetryLater"] * (MAX_POISON_ATTEMPTS - 1) + ["DeadLettered"]
    assert kinds == ["Applied", *poisoned, "Applied"]
    [letter] = dead_letters_of(service.runtime.engine, account)
    assert letter.error == f"processing failed: ValueError: cannot apply {poison}-1"
    assert (letter.account_id, letter.event_id) == (account, f"{poison}-1")
    assert applied_of(service.runtime.engine, account) == 2


def test_a_single_event_that_keeps_failing_is_retried_with_a_short_growing_delay(
    service: Service, poison: str
) -> None:
    account = new_id("acct")
    bad = {**opened(account), "event_id": f"{poison}-1"}
    delays = []
    for attempt in range(MAX_POISON_ATTEMPTS - 1):
        outcome = handle(bad, service.runtime, NOW, attempt, attempt, rng=random.Random(1))
        assert isinstance(outcome, RetryLater)
        assert outcome.own_failures == attempt + 1
        delays.append(outcome.delay)
    assert 0 < delays[0] < delays[1] <= 30


def test_retries_for_an_outage_do_not_use_up_an_events_own_tries(
    service: Service, poison: str
) -> None:
    account = new_id("acct")
    bad = {**opened(account), "event_id": f"{poison}-1"}
    outcome = handle(bad, service.runtime, NOW, attempt=12, own_failures=0)
    assert isinstance(outcome, RetryLater)
    assert outcome.own_failures == 1
    assert dead_letters_of(service.runtime.engine, account) == []


def test_a_split_message_past_the_cap_dead_letters_the_rest_and_splits_the_first(
    service: Service, poison: str
) -> None:
    runtime = with_settings(service, max_events_per_message=2)
    account = new_id("acct")
    bad = {**opened(account, "c1"), "event_id": f"{poison}-1"}
    rest = [opened(account, "c2"), opened(account, "c3"), opened(account, "c4")]

    outcome = handle([bad, *rest], runtime, NOW)

    assert isinstance(outcome, Split)
    assert outcome.parts == [[bad], [rest[0]]]
    letters = dead_letters_of(runtime.engine, account)
    assert sorted(letter.event_id for letter in letters) == sorted(e["event_id"] for e in rest[1:])


# --- the surroundings fail: retried, never dead-lettered --------------------------------------


class Failover:
    """A store of the test's own that can turn read-only, as the database does when the primary
    fails over: PostgreSQL through `default_transaction_read_only` on the database (every new
    session read-only, like a replica's); SQLite by opening the file read-only."""

    def __init__(self, database_url: str, tmp_path: Path) -> None:
        self.admin: Engine | None = None
        if database_url.startswith("sqlite"):
            path = tmp_path / "own.db"
            self.url = f"sqlite:///{path}"
            self.read_only_url = f"sqlite:///file:{path}?mode=ro&uri=true"
            upgrade(self.url)
        else:
            self.name = f"convlife_ro_{uuid.uuid4().hex[:10]}"
            self.admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
            self._admin(f'CREATE DATABASE "{self.name}"')
            self.url = self.read_only_url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{self.name}"
            upgrade(self.url)
        self.engine = make_engine(self.url)

    def _admin(self, statement: str) -> None:
        assert self.admin is not None
        with self.admin.connect() as connection:
            connection.execute(text(statement))

    def fail_over(self) -> None:
        if self.admin is None:
            self.engine.dispose()
            self.engine = make_engine(self.read_only_url)
        else:
            # The old primary's sessions end; every new one is read-only, like a replica's.
            self._admin(f'ALTER DATABASE "{self.name}" SET default_transaction_read_only = on')
            self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{self.name}' AND pid <> pg_backend_pid()"
            )

    def recover(self) -> None:
        if self.admin is None:
            self.engine.dispose()
            self.engine = make_engine(self.url)
        else:  # the pooled read-only sessions stay: the handler must drop them itself
            self._admin(f'ALTER DATABASE "{self.name}" RESET default_transaction_read_only')

    def close(self) -> None:
        self.engine.dispose()
        if self.admin is not None:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self.admin.dispose()


@pytest.fixture
def failover(database_url: str, tmp_path: Path) -> Iterator[Failover]:
    store = Failover(database_url, tmp_path)
    try:
        yield store
    finally:
        store.close()


def test_a_read_only_database_after_a_failover_is_retried_never_dead_lettered_then_applied(
    service: Service, failover: Failover
) -> None:
    def runtime() -> Runtime:
        return Runtime(service.runtime.settings, failover.engine, service.runtime.redis)

    account = new_id("acct")
    assert isinstance(
        handle(settings_event(account, T0 - minutes(60), window="P1D"), runtime(), NOW), Applied
    )
    batch = [opened(account), agent_close(account, T0 + minutes(1)), inbound(account, NOW)]
    failover.fail_over()

    outcomes = [handle(batch, runtime(), NOW, attempt=attempt) for attempt in range(6)]

    assert all(isinstance(outcome, RetryLater) for outcome in outcomes), outcomes
    # The failover ended the pooled session a moment after it was used, so the first attempt
    # may meet it dead (a connection used within the last second is not pinged: store/db.py);
    # every later one meets the read-only replica.
    reasons = [outcome.reason for outcome in outcomes]  # type: ignore[union-attr]
    assert all("read-only" in reason or "readonly" in reason for reason in reasons[1:]), reasons
    assert all(outcome.delay <= 15 for outcome in outcomes if isinstance(outcome, RetryLater))
    failover.recover()
    applied = handle(batch, runtime(), NOW, attempt=6)
    assert isinstance(applied, Applied)
    assert applied.result.applied == 3
    assert dead_letters_of(failover.engine, account) == []
    assert routed(Service(runtime()), account)["route"] == "previous_agent"


def test_an_exhausted_connection_pool_is_retried_never_dead_lettered_then_applied(
    postgres_url: str, redis_url: str
) -> None:
    """PostgreSQL only: the SQLite store opens a connection per use (no pool to exhaust)."""
    engine = create_engine(postgres_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    settings = Settings(database_url=postgres_url, broker_url=redis_url)  # type: ignore[arg-type]
    runtime = Runtime(settings=settings, engine=engine, redis=Redis.from_url(redis_url))
    account = new_id("acct")
    batch = [opened(account, "c1"), opened(account, "c2")]
    held = engine.connect()
    try:
        outcomes = [handle(batch, runtime, NOW, attempt=attempt) for attempt in range(4)]
    finally:
        held.close()

    assert all(isinstance(outcome, RetryLater) for outcome in outcomes), outcomes
    assert "TimeoutError" in outcomes[0].reason  # type: ignore[union-attr]
    assert dead_letters_of(engine, account) == []
    applied = handle(batch, runtime, NOW, attempt=4)
    assert isinstance(applied, Applied)
    assert applied.result.applied == 2
    engine.dispose()
    runtime.redis.close()


# --- the per-message cap ------------------------------------------------------------------------


def test_a_message_applies_its_first_1000_events_and_dead_letters_the_rest_with_a_reason(
    service: Service,
) -> None:
    assert service.runtime.settings.max_events_per_message == 1000
    account = new_id("acct")
    events = [opened(account, f"c{n}") for n in range(1003)]

    outcome = handle(events, service.runtime, NOW)

    assert isinstance(outcome, Applied)
    assert outcome.result.applied == 1000
    letters = sorted(dead_letters_of(service.runtime.engine, account), key=lambda r: r.id)
    assert [letter.event_id for letter in letters] == [e["event_id"] for e in events[1000:]]
    assert letters[0].error == (
        "beyond the 1000 events one message may carry (item 1001 of 1003); "
        "replay it in another message"
    )
    assert letters[0].account_id == account


def test_the_cap_is_a_setting(service: Service) -> None:
    runtime = with_settings(service, max_events_per_message=2)
    account = new_id("acct")
    outcome = handle([opened(account, f"c{n}") for n in range(5)], runtime, NOW)
    assert isinstance(outcome, Applied)
    assert (outcome.result.applied, outcome.result.dead_lettered) == (2, 3)
    assert outcome.result.dead_letter_reasons[0] == "too_many_events"


# --- a redelivery after retention ---------------------------------------------------------


def test_a_redelivery_after_its_ids_were_pruned_reports_no_decision_it_did_not_store(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    account = new_id("acct")
    contact_writes = inbound(account, T0)
    first = handle(contact_writes, service.runtime, T0)
    assert isinstance(first, Applied)
    assert len(first.result.decisions) == 1
    with service.runtime.engine.begin() as connection:  # what the retention prune does
        connection.execute(delete(processed_events).where(processed_events.c.account_id == account))

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="convlife"):
        again = handle(contact_writes, service.runtime, T0 + minutes(1))

    assert isinstance(again, Applied)
    assert again.result.applied == 1
    assert again.result.decisions == []
    assert not [r.getMessage() for r in caplog.records if r.name == "convlife.decisions"]
    [stored] = service.decisions(account)
    assert stored["decision_id"] == first.result.decisions[0].decision_id
    assert stored["decided_at"].startswith("2026-03-01T10:00:00")  # the first decision stands
