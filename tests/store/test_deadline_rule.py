"""The next check has one rule (policies.inactivity.next_check: the warning time while a
warning is due, else the close deadline, counted in business hours where they apply); the
store's reschedule of a whole account (one SQL UPDATE on PostgreSQL, pages through the rule on
SQLite and wherever business hours apply) must give every conversation the time the rule gives
it, whatever the states (warned or not) and settings (warning or not, longer than the close
setting or not, business hours or not).

A property test without a library: many random states from a fixed seed (so a failure is
reproducible), edges (a microsecond, a hundred years, Never, closed conversations) included.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from events.business_hours import BusinessHours
from events.models import LATEST
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
CALENDARS = [
    BusinessHours(
        timezone="America/Sao_Paulo",
        weekly=dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), (("09:00", "18:00"),)),
        holidays=(datetime(2026, 12, 25).date(),),
    ),
    BusinessHours(timezone="Europe/Berlin", weekly={"sat": (("22:00", "06:00"),)}),
    BusinessHours(timezone="UTC", weekly={}),  # never open: never a deadline
]


def a_close_setting(rng: random.Random, edges: list[timedelta | None]) -> timedelta | None:
    if rng.random() < 0.3:
        return rng.choice(edges)
    seconds = rng.choice([60, 3600, 86400, 86400 * 31, 86400 * 400])
    return timedelta(seconds=rng.randint(1, seconds), microseconds=rng.randint(0, 999_999))


def a_warning_setting(rng: random.Random, edges: list[timedelta | None]) -> timedelta | None:
    if rng.random() < 0.4:
        return None
    return a_close_setting(rng, edges)


def settings_of(
    rng: random.Random,
    edges: list[timedelta | None],
    calendars: Callable[[random.Random], BusinessHours | None],
) -> AccountSettings:
    return AccountSettings(
        inactivity_close_after=a_close_setting(rng, edges),
        close_warning_before=a_warning_setting(rng, edges),
        business_hours=calendars(rng),
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


def left_for_the_sweep(
    c: Conversation, *, before: AccountSettings, after: AccountSettings, now: datetime, in_sql: bool
) -> bool:
    """Whether a reschedule at `now` leaves the conversation's stored next check for the due
    scan: in one SQL statement, open, holding a next check, and due by `now` under `after`."""
    due = next_check(c, after)
    return (
        in_sql
        and c.status is Status.OPEN
        and next_check(c, before) is not None
        and due is not None
        and due <= now
    )


def a_calendar(rng: random.Random) -> BusinessHours | None:
    return None if rng.random() < 0.25 else rng.choice(CALENDARS)


# With business hours the settings stay within 400 days: the calendar walks a hundred years of
# business time (centuries on the clock) in 0.1-0.2 s, too slow for hundreds of random rounds;
# the edge test below holds the longest setting to the rule.
@pytest.mark.parametrize(
    ("calendars", "edges", "rounds"),
    [
        (lambda rng: None, EDGE_SETTINGS, ROUNDS),
        (a_calendar, [None, timedelta(microseconds=1), timedelta(days=1)], ROUNDS // 2),
    ],
    ids=["clock", "business-hours"],
)
def test_rescheduling_an_account_gives_every_conversation_the_next_check_the_rule_gives(
    engine: Engine,
    calendars: Callable[[random.Random], BusinessHours | None],
    edges: list[timedelta | None],
    rounds: int,
) -> None:
    """... or, on PostgreSQL, leaves one whose next check has come by the change to the
    sweep's claim of the scope's due scan, which then finds exactly those the rule makes due."""
    rng = random.Random(20261125)
    left_total = 0
    for _ in range(rounds):
        account_id = new_id("acct")
        states = [a_conversation(rng, account_id) for _ in range(CONVERSATIONS_PER_ROUND)]
        before, after = settings_of(rng, edges, calendars), settings_of(rng, edges, calendars)
        now = EPOCH + SPAN * rng.random()
        with engine.begin() as connection:
            conversations.save(
                connection,
                {conversations.key_of(c): (c, next_check(c, before)) for c in states},
            )
            reschedule_account(connection, account_id, after, now)
            stored = stored_deadlines(connection, account_id)
            claimed = {
                c.conversation_id
                for c in conversations.claim_due_at_once(
                    connection,
                    conversations.DueScan(account_id, None, now),
                    after,
                    (),
                    now,
                    limit=1000,
                ).conversations
            }
        in_one_statement = engine.dialect.name == "postgresql" and after.business_hours is None
        left = partial(
            left_for_the_sweep, before=before, after=after, now=now, in_sql=in_one_statement
        )

        expected = {
            c.conversation_id: next_check(c, before) if left(c) else next_check(c, after)
            for c in states
        }
        assert stored == expected, (before, after, now)
        due_now = {
            c.conversation_id
            for c in states
            if c.status is Status.OPEN and (due := next_check(c, after)) is not None and due <= now
        }
        assert claimed == (due_now if in_one_statement else set()), (before, after, now)
        left_total += sum(map(left, states))
    if engine.dialect.name == "postgresql" and calendars(random.Random(0)) is None:
        assert left_total > 0  # the rounds do reach the case


@pytest.mark.parametrize("calendar", [None, CALENDARS[0]], ids=["clock", "business-hours"])
def test_a_deadline_at_or_after_the_latest_instant_is_none_in_the_store_as_in_the_rule(
    engine: Engine, calendar: BusinessHours | None
) -> None:
    # Unreachable through events today (occurred_at is at most the clock plus the allowed skew,
    # a setting at most a hundred years), but the rule says Never there, and the SQL must too.
    account_id = new_id("acct")
    rng = random.Random(9999)
    day = timedelta(days=1)
    lasts = [
        LATEST - day - timedelta(microseconds=1),  # the clock: just inside
        LATEST - day,  # the clock: exactly at LATEST, so never
        datetime(8990, 1, 1, tzinfo=UTC),  # plus a hundred years: past LATEST
        datetime(9990, 1, 1, tzinfo=UTC),
    ]
    states = [
        replace(
            a_conversation(rng, account_id),
            status=Status.OPEN,
            closed_at=None,
            closed_by=None,
            last_activity_at=last,
        )
        for last in lasts
    ]
    for close_after in (day, HUNDRED_YEARS):
        after = AccountSettings(inactivity_close_after=close_after, business_hours=calendar)
        with engine.begin() as connection:
            conversations.save(connection, {conversations.key_of(c): (c, None) for c in states})
            reschedule_account(connection, account_id, after, EPOCH)
            stored = stored_deadlines(connection, account_id)
        assert stored == {c.conversation_id: close_deadline(c, after) for c in states}
    if calendar is None:
        assert stored[states[0].conversation_id] is None  # a hundred years on: never
        assert set(stored.values()) == {None}


def test_a_warning_past_the_latest_instant_is_none_in_the_store_as_in_the_rule(
    engine: Engine,
) -> None:
    # A deadline at or past LATEST is Never, and a warning of a close that never comes is none:
    # the SQL must not warn at (deadline - warning) when the deadline itself is out of range.
    account_id = new_id("acct")
    rng = random.Random(99999)
    state = replace(
        a_conversation(rng, account_id),
        status=Status.OPEN,
        closed_at=None,
        closed_by=None,
        close_warned_at=None,
        last_activity_at=datetime(8990, 1, 1, tzinfo=UTC),
    )
    after = AccountSettings(
        inactivity_close_after=HUNDRED_YEARS, close_warning_before=timedelta(days=36000)
    )
    with engine.begin() as connection:
        conversations.save(connection, {conversations.key_of(state): (state, None)})
        reschedule_account(connection, account_id, after, EPOCH)
        stored = stored_deadlines(connection, account_id)
    assert (
        stored == {state.conversation_id: None} == {state.conversation_id: next_check(state, after)}
    )
