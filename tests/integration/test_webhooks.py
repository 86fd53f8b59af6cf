"""Webhooks end to end within the test process: the real dispatcher, a real database (SQLite
and PostgreSQL, a fresh one per test), and real HTTP receivers on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from policies.delivery import CircuitPolicy, DeliveryConfig, RetryPolicy
from store import webhooks as store
from store.tables import decisions
from tests.integration.webhook_support import FAST, fresh, utcnow, wait_for
from tests.processes import free_port
from tests.receivers import Receiver, commit_decisions, receiving
from tests.support import new_id
from webhooks import manage
from webhooks.dispatch import Dispatcher
from webhooks.signing import verify

__all__ = ["fresh"]  # the fixture, imported

SECRET = "whsec-test-0123456789"


@contextmanager
def dispatching(
    engine: Engine,
    config: DeliveryConfig = FAST,
    tick: float = 0.1,
    clock: Callable[[], datetime] = utcnow,
) -> Iterator[Dispatcher]:
    """A dispatcher run every `tick` seconds in a thread, as beat sends the task."""
    dispatcher = Dispatcher(config)
    stopping = threading.Event()

    def beat() -> None:
        while not stopping.is_set():
            dispatcher.run(engine, clock)
            stopping.wait(tick)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield dispatcher
    finally:
        stopping.set()
        thread.join(timeout=30)
        dispatcher.close()


def subscribe(engine: Engine, receiver: Receiver, account: str) -> int:
    added = manage.add(engine, url=receiver.url, secret=SECRET, now=utcnow(), account_id=account)
    return int(added["id"])


def test_each_decision_arrives_as_its_stored_json_signed_with_the_subscriptions_secret(
    fresh: Engine,
) -> None:
    account = new_id("acct")
    with receiving() as receiver:
        subscribe(fresh, receiver, account)
        made = commit_decisions(fresh, account, 2, utcnow())
        with dispatching(fresh):
            wait_for(lambda: len(receiver.received) >= 2, 15, "two deliveries")
    with fresh.connect() as connection:
        stored = dict(
            connection.execute(
                select(decisions.c.decision_id, decisions.c.data).where(
                    decisions.c.decision_id.in_(made)
                )
            ).all()
        )
    for request in receiver.received:
        assert request.headers["Content-Type"] == "application/json"
        assert request.body == stored[request.delivery].encode()
        assert verify(
            SECRET,
            request.headers["X-Convlife-Timestamp"],
            request.body,
            request.headers["X-Convlife-Signature"],
            now=time.time(),
        )
        assert not verify(
            "not-the-secret-at-all",
            request.headers["X-Convlife-Timestamp"],
            request.body,
            request.headers["X-Convlife-Signature"],
            now=time.time(),
        )
    assert sorted(receiver.deliveries()) == sorted(made)


def test_a_receiver_failing_twice_gets_the_decision_once_as_a_success_after_spaced_retries(
    fresh: Engine,
) -> None:
    account = new_id("acct")
    with receiving(lambda n: 500 if n < 2 else 200) as receiver:
        subscription = subscribe(fresh, receiver, account)
        (made,) = commit_decisions(fresh, account, 1, utcnow())
        with dispatching(fresh):
            wait_for(lambda: len(receiver.received) >= 3, 20, "three attempts")
            time.sleep(2 * FAST.retry.base * 2)  # long enough for a (wrong) fourth attempt
        times = [request.at for request in receiver.received]
    assert receiver.deliveries() == [made] * 3
    base = FAST.retry.base
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    # at least the backoff (jitter only lengthens it), at most 1.5x plus a beat tick and noise
    assert base * 0.95 <= first_gap <= base * 1.5 + 1.0
    assert 2 * base * 0.95 <= second_gap <= 2 * base * 1.5 + 1.0
    with fresh.connect() as connection:
        (row,) = store.deliveries(connection, subscription_id=subscription)
        log = store.attempts(connection, row.id)
    assert (row.status, row.attempts, row.last_status_code) == ("delivered", 3, 200)
    assert [attempt.status_code for attempt in log] == [500, 500, 200]


def test_a_receiver_that_hangs_does_not_delay_another_receivers_deliveries(fresh: Engine) -> None:
    slow_account, fast_account = new_id("slow"), new_id("fast")
    with receiving(lambda _n: None) as hanging, receiving() as healthy:
        subscribe(fresh, hanging, slow_account)
        subscribe(fresh, healthy, fast_account)
        # runs of 1 s: the fast deliveries below span several runs, each begun while the
        # hanging requests of an earlier one are still open
        config = DeliveryConfig(
            timeout=10.0, retry=FAST.retry, circuit=FAST.circuit, budget=1.0, poll=0.05
        )
        commit_decisions(fresh, slow_account, 10, utcnow())
        with dispatching(fresh, config):
            wait_for(lambda: len(hanging.received) >= 4, 10, "the hanging receiver to be busy")
            latencies = []
            for _ in range(15):
                (made,) = commit_decisions(fresh, fast_account, 1, utcnow())
                sent = time.monotonic()
                wait_for(lambda made=made: made in healthy.deliveries(), 10, "the fast delivery")
                latencies.append(time.monotonic() - sent)
                time.sleep(0.2)
            # all this time the hanging receiver held its four slots, never more
            assert len(hanging.received) == FAST.circuit.max_in_flight
            hanging.stopping.set()  # let its requests end now rather than at the timeout
    # each delivery took a dispatcher tick or two, never the slow endpoint's 10 s timeout
    assert max(latencies) < 2.0, latencies


def test_a_delivery_that_keeps_failing_is_given_up_after_the_horizon_and_recorded(
    fresh: Engine,
) -> None:
    account = new_id("acct")
    config = DeliveryConfig(
        timeout=2.0,
        retry=RetryPolicy(base=0.2, cap=0.5, give_up_after=timedelta(seconds=2)),
        circuit=CircuitPolicy(failures_to_open=100),
        budget=2.0,
        poll=0.05,
    )
    with receiving(lambda _n: 503) as receiver:
        subscription = subscribe(fresh, receiver, account)
        (made,) = commit_decisions(fresh, account, 1, utcnow())
        with dispatching(fresh, config):

            def given_up() -> bool:
                with fresh.connect() as connection:
                    rows = store.deliveries(connection, subscription_id=subscription)
                return bool(rows) and rows[0].status == "given_up"

            wait_for(given_up, 20, "the delivery to be given up")
            attempts_when_given_up = len(receiver.received)
            time.sleep(1.5)
        assert len(receiver.received) == attempts_when_given_up  # nothing after giving up
    with fresh.connect() as connection:
        (row,) = store.deliveries(connection, subscription_id=subscription)
    assert row.decision_id == made
    assert row.attempts == attempts_when_given_up >= 3
    assert (row.last_status_code, row.last_error) == (503, "HTTP 503")
    assert row.first_attempt_at is not None
    assert row.last_attempt_at is not None
    assert row.last_attempt_at - row.created_at >= config.retry.give_up_after
    listed = manage.deliveries(fresh, subscription_id=subscription, status="given_up")
    assert [item["decision_id"] for item in listed] == [made]


def test_a_delivery_answered_with_a_2xx_is_never_sent_again(fresh: Engine) -> None:
    account = new_id("acct")
    # the dispatcher's clock runs ahead by hours: any lease or retry time is long past
    skew = {"by": timedelta(0)}
    with receiving(lambda _n: 202) as receiver:
        subscribe(fresh, receiver, account)
        made = commit_decisions(fresh, account, 20, utcnow())
        with dispatching(fresh, clock=lambda: utcnow() + skew["by"]):
            wait_for(lambda: len(receiver.received) >= 20, 15, "twenty deliveries")

            def recorded() -> bool:
                with fresh.connect() as connection:
                    rows = store.deliveries(connection, status="delivered", limit=100)
                return len(rows) == 20

            # the promise is about a recorded 2xx: an answer not yet recorded when the lease
            # ends is sent again (at least once)
            wait_for(recorded, 15, "the twenty 2xx answers to be recorded")
            for hours in (1, 5, 48):
                skew["by"] = timedelta(hours=hours)
                time.sleep(0.5)
    assert sorted(receiver.deliveries()) == sorted(made)
    with fresh.connect() as connection:
        rows = store.deliveries(connection, limit=100)
    assert {(row.status, row.attempts) for row in rows} == {("delivered", 1)}


@pytest.mark.parametrize(
    ("url", "error"),
    [
        (f"http://127.0.0.1:{free_port()}/closed", "ConnectError"),
        ("http://[::1/hook", "InvalidURL"),
    ],
)
def test_a_request_that_cannot_be_made_is_a_failed_attempt_with_its_reason(
    url: str, error: str
) -> None:
    claim = store.Claim(
        delivery_id=1,
        subscription_id=1,
        url=url,
        secret=SECRET,
        decision_id="d1",
        data="{}",
        attempts=0,
        created_at=utcnow(),
    )
    dispatcher = Dispatcher(FAST)
    try:
        status, reason = dispatcher.send(claim, int(time.time()))
    finally:
        dispatcher.close()
    assert status is None
    assert reason is not None
    assert reason.startswith(error)
