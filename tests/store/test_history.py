"""Reading back what the database keeps: decisions by time (page by page), dead letters by
account. On both stores."""

from __future__ import annotations

import json
from datetime import timedelta, timezone

from sqlalchemy.engine import Engine

from events.decisions import ContactRouted, Route
from store import history, outbox
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


def routed(account: str, at_seconds: float) -> ContactRouted:
    return ContactRouted(
        decision_id=new_id("d"),
        account_id=account,
        decided_at=T0 + timedelta(seconds=at_seconds),
        reason="test",
        inbound_event_id=new_id("e"),
        contact_id="k",
        line_id="l",
        route=Route.BOT,
    )


def exported(engine: Engine, account: str, **kwargs: object) -> list[str]:
    return [
        json.loads(data)["decision_id"]
        for data in history.decisions_between(engine, account_id=account, **kwargs)  # type: ignore[arg-type]
    ]


def test_decisions_are_exported_oldest_first_across_pages_each_exactly_once(
    engine: Engine,
) -> None:
    account = new_id("acct")
    # Ties on decided_at straddle the page boundaries: the keyset includes the decision id.
    made = [routed(account, at) for at in (3, 1, 1, 1, 2, 2, 0.5, 1)]
    with engine.begin() as connection:
        outbox.add_decisions(connection, made)
    expected = [d.decision_id for d in sorted(made, key=lambda d: (d.decided_at, d.decision_id))]

    for page_size in (1, 2, 3, 1000):
        assert exported(engine, account, since=T0, page_size=page_size) == expected


def test_an_export_takes_since_inclusive_until_exclusive_and_one_account(engine: Engine) -> None:
    account, other = new_id("acct"), new_id("acct")
    mine = [routed(account, at) for at in (0, 10, 20, 30)]
    with engine.begin() as connection:
        outbox.add_decisions(connection, [*mine, routed(other, 10)])

    window = exported(
        engine,
        account,
        since=T0 + timedelta(seconds=10),
        until=T0 + timedelta(seconds=30),
        page_size=1,
    )
    assert window == [mine[1].decision_id, mine[2].decision_id]
    assert exported(engine, account, since=T0 + timedelta(seconds=31)) == []


def test_an_export_accepts_any_offset_for_its_bounds(engine: Engine) -> None:
    account = new_id("acct")
    made = routed(account, 0)
    with engine.begin() as connection:
        outbox.add_decisions(connection, [made])
    at_plus_two = T0.astimezone(timezone(timedelta(hours=2)))  # the same moment
    assert exported(engine, account, since=at_plus_two) == [made.decision_id]


def test_the_newest_dead_letters_of_one_account_are_listed_oldest_first(engine: Engine) -> None:
    account, other = new_id("acct"), new_id("acct")
    with engine.begin() as connection:
        for n in range(4):
            outbox.add_dead_letter(
                connection, raw=f"r{n}", error="e", received_at=T0, account_id=account
            )
        outbox.add_dead_letter(connection, raw="x", error="e", received_at=T0, account_id=other)

    listed = history.newest_dead_letters(engine, 3, account_id=account)
    assert [row.raw for row in listed] == ["r1", "r2", "r3"]
    assert {row.account_id for row in listed} == {account}
