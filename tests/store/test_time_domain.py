"""Every datetime reaches the store in UTC, on both write paths (bound parameters and the JSON
record sets of `bulk_insert`): an offset is never left for the database to interpret."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.engine import Engine

from policies.state import Conversation, Status
from store import conversations
from store.db import rows_json
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
