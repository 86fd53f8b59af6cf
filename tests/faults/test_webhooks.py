"""Webhooks under faults, with real processes (worker, beat, the CLI), a redis-server and a
PostgreSQL database of the test's own, and receivers on 127.0.0.1: a worker SIGKILLed right
after decisions committed still delivers them; 1,000 decisions to a receiver that is down for
30 s all arrive once it is back.

Run one at a time: `.venv/bin/python -m pytest tests/faults/test_webhooks.py -k NAME`.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.tables import decisions, webhook_deliveries
from tests.conftest import POSTGRES_ADMIN
from tests.faults.harness import Driver, Stack, fresh_database
from tests.processes import free_port, run_convlife, wait_until
from tests.receivers import Receiver
from tests.support import event, new_id

SECRET = "whsec-faults-0123456789"
HOOK_SETTINGS = {
    "CONVLIFE_WEBHOOK_RETRY_BASE": "0.5",
    "CONVLIFE_WEBHOOK_RETRY_MAX": "3",
    "CONVLIFE_WEBHOOK_CIRCUIT_COOL_DOWN": "2",
    "CONVLIFE_WEBHOOK_DISPATCH_INTERVAL": "0.5",
    "CONVLIFE_WEBHOOK_TIMEOUT": "5",
}
QUEUES = "convlife.events,convlife.closes,convlife.outbox,convlife.webhooks"


@pytest.fixture
def hooks(tmp_path: Path, postgres_url: str) -> Iterator[Stack]:
    del postgres_url  # only to fail/skip like the rest of the suite without PostgreSQL
    url, drop = fresh_database(POSTGRES_ADMIN)
    running = Stack(tmp_path, url, **HOOK_SETTINGS)
    try:
        yield running
    finally:
        running.close()
        drop()


def subscribe(stack: Stack, url: str, account: str) -> int:
    done = run_convlife(
        ["webhooks", "add", "--url", url, "--account", account, "--secret", SECRET], stack.env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return int(json.loads(done.stdout)["id"])


def inbounds(account: str, count: int) -> list[dict[str, object]]:
    now = datetime.now(UTC)
    return [
        event("contact.inbound", account, now, contact_id=f"k{n}", line_id="l1")
        for n in range(count)
    ]


def decided(stack: Stack, account: str) -> set[str]:
    with stack.engine.connect() as connection:
        rows = connection.execute(
            select(decisions.c.decision_id).where(decisions.c.account_id == account)
        ).all()
    return {row.decision_id for row in rows}


def statuses(stack: Stack) -> dict[str, int]:
    with stack.engine.connect() as connection:
        rows = connection.execute(
            select(webhook_deliveries.c.status, func.count()).group_by(webhook_deliveries.c.status)
        ).all()
    return {status: int(count) for status, count in rows}


def start_worker(stack: Stack) -> subprocess.Popen[bytes]:
    ready_before = (
        stack.log.read_text(errors="replace").count(" ready.") if stack.log.exists() else 0
    )
    process = stack.start("worker", "--queues", QUEUES, "--concurrency", "2")
    wait_until(
        lambda: stack.log.read_text(errors="replace").count(" ready.") > ready_before,
        60,
        "a worker",
    )
    return process


def test_a_worker_sigkilled_right_after_decisions_commit_still_delivers_every_one(
    hooks: Stack,
) -> None:
    account = new_id("acct")
    receiver = Receiver().start()
    try:
        subscribe(hooks, receiver.url, account)
        worker = start_worker(hooks)
        hooks.start("beat")
        events = inbounds(account, 200)
        Driver().send(hooks.broker_url, events, batch=50)
        wait_until(lambda: bool(decided(hooks, account)), 60, "the first decisions to commit")
        hooks.kill_group(worker)  # main process and pool children, no warm shutdown
        committed_at_kill = decided(hooks, account)
        received_at_kill = set(receiver.deliveries())
        print(
            f"\nat the kill: {len(committed_at_kill)} decisions committed, "
            f"{len(received_at_kill)} delivered"
        )
        assert committed_at_kill - received_at_kill, "the kill came after every delivery"

        start_worker(hooks)  # the unacked batches come back after the visibility timeout
        wait_until(lambda: len(decided(hooks, account)) == len(events), 90, "every decision")
        made = decided(hooks, account)
        wait_until(lambda: made <= set(receiver.deliveries()), 60, "every delivery")
        wait_until(lambda: statuses(hooks) == {"delivered": len(made)}, 30, "the records")
        received = receiver.deliveries()
        print(f"delivered {len(set(received))} decisions in {len(received)} requests")
        assert set(received) == made
    finally:
        receiver.stop()


def test_a_thousand_decisions_to_a_receiver_down_for_30_seconds_all_arrive_once_it_is_back(
    hooks: Stack,
) -> None:
    account = new_id("acct")
    port = free_port()
    receiver = Receiver(port=port)
    try:
        subscribe(hooks, f"http://127.0.0.1:{port}/hook", account)
        start_worker(hooks)
        hooks.start("beat")
        events = inbounds(account, 1000)
        down_since = time.monotonic()
        Driver().send(hooks.broker_url, events, batch=100)
        wait_until(lambda: len(decided(hooks, account)) == len(events), 90, "1,000 decisions")
        time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
        during = statuses(hooks)
        print(f"\nafter 30 s down: {during}")
        assert during.get("delivered", 0) == 0
        assert sum(during.values()) == len(events)  # waiting in the database, none given up

        back_at = time.monotonic()
        receiver.start()
        made = decided(hooks, account)
        wait_until(lambda: made <= set(receiver.deliveries()), 90, "every delivery")
        took = time.monotonic() - back_at
        wait_until(lambda: statuses(hooks) == {"delivered": len(made)}, 30, "the records")
        received = receiver.deliveries()
        print(f"all {len(made)} delivered {took:.1f} s after the receiver came back")
        assert set(received) == made
        assert len(received) == len(made)  # none sent twice
    finally:
        receiver.stop()
