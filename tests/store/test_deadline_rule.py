"""The next check has one rule (policies.inactivity.next_check: the warning time while a
warning is due, else the close deadline); the store's reschedule of a whole account (one SQL
UPDATE on PostgreSQL, pages through the rule on SQLite) must give every conversation the time
the rule gives it, whatever the states (warned or not) and settings (warning or not, longer
than the close setting or not).

A property test without a library: many random states from a fixed seed (so a failure is
reproducible), edges (a microsecond, a hundred years, Never, closed conversations) included.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from policies.inactivity import close_deadline, next_check
from policies.state import AccountSettings, ClosedBy, Conversation, Status
from service.deadlines import reschedule_account
from store import conversations
from store.tables import conversations as conversations_table
from tests.support import new_id

ROUNDS = 60
CONVERSATIONS_PER_ROUND = 12
EPOCH = datetime(1971, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365 * 250)  # last activity up to the 23rd century
HUNDRED_YEARS = timedelta(days=36500)  # the longest setting an event may carry
EDGE_SETTINGS = [None, timedelta(microseconds=1), HUNDRED_YEARS, timedelta(days=1)]


def a_close_setting(rng: random.Random) -> timedelta | None:
    if rng.random() < 0.3:
        return rng.choice(EDGE_SETTINGS)
    seconds = rng.choice([60, 3600, 86400, 86400 * 31, 86400 * 400])
    return timedelta(seconds=rng.randint(1, seconds), microseconds=rng.randint(0, 999_999))


def a_warning_setting(rng: random.Random) -> timedelta | None:
    if rng.random() < 0.4:
        return None
    return a_close_setting(rng)


def settings_of(rng: random.Random) -> AccountSettings:
    return AccountSettings(
        inactivity_close_after=a_close_setting(rng), close_warning_before=a_warning_setting(rng)
    )


def a_conversation(rng: random.Random, account_id: str) -> Conversation:
    last_activity = EPOCH + timedelta(
        seconds=rng.randint(0, int(SPAN.total_seconds())), microseconds=rng.randint(0, 999_999)
    )
    if rng.random() < 0.3:
        return Conversation(
            account_id=account_id,
            conversation_id=new_id("conv"),
            contact_id=new_id("contact"),
            line_id="line-1",
            status=Status.CLOSED,
            last_activity_at=last_activity,
            status_changed_at=last_activity,
            closed_at=last_activity,
            closed_by=ClosedBy.AGENT,
        )
    warned = rng.random() < 0.3
    return Conversation(
        account_id=account_id,
        conversation_id=new_id("conv"),
        contact_id=new_id("contact"),
        line_id="line-1",
        status=Status.OPEN,
        last_activity_at=last_activity,
        close_warned_at=last_activity + timedelta(seconds=1) if warned else None,
    )


def stored_deadlines(connection: Connection, account_id: str) -> dict[str, datetime | None]:
    rows = connection.execute(
        select(conversations_table.c.conversation_id, conversations_table.c.close_due_at).where(
            conversations_table.c.account_id == account_id
        )
    )
    return {row.conversation_id: row.close_due_at for row in rows}


def test_rescheduling_an_account_gives_every_conversation_the_next_check_the_rule_gives(
    engine: Engine,
) -> None:
    rng = random.Random(20261125)
    for _ in range(ROUNDS):
        account_id = new_id("acct")
        states = [a_conversation(rng, account_id) for _ in range(CONVERSATIONS_PER_ROUND)]
        before, after = settings_of(rng), settings_of(rng)
        with engine.begin() as connection:
            conversations.save(
                connection,
                {conversations.key_of(c): (c, next_check(c, before)) for c in states},
            )
            reschedule_account(connection, account_id, after)
            stored = stored_deadlines(connection, account_id)
        expected = {c.conversation_id: next_check(c, after) for c in states}
        assert stored == expected, (before, after)


def test_a_deadline_past_year_9999_is_none_in_the_store_as_in_the_rule(engine: Engine) -> None:
    # Unreachable through events today (occurred_at is at most the clock plus the allowed skew,
    # a setting at most a hundred years), but the rule says Never there, and the SQL must too.
    account_id = new_id("acct")
    rng = random.Random(9999)
    states = [
        replace(
            a_conversation(rng, account_id),
            status=Status.OPEN,
            closed_at=None,
            closed_by=None,
            last_activity_at=datetime(9990, 1, 1, tzinfo=UTC) + offset,
        )
        for offset in (timedelta(0), timedelta(days=1000, microseconds=1))
    ]
    after = AccountSettings(inactivity_close_after=HUNDRED_YEARS)
    with engine.begin() as connection:
        conversations.save(connection, {conversations.key_of(c): (c, None) for c in states})
        reschedule_account(connection, account_id, after)
        stored = stored_deadlines(connection, account_id)
    assert stored == {c.conversation_id: close_deadline(c, after) for c in states}


def test_a_warning_past_year_9999_is_none_in_the_store_as_in_the_rule(engine: Engine) -> None:
    # A deadline past year 9999 is Never, and a warning of a close that never comes is none:
    # the SQL must not warn at (deadline - warning) when the deadline itself is out of range.
    account_id = new_id("acct")
    rng = random.Random(99999)
    state = replace(
        a_conversation(rng, account_id),
        status=Status.OPEN,
        closed_at=None,
        closed_by=None,
        close_warned_at=None,
        last_activity_at=datetime(9990, 1, 1, tzinfo=UTC),
    )
    after = AccountSettings(
        inactivity_close_after=HUNDRED_YEARS, close_warning_before=timedelta(days=36000)
    )
    with engine.begin() as connection:
        conversations.save(connection, {conversations.key_of(state): (state, None)})
        reschedule_account(connection, account_id, after)
        stored = stored_deadlines(connection, account_id)
    assert (
        stored == {state.conversation_id: None} == {state.conversation_id: next_check(state, after)}
    )
