"""Every datetime reaches the store in UTC, on both write paths (bound parameters and the JSON
record sets of `bulk_insert`): an offset is never left for the database to interpret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine

from policies.state import Conversation, Status
from store import conversations
from store.db import UTCDateTime, rows_json
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")
PLUS_FIVE = timezone(timedelta(hours=5))


def test_the_json_rows_carry_every_datetime_in_utc() -> None:
    row = {"at": datetime(2026, 3, 1, 15, 0, tzinfo=PLUS_FIVE)}
    assert json.loads(rows_json([row])) == [{"at": "2026-03-01T10:00:00+00:00"}]


def test_a_datetime_that_has_no_utc_form_is_refused_before_it_reaches_the_database() -> None:
    # Year 1 at +00:01 is year 0 in UTC: sent raw, PostgreSQL stored a BC date.
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(minutes=1)))
    with pytest.raises(OverflowError):
        rows_json([{"at": year_one}])


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        rows_json([{"at": datetime(2026, 3, 1)}])


def test_a_conversation_saved_with_offsets_reads_back_the_same_instants_in_utc(
    engine: Engine,
) -> None:
    account = new_id("acct")
    local = T0.astimezone(PLUS_FIVE)
    conversation = Conversation(
        account_id=account,
        conversation_id="c1",
        contact_id="k",
        line_id="l",
        status=Status.OPEN,
        last_activity_at=local,
        status_changed_at=local,
        assigned_at=local,
    )
    with engine.begin() as connection:
        conversations.save(
            connection, {(account, "c1"): (conversation, local + timedelta(hours=1))}
        )
        found = conversations.get(connection, account, "c1")

    assert found is not None
    stored, due = found
    assert (stored.last_activity_at, stored.status_changed_at, due) == (
        T0,
        T0,
        T0 + timedelta(hours=1),
    )
    assert stored.last_activity_at.tzinfo is UTC


def _sqlite_processors() -> tuple[Any, Any]:
    dialect = sqlite.dialect()
    column_type = UTCDateTime().dialect_impl(dialect)
    return column_type.bind_processor(dialect), column_type.result_processor(dialect, None)


@pytest.mark.parametrize(
    "instant",
    [
        datetime(2026, 3, 1, 15, 0, 7, 42, tzinfo=PLUS_FIVE),
        datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_sqlite_stores_each_datetime_as_sqlalchemys_naive_utc_text_and_reads_it_back_aware(
    instant: datetime,
) -> None:
    """The text is SQLAlchemy's own SQLite storage format (rows written before and after read
    alike), always with microseconds; reading it gives the same instant, in UTC."""
    bind, parse = _sqlite_processors()
    naive_utc = instant.astimezone(UTC).replace(tzinfo=None)
    sqlalchemys = sqlite.DATETIME().bind_processor(sqlite.dialect())(naive_utc)

    stored = bind(instant)

    assert stored == sqlalchemys
    assert len(stored) == 26
    back = parse(stored)
    assert back == instant
    assert back.tzinfo is UTC


def test_sqlite_refuses_a_naive_datetime_and_passes_null_through() -> None:
    bind, parse = _sqlite_processors()
    with pytest.raises(ValueError, match="naive datetime"):
        bind(datetime(2026, 3, 1))
    assert bind(None) is None
    assert parse(None) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01 10:00:00", T0),  # no microseconds: SQLite's own datetime() writes this
        ("2026-03-01 15:00:00.000000+05:00", T0),  # an offset, as a hand-written row may have
        ("2026-03-01T10:00:00Z", T0),
    ],
)
def test_sqlite_reads_stored_text_it_did_not_write_itself_as_the_same_utc_instant(
    text: str, expected: datetime
) -> None:
    _bind, parse = _sqlite_processors()
    back = parse(text)
    assert back == expected
    assert back.tzinfo is UTC
