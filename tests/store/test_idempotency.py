"""store.idempotency on SQLite and PostgreSQL: each (account, event id) of an event that
occurred on a day is new once, within the transaction that claims it, until the retention
forgets it. On PostgreSQL the records are partitioned by that day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from store import idempotency
from store.idempotency import EventKey
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


def at(keys: Iterable[EventKey], occurred: datetime = T0) -> dict[EventKey, datetime]:
    """The keys of events that occurred at `occurred`, as claim takes them."""
    return dict.fromkeys(keys, occurred)


def test_a_claim_returns_the_keys_it_records(engine: Engine) -> None:
    account = new_id("acct")
    keys = {(account, "e1"), (account, "e2")}
    with engine.begin() as connection:
        assert idempotency.claim(connection, at(keys), T0) == keys


def test_a_second_claim_of_the_same_keys_returns_nothing(engine: Engine) -> None:
    account = new_id("acct")
    keys = [(account, "e1"), (account, "e2")]
    with engine.begin() as connection:
        idempotency.claim(connection, at(keys), T0)
    with engine.begin() as connection:
        assert idempotency.claim(connection, at(keys), T0) == set()


def test_a_claim_returns_only_the_keys_not_seen_before(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        idempotency.claim(connection, at([(account, "e1")]), T0)
        found = idempotency.claim(connection, at([(account, "e1"), (account, "e2")]), T0)
    assert found == {(account, "e2")}


def test_the_same_event_id_in_two_accounts_is_two_keys(engine: Engine) -> None:
    alice, bob = new_id("alice"), new_id("bob")
    with engine.begin() as connection:
        assert idempotency.claim(connection, at([(alice, "e1")]), T0) == {(alice, "e1")}
        assert idempotency.claim(connection, at([(bob, "e1")]), T0) == {(bob, "e1")}


def test_claiming_nothing_returns_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        assert idempotency.claim(connection, at([]), T0) == set()


def test_a_claim_rolled_back_with_its_transaction_can_be_claimed_again(engine: Engine) -> None:
    keys = [(new_id("acct"), "e1")]
    connection = engine.connect()
    transaction = connection.begin()
    assert idempotency.claim(connection, at(keys), T0) == set(keys)
    transaction.rollback()
    connection.close()
    with engine.begin() as connection:
        assert idempotency.claim(connection, at(keys), T0) == set(keys)
        assert idempotency.claim(connection, at(keys), T0) == set()


def test_applied_event_ids_are_forgotten_after_the_retention_in_bounded_deletes(
    engine: Engine,
) -> None:
    account = new_id("acct")
    long_ago = utc("2000-01-01T00:00:00")  # older than anything other tests store
    with engine.begin() as connection:
        idempotency.claim(connection, at([(account, f"old{i}") for i in range(5)]), long_ago)
        idempotency.claim(connection, at([(account, "new")]), long_ago + timedelta(days=40))
    with engine.begin() as connection:
        cutoff = long_ago + timedelta(days=1)
        assert idempotency.forget_before(connection, cutoff, limit=3) == 3
        assert idempotency.forget_before(connection, cutoff, limit=3) == 2
        assert idempotency.claim(connection, at([(account, "old0"), (account, "new")]), T0) == {
            (account, "old0")
        }


# --- the day an event occurred: partitions on PostgreSQL -------------------------------------
# Each test below uses days of its own in 2001, older than anything the others store, so that
# making and dropping partitions in the shared database touches only its own.


def partition_of(engine: Engine, key: EventKey) -> str | None:
    """The table holding the record of `key` (PostgreSQL), or None if there is no record."""
    with engine.connect() as connection:
        found = connection.scalar(
            text(
                "SELECT tableoid::regclass::text FROM processed_events "
                "WHERE account_id = :a AND event_id = :e"
            ),
            {"a": key[0], "e": key[1]},
        )
    return None if found is None else str(found)


def test_a_redelivery_processed_on_another_day_is_a_duplicate(engine: Engine) -> None:
    key = (new_id("acct"), "e1")
    occurred = utc("2001-01-10T12:00:00")
    with engine.begin() as connection:
        idempotency.maintain(connection, occurred, occurred - timedelta(days=365), ahead=1)
        assert idempotency.claim(connection, at([key], occurred), occurred) == {key}
    with engine.begin() as connection:
        later = occurred + timedelta(days=3)
        assert idempotency.claim(connection, at([key], occurred), later) == set()


def test_an_event_in_the_last_microsecond_of_a_day_and_its_redelivery_are_one_event(
    engine: Engine,
) -> None:
    account = new_id("acct")
    last, first = utc("2001-01-20T23:59:59.999999"), utc("2001-01-21T00:00:00")
    with engine.begin() as connection:
        idempotency.maintain(connection, last, last - timedelta(days=365), ahead=1)
        # Applied just after midnight, i.e. on the next day, in the next day's partition.
        assert idempotency.claim(
            connection, {(account, "late"): last, (account, "early"): first}, first
        ) == {(account, "late"), (account, "early")}
    with engine.begin() as connection:
        redelivered = {(account, "late"): last, (account, "early"): first}
        assert idempotency.claim(connection, redelivered, first + timedelta(hours=5)) == set()
    if engine.dialect.name == "postgresql":
        assert partition_of(engine, (account, "late")) == "processed_events_p20010120"
        assert partition_of(engine, (account, "early")) == "processed_events_p20010121"


def test_retention_drops_whole_days_and_keeps_the_newer_ones(engine: Engine) -> None:
    account = new_id("acct")
    days = [utc(f"2001-02-0{n}T08:00:00") for n in (1, 2, 3)]
    with engine.begin() as connection:
        idempotency.maintain(connection, days[0], days[0] - timedelta(days=365), ahead=3)
        for n, day in enumerate(days):
            assert idempotency.claim(connection, at([(account, f"e{n}")], day), day)
    before = utc("2001-02-03T00:00:00")  # the first two days ended at or before it
    with engine.begin() as connection:
        done = idempotency.maintain(connection, before, before, ahead=0)
        idempotency.forget_before(connection, before, limit=1000)
    if engine.dialect.name == "postgresql":
        # (Earlier days other tests made are dropped too: they ended before it as well.)
        assert {"2001-02-01", "2001-02-02"} <= {d.isoformat() for d in done.dropped}
        assert max(done.dropped).isoformat() == "2001-02-02"
        with engine.connect() as connection:
            kept = {d.isoformat() for d in idempotency.day_partitions(connection)}
        assert {"2001-02-03", "2001-02-04"} <= kept
        assert not {"2001-02-01", "2001-02-02"} & kept
    with engine.begin() as connection:
        redelivered = {(account, f"e{n}"): day for n, day in enumerate(days)}
        assert idempotency.claim(connection, redelivered, days[2]) == {
            (account, "e0"),
            (account, "e1"),
        }


def test_a_day_without_a_partition_is_kept_in_the_default_one_and_moved_when_its_day_is_made(
    engine: Engine,
) -> None:
    key = (new_id("acct"), "e1")
    occurred = utc("2001-03-15T09:00:00")  # no partition was made for this day
    with engine.begin() as connection:
        assert idempotency.claim(connection, at([key], occurred), occurred) == {key}
        assert idempotency.claim(connection, at([key], occurred), occurred) == set()
    if engine.dialect.name == "postgresql":
        assert partition_of(engine, key) == "processed_events_default"
    with engine.begin() as connection:
        made = idempotency.maintain(connection, occurred, occurred - timedelta(days=365), ahead=0)
    if engine.dialect.name == "postgresql":
        assert [d.isoformat() for d in made.created] == ["2001-03-15"]
        assert partition_of(engine, key) == "processed_events_p20010315"
    with engine.begin() as connection:
        assert idempotency.claim(connection, at([key], occurred), occurred) == set()


def test_the_default_partition_is_pruned_by_when_its_records_were_processed(
    engine: Engine,
) -> None:
    account = new_id("acct")
    occurred = utc("2001-04-01T09:00:00")  # no partition: the record goes to the default one
    with engine.begin() as connection:
        idempotency.claim(connection, at([(account, "old")], occurred), occurred)
        idempotency.claim(
            connection, at([(account, "new")], occurred), occurred + timedelta(days=30)
        )
    with engine.begin() as connection:
        idempotency.forget_before(connection, occurred + timedelta(days=1), limit=1000)
    with engine.begin() as connection:
        both = at([(account, "old"), (account, "new")], occurred)
        assert idempotency.claim(connection, both, occurred) == {(account, "old")}


def test_a_maintenance_run_while_another_one_runs_leaves_the_partitions_to_it(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no partitions to maintain (and one writer at a time)")
    day = utc("2001-05-01T09:00:00")
    with engine.begin() as running:
        made = idempotency.maintain(running, day, day - timedelta(days=365), ahead=0)
        with engine.begin() as second:
            assert idempotency.maintain(second, day, day, ahead=1) == idempotency.Maintenance()
    assert [d.isoformat() for d in made.created] == ["2001-05-01"]
