"""Webhook rows on both stores: fan-out from the webhook outbox, leased claims bounded per
endpoint, fenced records, the circuit breaker and the give-up horizon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from observability.metrics import read_database_gauges
from policies.delivery import CircuitPolicy, RetryPolicy
from store import webhooks
from store.tables import webhook_outbox
from tests.receivers import commit_decisions
from tests.support import new_id

CIRCUIT = CircuitPolicy(failures_to_open=3, cool_down=timedelta(seconds=30), max_in_flight=2)
RETRY = RetryPolicy(base=5, cap=60, give_up_after=timedelta(minutes=10))
LEASE = timedelta(seconds=45)
SECRET = "s" * 20


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def subscribe(engine: Engine) -> Iterator[object]:
    """Add subscriptions; every one is removed after the test (the PostgreSQL database is
    shared by the session, and a dispatcher claims for every subscription there is)."""
    made: list[int] = []

    def add(account: str | None, types: tuple[str, ...] | None = None) -> int:
        with engine.begin() as connection:
            made.append(
                webhooks.add_subscription(
                    connection,
                    url="http://127.0.0.1:9/hook",
                    secret=SECRET,
                    now=datetime.now(UTC),
                    account_id=account,
                    types=types,
                )
            )
        return made[-1]

    yield add
    with engine.begin() as connection:
        for subscription_id in made:
            webhooks.remove_subscription(connection, subscription_id)


def mine(engine: Engine, subscription_id: int) -> list[webhooks.Delivery]:
    with engine.connect() as connection:
        return webhooks.deliveries(connection, subscription_id=subscription_id, limit=10_000)


def answer(engine: Engine, claim: webhooks.Claim, at: datetime, status: int | None) -> str | None:
    return webhooks.record_attempt(
        engine,
        claim,
        started_at=at,
        now=at,
        status_code=status,
        error=None if status == 200 else "boom",
        retry=RETRY,
        circuit=CIRCUIT,
        jitter=0.0,
    )


def claim(engine: Engine, at: datetime, room: int = 100) -> list[webhooks.Claim]:
    return webhooks.claim_due(engine, at, CIRCUIT, LEASE, room)


def test_fan_out_makes_one_delivery_per_subscription_that_wants_the_decision_once(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account, other = new_id("acct"), new_id("acct")
    everything = subscribe(account)  # type: ignore[operator]
    closes_only = subscribe(account, ("conversation.auto_closed",))  # type: ignore[operator]
    elsewhere = subscribe(other)  # type: ignore[operator]
    made = commit_decisions(engine, account, 3, now)

    webhooks.fan_out(engine, now)
    webhooks.fan_out(engine, now)

    assert sorted(d.decision_id for d in mine(engine, everything)) == sorted(made)
    assert mine(engine, closes_only) == []
    assert mine(engine, elsewhere) == []
    assert {d.status for d in mine(engine, everything)} == {"pending"}
    assert waiting_for_fan_out(engine) & set(made) == set()


def test_a_decision_committed_waits_in_the_webhook_outbox_until_a_fan_out_takes_it(
    engine: Engine, now: datetime
) -> None:
    made = commit_decisions(engine, new_id("acct"), 3, now)
    assert waiting_for_fan_out(engine) >= set(made)

    webhooks.fan_out(engine, now)  # no subscription wants them: nothing made, nothing left

    assert waiting_for_fan_out(engine) & set(made) == set()


def waiting_for_fan_out(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {
            decision_id
            for (ids,) in connection.execute(select(webhook_outbox.c.decision_ids))
            for decision_id in json.loads(ids)
        }


def test_a_claim_leases_at_most_the_endpoints_limit_until_answers_come_back(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account = new_id("acct")
    subscription = subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 5, now)
    webhooks.fan_out(engine, now)

    first = claim(engine, now)
    assert len(first) == CIRCUIT.max_in_flight
    assert claim(engine, now) == []  # both slots are in flight
    assert answer(engine, first[0], now, 200) == "delivered"
    second = claim(engine, now)
    assert len(second) == 1
    assert {c.decision_id for c in second}.isdisjoint(c.decision_id for c in first)
    assert all(c.subscription_id == subscription for c in first + second)


def test_a_delivered_delivery_is_never_claimed_again_even_after_its_lease(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account = new_id("acct")
    subscription = subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 1, now)
    webhooks.fan_out(engine, now)
    (only,) = claim(engine, now)
    assert answer(engine, only, now, 204) == "delivered"

    for later in (now + LEASE, now + LEASE * 10, now + timedelta(days=3)):
        assert claim(engine, later) == []
    (row,) = mine(engine, subscription)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 1, 204)


def test_a_dead_dispatchers_claim_comes_back_after_the_lease_and_its_late_answer_is_ignored(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account = new_id("acct")
    subscription = subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 1, now)
    webhooks.fan_out(engine, now)
    (lost,) = claim(engine, now)

    assert claim(engine, now + LEASE - timedelta(seconds=1)) == []
    (again,) = claim(engine, now + LEASE)
    assert again.delivery_id == lost.delivery_id
    assert answer(engine, again, now + LEASE, 200) == "delivered"
    # the first dispatcher's answer arrives late: it changes nothing
    assert answer(engine, lost, now + LEASE, 500) is None
    (row,) = mine(engine, subscription)
    assert (row.status, row.attempts) == ("delivered", 1)


def test_failures_are_retried_with_backoff_and_open_the_circuit_until_one_trial_after_cool_down(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account = new_id("acct")
    subscription = subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 4, now)
    webhooks.fan_out(engine, now)

    for _ in range(2):
        for item in claim(engine, now):
            assert answer(engine, item, now, 503) == "failed"
    failed = [d for d in mine(engine, subscription) if d.status == "failed"]
    assert len(failed) == 4
    assert {d.next_attempt_at for d in failed} == {now + timedelta(seconds=5)}

    # three failures in a row opened the circuit: nothing is claimed during the cool-down
    assert claim(engine, now + timedelta(seconds=29)) == []
    # after it, one trial at a time (half-open); a success closes the circuit
    trial = claim(engine, now + timedelta(seconds=30))
    assert len(trial) == 1
    assert claim(engine, now + timedelta(seconds=30)) == []
    assert answer(engine, trial[0], now + timedelta(seconds=30), 200) == "delivered"
    assert len(claim(engine, now + timedelta(seconds=30))) == CIRCUIT.max_in_flight


def test_a_delivery_failing_past_the_horizon_is_given_up_with_its_last_error(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account = new_id("acct")
    subscription = subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 1, now)
    webhooks.fan_out(engine, now)
    at = now
    outcomes = []
    # the circuit is kept out of the way: each failure is answered after its cool-down
    for _ in range(20):
        (item,) = claim(engine, at)
        outcomes.append(answer(engine, item, at, 500))
        if outcomes[-1] == "given_up":
            break
        (row,) = mine(engine, subscription)
        at = max(row.next_attempt_at, at + CIRCUIT.cool_down)
    (row,) = mine(engine, subscription)
    assert row.status == "given_up"
    assert row.last_error == "boom"
    assert row.last_status_code == 500
    assert row.last_attempt_at is not None
    assert row.last_attempt_at >= now + RETRY.give_up_after
    with engine.connect() as connection:
        log = webhooks.attempts(connection, row.id)
    assert len(log) == row.attempts == len(outcomes)
    assert claim(engine, at + timedelta(days=1)) == []


def test_removing_a_subscription_removes_its_deliveries(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account = new_id("acct")
    subscription = subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 2, now)
    webhooks.fan_out(engine, now)
    (item, _) = claim(engine, now)
    answer(engine, item, now, 500)

    with engine.begin() as connection:
        assert webhooks.remove_subscription(connection, subscription)
        assert not webhooks.remove_subscription(connection, subscription)
    assert mine(engine, subscription) == []


def test_a_slot_freed_by_a_2xx_passes_to_the_next_due_delivery_unless_the_endpoint_paused(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    account = new_id("acct")
    subscription = subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 4, now)
    webhooks.fan_out(engine, now)
    first, second = claim(engine, now)
    assert answer(engine, first, now, 200) == "delivered"

    handed = webhooks.claim_next(engine, subscription, now, LEASE)
    assert handed is not None
    assert handed.delivery_id not in (first.delivery_id, second.delivery_id)
    for item in (second, handed):  # three failures in a row (with the next) open the circuit
        assert answer(engine, item, now, 500) == "failed"
    (third,) = claim(engine, now)
    assert answer(engine, third, now, 500) == "failed"
    assert webhooks.claim_next(engine, subscription, now, LEASE) is None


def test_the_backlog_counts_waiting_deliveries_and_paused_endpoints(
    engine: Engine, subscribe: object, now: datetime
) -> None:
    before = read_database_gauges(engine, now)
    account = new_id("acct")
    subscribe(account)  # type: ignore[operator]
    commit_decisions(engine, account, 5, now)
    webhooks.fan_out(engine, now)
    for _ in range(2):
        for item in claim(engine, now):
            answer(engine, item, now, 500)
    after = read_database_gauges(engine, now)
    assert after.webhooks_pending - before.webhooks_pending == 1
    assert after.webhooks_failed - before.webhooks_failed == 4
    assert after.webhook_paused_endpoints - before.webhook_paused_endpoints == 1
