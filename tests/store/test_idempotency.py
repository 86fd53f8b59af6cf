"""store.idempotency on SQLite and PostgreSQL: each (account, event id) is new once, within
the transaction that claims it, until the retention forgets it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine

from store import idempotency
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


def test_a_claim_returns_the_keys_it_records(engine: Engine) -> None:
    account = new_id("acct")
    keys = {(account, "e1"), (account, "e2")}
    with engine.begin() as connection:
        assert idempotency.claim(connection, keys, T0) == keys


def test_a_second_claim_of_the_same_keys_returns_nothing(engine: Engine) -> None:
    account = new_id("acct")
    keys = [(account, "e1"), (account, "e2")]
    with engine.begin() as connection:
        idempotency.claim(connection, keys, T0)
    with engine.begin() as connection:
        assert idempotency.claim(connection, keys, T0) == set()


def test_a_claim_returns_only_the_keys_not_seen_before(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        idempotency.claim(connection, [(account, "e1")], T0)
        found = idempotency.claim(connection, [(account, "e1"), (account, "e2")], T0)
    assert found == {(account, "e2")}


def test_a_key_repeated_in_one_claim_is_claimed_once(engine: Engine) -> None:
    account = new_id("acct")
    with engine.begin() as connection:
        assert idempotency.claim(connection, [(account, "e1"), (account, "e1")], T0) == {
            (account, "e1")
        }


def test_the_same_event_id_in_two_accounts_is_two_keys(engine: Engine) -> None:
    alice, bob = new_id("alice"), new_id("bob")
    with engine.begin() as connection:
        assert idempotency.claim(connection, [(alice, "e1")], T0) == {(alice, "e1")}
        assert idempotency.claim(connection, [(bob, "e1")], T0) == {(bob, "e1")}


def test_claiming_nothing_returns_nothing(engine: Engine) -> None:
    with engine.begin() as connection:
        assert idempotency.claim(connection, [], T0) == set()


def test_a_claim_rolled_back_with_its_transaction_can_be_claimed_again(engine: Engine) -> None:
    keys = [(new_id("acct"), "e1")]
    connection = engine.connect()
    transaction = connection.begin()
    assert idempotency.claim(connection, keys, T0) == set(keys)
    transaction.rollback()
    connection.close()
    with engine.begin() as connection:
        assert idempotency.claim(connection, keys, T0) == set(keys)
        assert idempotency.claim(connection, keys, T0) == set()


def test_applied_event_ids_are_forgotten_after_the_retention_in_bounded_deletes(
    engine: Engine,
) -> None:
    account = new_id("acct")
    long_ago = utc("2000-01-01T00:00:00")  # older than anything other tests store
    with engine.begin() as connection:
        idempotency.claim(connection, [(account, f"old{i}") for i in range(5)], long_ago)
        idempotency.claim(connection, [(account, "new")], long_ago + timedelta(days=40))
    with engine.begin() as connection:
        cutoff = long_ago + timedelta(days=1)
        assert idempotency.forget_before(connection, cutoff, limit=3) == 3
        assert idempotency.forget_before(connection, cutoff, limit=3) == 2
        assert idempotency.claim(connection, [(account, "old0"), (account, "new")], T0) == {
            (account, "old0")
        }
