"""A worker SIGKILLed mid-batch with DEFAULT settings: every event it held is decided within two
minutes of the restart (issue 9 item 12; it used to wait for a one-hour visibility timeout).

The rest of the fault suite runs with a 10 s visibility timeout, which hides this: here the
stack keeps convlife's own default. `convlife worker` + `convlife beat` on PostgreSQL, 3,000
contact.inbound in messages of 500, the worker's whole process group killed while it holds
batches (their messages are in the broker's `unacked` hash), restarted at once.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from events.names import INGEST_TASK
from service.settings import Settings
from store.tables import decisions
from tests.faults.harness import Driver, Stack
from tests.processes import wait_until

INBOUND = 3000
BATCH = 500
DECIDED_WITHIN = 120.0


def routed_so_far(stack: Stack, driver: Driver) -> int:
    with stack.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count()).where(
                    decisions.c.account_id.like(f"{driver.run}-%"),
                    decisions.c.type == "contact.routed",
                )
            ).scalar_one()
        )


def ingest_batches_in_flight(stack: Stack) -> int:
    """Ingest messages a worker took and has not acked (kombu's `unacked` hash)."""
    held = stack.redis().hvals("unacked")
    return sum(1 for raw in held if json.loads(raw)[0]["headers"]["task"] == INGEST_TASK)


@pytest.mark.timeout(240)  # start-up, a first batch, then up to the 2 minutes under test
def test_a_worker_killed_mid_batch_with_default_settings_has_every_event_decided_in_2_minutes(
    stack: Stack,
) -> None:
    del stack.env["CONVLIFE_VISIBILITY_TIMEOUT"]  # convlife's default, as deployed
    assert Settings().visibility_timeout + 10 < DECIDED_WITHIN
    driver = Driver()
    now = datetime.now(UTC)
    events = [
        driver._event(
            "contact.inbound",
            f"{driver.run}-a{n % 3}",
            now - timedelta(seconds=30) + timedelta(milliseconds=n),
            contact_id=f"k{n}",
            line_id="l1",
        )
        for n in range(INBOUND)
    ]
    driver.send(stack.broker_url, events, BATCH)
    worker = stack.worker()
    stack.start("beat")
    wait_until(lambda: ingest_batches_in_flight(stack) > 0, 60, "a batch in flight")
    stack.kill_group(worker)
    unacked = ingest_batches_in_flight(stack)
    routed_at_kill = routed_so_far(stack, driver)
    assert unacked > 0, "the kill must find batches in flight"
    assert routed_at_kill < INBOUND, "the kill must come before the last batch"

    restarted = time.monotonic()
    stack.worker()
    counts = stack.drain(driver, len(events), timeout=DECIDED_WITHIN)
    took = time.monotonic() - restarted
    print(
        f"\ncrash figures: batches in flight at the kill {unacked}, routed before it "
        f"{routed_at_kill}, all {counts.routed} routed {took:.1f} s after the restart; "
        f"{counts.line()}"
    )
    assert counts.routed == INBOUND, counts.line()
    assert took <= DECIDED_WITHIN
    assert counts.lost == 0, counts.line()
    assert counts.doubled == 0, counts.line()
    assert counts.dead_lettered == 0, counts.line()
