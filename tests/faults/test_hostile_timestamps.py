"""Hostile timestamps mixed into normal traffic on PostgreSQL: BC, far-future and odd-offset times,
unix seconds, and a row that cannot be read planted in the database. Other accounts'
conversations keep closing on time; lost 0, duplicated 0.

Run alone: `.venv/bin/python -m pytest tests/faults/test_hostile_timestamps.py`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import select, text

from store.tables import conversations, dead_letters, decisions
from tests.faults.harness import Counts, Driver, Stack, shuffled
from tests.processes import run_convlife, wait_until

CLOSE_AFTER = timedelta(seconds=4)
ON_TIME = timedelta(seconds=5)
"""How late after its deadline a close may land: sweeps run every 0.5 s; the margin is for a
noisy machine, not for the fault."""
PER_ACCOUNT = 10

HOSTILE: list[tuple[str, dict[str, Any], object]] = [
    # (type, fields, occurred_at) — every one of them must be dead-lettered
    ("conversation.message", {"sender": "contact"}, "0001-01-01T00:00:00+00:01"),
    ("conversation.closed", {"closed_by": "system"}, "9999-12-31T23:59:59-23:59"),
    ("conversation.transferred", {"agent_id": "zed"}, "0001-01-01T00:00:00Z"),
    ("conversation.message", {"sender": "contact"}, 1700000000),
    ("conversation.message", {"sender": "contact"}, "1999-12-31T23:59:59+00:00"),
    ("conversation.closed", {"closed_by": "system"}, "8000-01-01T00:00:00Z"),  # in bounds, future
    ("conversation.note", {}, "-0001-01-01T00:00:00Z"),
]


def plant_unreadable_row(stack: Stack) -> tuple[str, str]:
    """A due conversation whose last activity is a BC date (psycopg cannot load it), as the old
    code stored from `0001-01-01T00:00:00+00:01`: due a day ago, so every sweep claims it first.
    Its account is not the driver's, so the checker's counts do not include it."""
    key = (f"planted-{uuid.uuid4().hex[:8]}", "bc")
    with stack.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO conversations (account_id, conversation_id, contact_id, line_id, "
                "status, last_activity_at, assignee_bot, auto_closed, close_due_at) VALUES "
                "(:account, :conversation, 'k', 'l', 'open', '0001-12-31 23:59:00+00 BC', "
                "false, false, now() - interval '1 day')"
            ),
            {"account": key[0], "conversation": key[1]},
        )
    return key


def test_hostile_timestamps_never_stop_other_accounts_closing_on_time(stack: Stack) -> None:
    driver = Driver()
    planted = plant_unreadable_row(stack)
    accounts = [f"{driver.run}-a{i}" for i in range(3)]
    stack.worker()
    stack.start("beat")
    start = datetime.now(UTC)
    settings = [
        driver._event(
            "account.settings_updated",
            account,
            start - timedelta(minutes=1),
            inactivity_close_after="PT4S",
            reassignment_window="PT1H",
        )
        for account in accounts
    ]
    driver.send(stack.broker_url, settings)
    wait_until(lambda: counts(stack, driver, 3).applied == 3, 30, "the settings")

    opened_at = datetime.now(UTC)
    good: list[dict[str, Any]] = []
    hostile: list[dict[str, Any]] = []
    for account in accounts:
        for n in range(PER_ACCOUNT):
            base = {"conversation_id": f"c{n}", "contact_id": f"k{n}", "line_id": "l1"}
            good.append(
                driver._event("conversation.opened", account, opened_at, agent_id="ana", **base)
            )
            # The same instant at an odd but valid offset: accepted, changes no deadline.
            odd = driver._event("conversation.message", account, opened_at, sender="bot", **base)
            odd["occurred_at"] = opened_at.astimezone(timezone(timedelta(hours=23, minutes=59)))
            odd["occurred_at"] = odd["occurred_at"].isoformat()
            good.append(odd)
        for n, (type_, fields, occurred_at) in enumerate(HOSTILE):
            base = {"conversation_id": f"c{n}", "contact_id": f"k{n}", "line_id": "l1"}
            bad = driver._event(type_, account, opened_at, **fields, **base)
            bad["occurred_at"] = occurred_at
            hostile.append(bad)
    driver.send(stack.broker_url, shuffled([*good, *hostile]), 10)
    accepted = 3 + len(good) + len(hostile)
    must_close = {(a, f"c{n}") for a in accounts for n in range(PER_ACCOUNT)}

    def settled() -> bool:
        now = counts(stack, driver, accepted)
        return now.lost == 0 and must_close <= now.closed_conversations and now.unpublished == 0

    wait_until(settled, 60, "every conversation to close")
    final = counts(stack, driver, accepted)
    print(f"\nfault figures: {final.line()}")

    assert final.lost == 0, final.line()
    assert final.duplicated_effects == 0, final.line()
    assert final.dead_lettered == len(hostile), final.line()
    assert final.auto_closed == len(must_close), final.line()
    lags = close_lags(stack, driver)
    print(f"close lag after the deadline: max {max(lags):.2f} s over {len(lags)} closes")
    assert max(lags) <= ON_TIME.total_seconds()
    assert_quarantined(stack, planted)
    health = run_convlife(["health", "--checks", "beat"], stack.env)
    assert health.returncode == 0, health.stdout + health.stderr
    assert "last successful sweep" in health.stdout


def counts(stack: Stack, driver: Driver, accepted: int) -> Counts:
    return stack.count(driver, accepted)


def close_lags(stack: Stack, driver: Driver) -> list[float]:
    """Seconds from each auto-closed conversation's deadline to its decision."""
    durations = TypeAdapter(timedelta)
    with stack.engine.connect() as connection:
        rows = connection.execute(
            select(decisions.c.data).where(
                decisions.c.account_id.like(f"{driver.run}-%"),
                decisions.c.type == "conversation.auto_closed",
            )
        ).all()
    lags = []
    for row in rows:
        data = json.loads(row.data)
        deadline = datetime.fromisoformat(data["last_activity_at"]) + durations.validate_python(
            data["inactivity_close_after"]
        )
        lags.append((datetime.fromisoformat(data["decided_at"]) - deadline).total_seconds())
    return lags


def assert_quarantined(stack: Stack, planted: tuple[str, str]) -> None:
    account, conversation = planted
    with stack.engine.connect() as connection:
        due = connection.execute(
            select(conversations.c.close_due_at).where(
                conversations.c.account_id == account,
                conversations.c.conversation_id == conversation,
            )
        ).scalar_one()
        letters = connection.execute(
            select(dead_letters.c.error).where(dead_letters.c.account_id == account)
        ).all()
    assert due is None
    assert len(letters) == 1
    assert "quarantined" in letters[0].error
