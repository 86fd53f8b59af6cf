"""The sweep's set-based close (PostgreSQL, `store.conversations.close_due_at_once`) and the
rule (`policies.inactivity.auto_close`) must agree: on the same states and settings, the SQL
closes exactly the conversations the rule closes, leaves each as the rule leaves it, and the
decisions made from what it returns are the rule's decisions, byte for byte.

A property test without a library: random states from a fixed seed (so a failure is
reproducible), with the edges (a microsecond, a hundred years, a deadline exactly now, closed
and quarantined conversations, lines the scope leaves out) included.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Connection

from events.business_hours import BusinessHours
from policies.configuration import effective, set_by
from policies.inactivity import auto_close_decision, auto_closed, closing, is_due
from policies.state import AccountSettings, ClosedBy, Conversation, LineSettings, Status
from store import conversations
from store.conversations import DueScan
from store.db import make_engine
from tests.support import new_id

ROUNDS = 80
CONVERSATIONS_PER_ROUND = 14
LINES = ("line-1", "line-2", "line-3")
EPOCH = datetime(1971, 1, 1, tzinfo=UTC)
SPAN = timedelta(days=365 * 250)
HUNDRED_YEARS = timedelta(days=36500)
EDGES = [timedelta(microseconds=1), timedelta(days=1), HUNDRED_YEARS]


@pytest.fixture
def connection(postgres_url: str) -> Iterator[Connection]:
    """A connection to the session's PostgreSQL store in a transaction rolled back at the end:
    nothing stays behind (a due row left committed would be claimed by other tests' sweeps)."""
    engine = make_engine(postgres_url)
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()
    engine.dispose()


def a_close_setting(rng: random.Random) -> timedelta:
    if rng.random() < 0.3:
        return rng.choice(EDGES)
    seconds = rng.choice([60, 3600, 86400, 86400 * 31, 86400 * 400, 86400 * 365 * 40])
    return timedelta(seconds=rng.randint(1, seconds), microseconds=rng.randint(0, 999_999))


def a_state(rng: random.Random, account_id: str, now: datetime) -> Conversation:
    """An open or closed conversation whose last activity is anywhere from long before `now`
    to after it, sometimes exactly a setting's length before it."""
    last_activity = EPOCH + timedelta(
        seconds=rng.randint(0, int(SPAN.total_seconds())), microseconds=rng.randint(0, 999_999)
    )
    if rng.random() < 0.15:
        last_activity = now - rng.choice(EDGES)  # due exactly now under that setting
    opened = Conversation(
        account_id=account_id,
        conversation_id=new_id("conv"),
        contact_id=new_id("contact"),
        line_id=rng.choice(LINES),
        status=Status.OPEN,
        last_activity_at=last_activity,
        # Warned under an earlier setting: a setting without a warning closes it all the same.
        close_warned_at=last_activity + timedelta(seconds=1) if rng.random() < 0.2 else None,
        assignee_agent_id=rng.choice([None, "agent-1"]),
    )
    if rng.random() < 0.2:
        return replace(
            opened,
            status=Status.CLOSED,
            closed_at=last_activity,
            closed_by=ClosedBy.AGENT,
            closing_agent_id="agent-1",
            close_reason="sale",
        )
    return opened


def a_stored_next_check(rng: random.Random, now: datetime) -> datetime | None:
    """What the row holds: a due scan leaves any next check an earlier setting gave it; None is
    a quarantined row, which no close may take."""
    if rng.random() < 0.1:
        return None
    return now + timedelta(days=rng.randint(-400, 4000))


def test_the_set_based_close_closes_what_the_rule_closes_as_the_rule_closes_it(
    connection: Connection,
) -> None:
    rng = random.Random(20261127)
    closes_seen = left_seen = 0
    for _ in range(ROUNDS):
        account_id = new_id("acct")
        now = EPOCH + SPAN * rng.random()
        account = AccountSettings(inactivity_close_after=a_close_setting(rng))
        # The scope: the account's own, leaving out the lines that override its deadlines, or
        # one line with its own close setting (so its decisions name the line) or without.
        if rng.random() < 0.5:
            scan = DueScan(account_id, None, now)
            except_lines = frozenset(rng.sample(LINES, rng.randint(0, 1)))
            overrides = LineSettings()
        else:
            line_id = rng.choice(LINES)
            scan = DueScan(account_id, line_id, now)
            except_lines = frozenset()
            own = {"inactivity_close_after": a_close_setting(rng)} if rng.random() < 0.6 else {}
            overrides = LineSettings(own)
        settings = effective(account, overrides)
        states = [a_state(rng, account_id, now) for _ in range(CONVERSATIONS_PER_ROUND)]
        stored_checks = {c.conversation_id: a_stored_next_check(rng, now) for c in states}
        conversations.save(
            connection,
            {conversations.key_of(c): (c, stored_checks[c.conversation_id]) for c in states},
        )
        idle = conversations.close_due_at_once(
            connection, scan, settings, except_lines, now, limit=1000
        )
        assert idle is not None
        who = set_by("inactivity_close_after", scan.line_id or "", overrides)
        made = {row.conversation_id: closing(row, settings, now, who=who) for row in idle}
        after = {
            c.conversation_id: conversations.get(connection, account_id, c.conversation_id)
            for c in states
        }

        in_scope = [
            c
            for c in states
            if (scan.line_id is None or c.line_id == scan.line_id)
            and c.line_id not in except_lines
            and stored_checks[c.conversation_id] is not None
        ]
        expected = {
            c.conversation_id: decision
            for c in in_scope
            if (decision := auto_close_decision(c, settings, now, line=overrides)) is not None
        }
        context = (settings, overrides, except_lines, now)
        assert list(made) == sorted(made, key=lambda c: made[c].last_activity_at), context
        assert made.keys() == expected.keys(), context
        for conversation_id, decision in made.items():
            assert decision.model_dump_json() == expected[conversation_id].model_dump_json()
        for c in states:
            if c.conversation_id in expected:
                assert after[c.conversation_id] == (auto_closed(c, now), None), context
            else:
                assert after[c.conversation_id] == (c, stored_checks[c.conversation_id]), context
        closes_seen += len(made)
        left_seen += sum(is_due(c, settings, now) and c.conversation_id not in made for c in states)
    # The rounds reach both sides: closes, and due conversations the scope leaves alone.
    assert closes_seen > ROUNDS
    assert left_seen > 0


NOW = datetime(2026, 11, 27, tzinfo=UTC)
ONE_DAY = AccountSettings(inactivity_close_after=timedelta(days=1))


def stored_open(
    connection: Connection, account_id: str, idle_for: list[timedelta]
) -> list[Conversation]:
    """Open conversations c0, c1, ... idle for these long at NOW, stored as due NOW."""
    states = [
        Conversation(
            account_id=account_id,
            conversation_id=f"c{n}",
            contact_id=new_id("contact"),
            line_id="line-1",
            status=Status.OPEN,
            last_activity_at=NOW - idle,
        )
        for n, idle in enumerate(idle_for)
    ]
    conversations.save(connection, {conversations.key_of(c): (c, NOW) for c in states})
    return states


def test_a_limited_set_based_close_takes_the_oldest_activity_first(connection: Connection) -> None:
    account_id = new_id("acct")
    states = stored_open(connection, account_id, [timedelta(days=2, hours=n) for n in range(10)])
    scan = DueScan(account_id, None, NOW)
    first = conversations.close_due_at_once(connection, scan, ONE_DAY, (), NOW, limit=4)
    rest = conversations.close_due_at_once(connection, scan, ONE_DAY, (), NOW, limit=100)
    assert first is not None
    assert rest is not None
    oldest_first = sorted(states, key=lambda c: c.last_activity_at)
    assert [r.conversation_id for r in first] == [c.conversation_id for c in oldest_first[:4]]
    assert [r.conversation_id for r in rest] == [c.conversation_id for c in oldest_first[4:]]


@pytest.mark.parametrize(
    "settings",
    [
        AccountSettings(inactivity_close_after=None),
        AccountSettings(
            inactivity_close_after=timedelta(days=1), close_warning_before=timedelta(hours=1)
        ),
        AccountSettings(
            inactivity_close_after=timedelta(days=1),
            business_hours=BusinessHours(timezone="UTC", weekly={"mon": (("09:00", "18:00"),)}),
        ),
    ],
    ids=["never", "warning", "business-hours"],
)
def test_settings_under_which_a_due_row_may_not_be_a_close_are_left_to_the_rule(
    connection: Connection, settings: AccountSettings
) -> None:
    """Never closes nothing; with a warning, an unwarned conversation is warned first; in
    business hours SQL cannot count the time. The store declines and writes nothing."""
    account_id = new_id("acct")
    [state] = stored_open(connection, account_id, [timedelta(days=30)])
    scan = DueScan(account_id, None, NOW)
    assert conversations.close_due_at_once(connection, scan, settings, (), NOW, 100) is None
    assert conversations.get(connection, account_id, state.conversation_id) == (state, NOW)


def test_the_set_based_close_skips_what_the_transaction_holds_already(
    connection: Connection,
) -> None:
    account_id = new_id("acct")
    stored_open(connection, account_id, [timedelta(days=3)] * 3)
    scan = DueScan(account_id, None, NOW)
    idle = conversations.close_due_at_once(connection, scan, ONE_DAY, (), NOW, 100, skip={"c1"})
    assert idle is not None
    assert [r.conversation_id for r in idle] == ["c0", "c2"]
