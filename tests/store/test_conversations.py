"""store.conversations on SQLite and PostgreSQL: create once, lock, save, claim what is due.

`claim_due` sees every account's rows, and the PostgreSQL database is shared by the session:
tests that claim work in a transaction they roll back, at dates (2000) no other test uses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, exc
from sqlalchemy.engine import Connection, Engine

from events.parsing import parse_event
from policies.state import ClosedBy, Conversation, Status
from store import conversations
from store.db import make_engine
from store.tables import conversations as conversations_table
from tests.support import conversation_event, new_id, utc

T0 = utc("2026-03-01T10:00:00")
LONG_AGO = utc("2000-06-01T00:00:00")
µs = timedelta(microseconds=1)


def parsed(type_: str, account: str, conversation: str, at: datetime, **fields: Any) -> Any:
    return parse_event(conversation_event(type_, account, conversation, at, **fields))


def an_open(account: str, conversation: str, **fields: Any) -> Conversation:
    values: dict[str, Any] = {
        "contact_id": "contact-1",
        "line_id": "line-1",
        "status": Status.OPEN,
        "last_activity_at": T0,
    }
    return Conversation(account_id=account, conversation_id=conversation, **{**values, **fields})


def stored(
    connection: Connection, account: str, conversation: str
) -> tuple[Conversation, datetime | None]:
    found = conversations.get(connection, account, conversation)
    assert found is not None, f"no conversation {conversation}"
    return found


@pytest.fixture
def rolled_back(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is rolled back at the end: nothing stays behind."""
    with engine.connect() as connection:
        transaction = connection.begin()
        yield connection
        transaction.rollback()


def test_create_missing_inserts_a_conversation_once_and_never_overwrites_it(
    engine: Engine,
) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        conversations.create_missing(connection, [parsed("conversation.opened", account, "c1", T0)])
        created = stored(connection, account, "c1")
        assigned = an_open(account, "c1", assignee_agent_id="ana", assigned_at=T0)
        conversations.save(connection, {(account, "c1"): (assigned, T0 + timedelta(hours=1))})
    with engine.begin() as connection:
        later = parsed(
            "conversation.note", account, "c1", T0 + timedelta(hours=1), contact_id="someone"
        )
        conversations.create_missing(connection, [later])
        again = stored(connection, account, "c1")

    assert created == (an_open(account, "c1"), None)
    assert again == (assigned, T0 + timedelta(hours=1))


def test_create_missing_builds_a_new_conversation_from_its_earliest_event(
    engine: Engine,
) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        conversations.create_missing(
            connection,
            [
                parsed("conversation.note", account, "c1", T0 + timedelta(minutes=5)),
                parsed("conversation.note", account, "c1", T0),
            ],
        )
        state, _ = stored(connection, account, "c1")
    assert state.last_activity_at == T0


def test_lock_returns_conversations_by_key_and_every_conversation_of_a_contact_on_a_line(
    engine: Engine,
) -> None:
    account = new_id("acct")
    rows = {
        ("c1", "contact-1", "line-1"),
        ("c2", "contact-2", "line-1"),
        ("c3", "contact-2", "line-1"),
        ("c4", "contact-2", "line-2"),
        ("c5", "contact-3", "line-1"),
    }
    with engine.begin() as connection:
        conversations.create_missing(
            connection,
            [
                parsed("conversation.opened", account, c, T0, contact_id=k, line_id=li)
                for c, k, li in rows
            ],
        )
    with engine.begin() as connection:
        by_key = conversations.lock(connection, {(account, "c1")})
        by_contact = conversations.lock(connection, set(), {(account, "contact-2", "line-1")})
        both = conversations.lock(
            connection, {(account, "c5"), (account, "absent")}, {(account, "contact-2", "line-2")}
        )

    assert set(by_key) == {(account, "c1")}
    assert by_key[(account, "c1")].contact_id == "contact-1"
    assert set(by_contact) == {(account, "c2"), (account, "c3")}
    assert set(both) == {(account, "c4"), (account, "c5")}


def test_save_round_trips_every_field_as_aware_utc_with_microseconds(engine: Engine) -> None:
    account = new_id("acct")
    plus_two = timezone(timedelta(hours=2))
    full = Conversation(
        account_id=account,
        conversation_id="c1",
        contact_id="contact-9",
        line_id="line-9",
        status=Status.CLOSED,
        last_activity_at=utc("2026-03-01T10:00:00.123456"),
        status_changed_at=utc("2026-03-01T10:05:00.000001"),
        assignee_agent_id="ana",
        assignee_group_id="sales",
        assignee_bot=True,
        assigned_at=datetime(2026, 3, 1, 12, 1, 2, 999999, tzinfo=plus_two),
        closed_at=utc("2026-03-01T10:05:00.000001"),
        closed_by=ClosedBy.AGENT,
        closing_agent_id="ana",
        close_reason="resolved ✓",
        previous_closed_at=utc("2026-03-01T09:00:00.000002"),
        previous_closed_by=ClosedBy.SYSTEM,
        previous_closing_agent_id="bruno",
        previous_close_reason="spam ✓",
        previous_opened_at=datetime(2026, 3, 1, 11, 30, 0, 5, tzinfo=plus_two),
    )
    due = utc("2026-03-02T10:00:00.654321")
    with engine.begin() as connection:
        conversations.create_missing(connection, [parsed("conversation.opened", account, "c1", T0)])
        conversations.save(connection, {(account, "c1"): (full, due)})
    with engine.connect() as connection:
        found = stored(connection, account, "c1")

    assert found == (full, due)
    state, stored_due = found
    moments = (state.last_activity_at, state.assigned_at, state.closed_at, stored_due)
    for moment in (*moments, state.previous_closed_at, state.previous_opened_at):
        assert moment is not None
        assert moment.utcoffset() == timedelta(0)
    assert state.assigned_at == utc("2026-03-01T10:01:02.999999")


def test_save_can_clear_a_deadline_and_optional_fields(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        conversations.create_missing(connection, [parsed("conversation.opened", account, "c1", T0)])
        assigned = an_open(account, "c1", assignee_agent_id="ana", assigned_at=T0)
        conversations.save(connection, {(account, "c1"): (assigned, T0 + timedelta(hours=1))})
        conversations.save(connection, {(account, "c1"): (an_open(account, "c1"), None)})
        assert conversations.get(connection, account, "c1") == (an_open(account, "c1"), None)


ODD_IDS = ['quote"d', "back\\slash", "ünï 中文 🙂", "[1, 2]", "null", "7"]
"""Ids that JSON must escape or could read as something other than a string."""


@pytest.mark.parametrize("odd", ODD_IDS)
def test_lock_finds_conversations_whatever_characters_their_ids_hold(
    engine: Engine, odd: str
) -> None:
    account = new_id(f"acct {odd}")
    with engine.begin() as connection:
        conversations.create_missing(
            connection,
            [
                parsed("conversation.opened", account, f"c-{odd}", T0, contact_id=odd),
                parsed("conversation.opened", account, odd, T0, contact_id="k", line_id=odd),
            ],
        )
    with engine.begin() as connection:
        by_key = conversations.lock(connection, {(account, f"c-{odd}")})
        by_contact = conversations.lock(connection, set(), {(account, "k", odd)})
        named_both_ways = conversations.lock(
            connection, {(account, f"c-{odd}")}, {(account, odd, "line-1")}
        )

    assert set(by_key) == {(account, f"c-{odd}")}
    assert by_key[(account, f"c-{odd}")].contact_id == odd
    assert set(by_contact) == {(account, odd)}
    assert set(named_both_ways) == {(account, f"c-{odd}")}


def test_the_same_conversation_id_in_two_accounts_is_two_conversations(engine: Engine) -> None:
    alice, bob = new_id("alice"), new_id("bob")
    with engine.begin() as connection:
        conversations.create_missing(
            connection,
            [
                parsed("conversation.opened", alice, "shared", T0, contact_id="k-alice"),
                parsed("conversation.opened", bob, "shared", T0, contact_id="k-bob"),
            ],
        )
        closed = an_open(alice, "shared", contact_id="k-alice", status=Status.CLOSED)
        conversations.save(connection, {(alice, "shared"): (closed, None)})
        locked = conversations.lock(connection, {(alice, "shared")}, {(bob, "k-alice", "line-1")})
        alice_found = stored(connection, alice, "shared")
        bob_found = stored(connection, bob, "shared")

    assert set(locked) == {(alice, "shared")}
    assert alice_found[0].status is Status.CLOSED
    assert (bob_found[0].status, bob_found[0].contact_id) == (Status.OPEN, "k-bob")


def _with_deadlines(connection: Connection, account: str, deadlines: dict[str, Any]) -> None:
    events = [parsed("conversation.opened", account, c, LONG_AGO) for c in deadlines]
    conversations.create_missing(connection, events)
    conversations.save(
        connection,
        {(account, c): (an_open(account, c), due) for c, due in deadlines.items()},
    )


def test_claim_due_returns_only_conversations_whose_deadline_has_come_oldest_first(
    rolled_back: Connection,
) -> None:
    account = new_id("acct")
    now = LONG_AGO + timedelta(days=1)
    _with_deadlines(
        rolled_back,
        account,
        {
            "at-now": now,
            "a-second-ago": now - timedelta(seconds=1),
            "an-hour-ago": now - timedelta(hours=1),
            "just-after": now + µs,
            "never": None,
        },
    )

    due = conversations.claim_due(rolled_back, now, limit=10).conversations

    assert [c.conversation_id for c in due] == ["an-hour-ago", "a-second-ago", "at-now"]
    assert (
        conversations.claim_due(rolled_back, now - timedelta(hours=1) - µs, 10).conversations == []
    )


def test_claim_due_honours_the_limit_taking_the_oldest(rolled_back: Connection) -> None:
    account = new_id("acct")
    now = LONG_AGO + timedelta(days=1)
    _with_deadlines(rolled_back, account, {f"c{i}": now - timedelta(minutes=i) for i in range(5)})

    due = conversations.claim_due(rolled_back, now, limit=2).conversations

    assert [c.conversation_id for c in due] == ["c4", "c3"]


def test_claim_due_compares_instants_whatever_the_offset_of_now(rolled_back: Connection) -> None:
    account = new_id("acct")
    deadline = LONG_AGO + timedelta(days=1)
    _with_deadlines(rolled_back, account, {"c1": deadline})
    same_instant_in_tokyo = deadline.astimezone(timezone(timedelta(hours=9)))

    assert conversations.claim_due(rolled_back, same_instant_in_tokyo - µs, 10).conversations == []
    assert [
        c.conversation_id
        for c in conversations.claim_due(rolled_back, same_instant_in_tokyo, 10).conversations
    ] == ["c1"]


def test_claim_due_in_two_transactions_at_once_gives_disjoint_rows_on_postgresql(
    postgres_url: str,
) -> None:
    account = new_id("acct")
    now = LONG_AGO + timedelta(days=2)
    engine = make_engine(postgres_url)
    names = [f"c{i}" for i in range(10)]
    with engine.begin() as connection:
        _with_deadlines(connection, account, {c: now - timedelta(seconds=1) for c in names})
    both_claimed = threading.Barrier(2, timeout=10)
    claimed: list[list[str]] = []
    errors: list[BaseException] = []

    def claim() -> None:
        try:
            with engine.connect() as connection:
                transaction = connection.begin()
                rows = conversations.claim_due(connection, now, limit=6).conversations
                claimed.append([c.conversation_id for c in rows if c.account_id == account])
                both_claimed.wait()  # both transactions hold their rows at once
                transaction.rollback()
        except BaseException as error:  # surfaced below
            errors.append(error)

    try:
        threads = [threading.Thread(target=claim) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not errors
        first, second = claimed
        assert not set(first) & set(second)
        assert sorted(first + second) == names
    finally:
        with engine.begin() as connection:  # due rows in the shared database would be swept
            connection.execute(
                delete(conversations_table).where(conversations_table.c.account_id == account)
            )
        engine.dispose()


def test_every_stored_datetime_is_read_back_in_utc(engine: Engine) -> None:
    account = new_id("acct")
    in_new_york = datetime(2026, 3, 1, 5, 0, tzinfo=timezone(timedelta(hours=-5)))
    with engine.begin() as connection:
        conversations.create_missing(
            connection, [parsed("conversation.note", account, "c1", in_new_york)]
        )
        state, _ = stored(connection, account, "c1")
    assert state.last_activity_at == T0
    assert state.last_activity_at.tzinfo == UTC


class _Orig(Exception):
    pass


@pytest.mark.parametrize(
    ("error", "row_fault"),
    [
        (exc.DataError("SELECT", {}, _Orig("timestamp too small (before year 1)")), True),
        (exc.IntegrityError("UPDATE", {}, _Orig("violates check constraint")), True),
        (exc.StatementError("bind", "SELECT", {}, ValueError("naive datetime")), True),
        (ValueError("Invalid isoformat string: 'not a time'"), True),
        (OverflowError("date value out of range"), True),
        (exc.OperationalError("SELECT", {}, _Orig("connection refused")), False),
        (exc.InternalError("UPDATE", {}, _Orig("read-only transaction")), False),
        (exc.InterfaceError("SELECT", {}, _Orig("connection already closed")), False),
        (exc.TimeoutError("QueuePool limit reached"), False),
        (RuntimeError("a bug"), False),
        (TypeError("a bug too"), False),
    ],
    ids=[
        "data-error",
        "constraint",
        "bind-conversion",
        "result-conversion",
        "overflow",
        "database-away",
        "read-only-failover",
        "connection-closed",
        "pool-exhausted",
        "a-bug",
        "a-type-error",
    ],
)
def test_only_errors_from_a_rows_values_set_the_row_aside(
    error: BaseException, row_fault: bool
) -> None:
    assert conversations.is_row_fault(error) is row_fault
