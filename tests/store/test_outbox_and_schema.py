"""The outbox delivers each stored decision to the stream; the schema is at its head."""

from __future__ import annotations

import json
from datetime import timedelta

from redis import Redis
from sqlalchemy import select
from sqlalchemy.engine import Engine

from events.decisions import ContactRouted, Route, parse_decision
from events.names import DEAD_LETTERS_STREAM, DECISIONS_STREAM
from store import outbox
from store.migrate import current_revision, head_revision
from store.tables import decision_outbox, decisions, webhook_outbox
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


def decision(account: str, n: int) -> ContactRouted:
    return ContactRouted(
        decision_id=new_id("d"),
        account_id=account,
        decided_at=T0,
        reason="test",
        inbound_event_id=f"e{n}",
        contact_id="k",
        line_id="l",
        route=Route.BOT,
    )


def stream_of(redis: Redis, stream: str, field: str, needle: str) -> list[str]:
    return [f[field] for _, f in redis.xrange(stream) if needle in f.get(field, "")]


def test_a_relay_sends_every_unpublished_decision_once_and_then_nothing(
    engine: Engine, redis: Redis, redis_url: str
) -> None:
    account = new_id("acct")
    made = [decision(account, n) for n in range(3)]
    with engine.begin() as connection:
        assert len(outbox.add_decisions(connection, made)) == 3
        assert outbox.add_decisions(connection, made[:1]) == []  # an id stored is skipped
    publisher = Redis.from_url(redis_url)

    outbox.relay(engine, publisher, T0)
    outbox.relay(engine, publisher, T0)

    sent = [json.loads(d) for d in stream_of(redis, DECISIONS_STREAM, "data", account)]
    assert sorted(d["decision_id"] for d in sent) == sorted(d.decision_id for d in made)
    publisher.close()


def test_a_batch_is_one_row_of_each_outbox_naming_the_decisions_stored_in_the_order_made(
    engine: Engine,
) -> None:
    account = new_id("acct")
    earlier = decision(account, 0)
    made = [decision(account, n) for n in range(1, 4)]
    with engine.begin() as connection:
        outbox.add_decisions(connection, [earlier], T0)
    # One decision stored before, one named twice.
    batch = [made[2], earlier, made[0], made[2], made[1]]
    with engine.begin() as connection:
        stored = outbox.add_decisions(connection, batch, T0 + timedelta(seconds=1))
        again = outbox.add_decisions(connection, batch, T0 + timedelta(seconds=2))
    in_order = [made[2].decision_id, made[0].decision_id, made[1].decision_id]
    assert (stored, again) == (in_order, [])
    ours = [earlier.decision_id, *in_order]
    for table in (decision_outbox, webhook_outbox):
        with engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.first_decision_id.in_(ours)).order_by(table.c.made_at)
            ).all()
        assert [
            (r.first_decision_id, json.loads(r.decision_ids), r.size, r.made_at) for r in rows
        ] == [
            (earlier.decision_id, [earlier.decision_id], 1, T0),
            (min(in_order), in_order, 3, T0 + timedelta(seconds=1)),
        ], table.name


def test_a_new_batch_naming_a_decision_twice_stores_it_once_and_names_it_once(
    engine: Engine,
) -> None:
    """Every id of the batch new, one of them twice: stored once, and named once in the one row
    of each outbox, in the order first made."""
    account = new_id("acct")
    made = [decision(account, n) for n in range(3)]
    batch = [made[1], made[0], made[1], made[2]]
    with engine.begin() as connection:
        stored = outbox.add_decisions(connection, batch, T0)
    in_order = [made[1].decision_id, made[0].decision_id, made[2].decision_id]
    assert stored == in_order
    for table in (decision_outbox, webhook_outbox):
        with engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.c.first_decision_id.in_(in_order))
            ).all()
        assert [(json.loads(r.decision_ids), r.size) for r in rows] == [(in_order, 3)], table.name
    with engine.connect() as connection:
        count = connection.execute(
            select(decisions.c.decision_id).where(decisions.c.decision_id.in_(in_order))
        ).all()
    assert len(count) == 3


def test_a_relay_of_its_own_decisions_leaves_the_others_to_the_periodic_relay(
    engine: Engine, redis: Redis, redis_url: str
) -> None:
    account = new_id("acct")
    mine, others = [decision(account, n) for n in range(3)], [decision(account, 9)]
    marker = new_id("raw")
    with engine.begin() as connection:  # another task's batch, left unrelayed
        outbox.add_decisions(connection, others)
        outbox.add_dead_letter(connection, raw=marker, error="not JSON: x", received_at=T0)
    with engine.begin() as connection:
        outbox.add_decisions(connection, mine)
    publisher = Redis.from_url(redis_url)

    sent = outbox.relay(
        engine,
        publisher,
        T0,
        batch_size=2,
        made=mine,
        with_dead_letters=False,
    )
    on_stream = [
        json.loads(d)["decision_id"] for d in stream_of(redis, DECISIONS_STREAM, "data", account)
    ]
    assert (sent, sorted(on_stream)) == (3, sorted(d.decision_id for d in mine))
    assert stream_of(redis, DEAD_LETTERS_STREAM, "raw", marker) == []

    outbox.relay(engine, publisher, T0)
    on_stream = [
        json.loads(d)["decision_id"] for d in stream_of(redis, DECISIONS_STREAM, "data", account)
    ]
    assert sorted(on_stream) == sorted(d.decision_id for d in [*mine, *others])
    assert stream_of(redis, DEAD_LETTERS_STREAM, "raw", marker) == [marker]
    publisher.close()


def test_a_decision_relayed_from_memory_is_on_the_stream_byte_for_byte_as_its_row_holds_it(
    engine: Engine, redis: Redis, redis_url: str
) -> None:
    account = new_id("acct")
    made = [decision(account, n) for n in range(2)]
    with engine.begin() as connection:
        outbox.add_decisions(connection, made)
        rows = dict(
            connection.execute(
                select(decisions.c.decision_id, decisions.c.data).where(
                    decisions.c.account_id == account
                )
            ).all()
        )
    publisher = Redis.from_url(redis_url)
    fresh = [d.model_copy() for d in made]  # no JSON cached: the relay serializes again

    assert outbox.relay(engine, publisher, T0, made=fresh, with_dead_letters=False) == 2
    assert outbox.relay(engine, publisher, T0, made=made, with_dead_letters=False) == 0
    publisher.close()

    on_stream = stream_of(redis, DECISIONS_STREAM, "data", account)
    assert sorted(on_stream) == sorted(rows.values())
    assert [parse_decision(data) for data in on_stream] == made


AWKWARD_REASONS = [
    'a "quoted" word',
    "back\\slash and \\u0000-looking text",
    "line one\nline two\ttabbed",
    "accents é ü, an emoji 🎉, a right-to-left mark \u200f",
    "",
    "x" * 5_000,  # past PostgreSQL's in-line size: stored compressed or out of line
]


def test_each_decision_of_a_batch_is_stored_with_its_own_json_byte_for_byte(
    engine: Engine,
) -> None:
    # On PostgreSQL the batch's JSON documents travel apart from its other columns (a binary
    # array, store.db.BinaryTexts) and are matched back to their rows by position: a mismatch
    # would store one decision's text under another's id.
    account = new_id("acct")
    made = [
        decision(account, n).model_copy(update={"reason": f"{n}: {reason}"})
        for n, reason in enumerate(AWKWARD_REASONS * 40)
    ]
    with engine.begin() as connection:
        stored = outbox.add_decisions(connection, made)
        rows = dict(
            connection.execute(
                select(decisions.c.decision_id, decisions.c.data).where(
                    decisions.c.account_id == account
                )
            ).all()
        )
    assert stored == [d.decision_id for d in made]
    assert rows == {d.decision_id: d.data for d in made}
    assert {d.decision_id: parse_decision(rows[d.decision_id]).reason for d in made} == {
        d.decision_id: d.reason for d in made
    }


def test_a_copy_of_a_decision_with_changes_serializes_its_own_values() -> None:
    made = decision("acme", 1)
    assert json.loads(made.data)["reason"] == "test"
    assert json.loads(made.model_copy(update={"reason": "other"}).data)["reason"] == "other"


def test_a_relay_sends_dead_letters_with_their_reason(
    engine: Engine, redis: Redis, redis_url: str
) -> None:
    marker = new_id("raw")
    with engine.begin() as connection:
        outbox.add_dead_letter(connection, raw=marker, error="not JSON: x", received_at=T0)
    publisher = Redis.from_url(redis_url)
    outbox.relay(engine, publisher, T0)
    publisher.close()

    [entry] = [f for _, f in redis.xrange(DEAD_LETTERS_STREAM) if f["raw"] == marker]
    assert entry["error"] == "not JSON: x"
    assert entry["received_at"].startswith("2026-03-01T10:00:00")


def test_migrations_bring_the_database_to_the_head_revision(engine: Engine) -> None:
    assert current_revision(engine) == head_revision() is not None


def test_the_migrations_create_exactly_the_tables_the_code_declares(engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from store.tables import declared, declared_in, metadata

    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_name": declared, "include_object": declared_in(engine.dialect.name)},
        )
        assert compare_metadata(context, metadata) == []


def test_a_relay_of_decisions_stored_with_others_sends_the_whole_batch_it_claims(
    engine: Engine, redis: Redis, redis_url: str
) -> None:
    """An outbox row is claimed whole: decisions of it the caller did not pass are read back,
    so none is dropped unsent."""
    account = new_id("acct")
    made = [decision(account, n) for n in range(4)]
    with engine.begin() as connection:
        outbox.add_decisions(connection, made)
    publisher = Redis.from_url(redis_url)
    first = min(made, key=lambda d: d.decision_id)  # the batch's key
    sent = outbox.relay(engine, publisher, T0, made=[first], with_dead_letters=False)
    publisher.close()
    on_stream = [
        json.loads(d)["decision_id"] for d in stream_of(redis, DECISIONS_STREAM, "data", account)
    ]
    assert (sent, sorted(on_stream)) == (4, sorted(d.decision_id for d in made))
    with engine.connect() as connection:
        assert not outbox.unpublished_ids(connection) & {d.decision_id for d in made}


def test_the_periodic_relay_takes_whole_batches_oldest_first_up_to_its_size(
    engine: Engine, redis: Redis, redis_url: str
) -> None:
    account = new_id("acct")
    sizes = (3, 3, 1)
    batches = [[decision(account, 10 * b + n) for n in range(k)] for b, k in enumerate(sizes)]
    with engine.begin() as connection:
        for b, batch in enumerate(batches):
            outbox.add_decisions(connection, batch, T0 + b * timedelta(seconds=1))
    publisher = Redis.from_url(redis_url)
    ours = {d.decision_id for batch in batches for d in batch}

    def relayed() -> list[str]:
        return [
            i
            for d in stream_of(redis, DECISIONS_STREAM, "data", account)
            if (i := json.loads(d)["decision_id"]) in ours
        ]

    with engine.connect() as connection:
        assert ours <= outbox.unpublished_ids(connection)
    outbox.relay(engine, publisher, T0, batch_size=4, with_dead_letters=False)
    publisher.close()
    # Rounds of at most 4 decisions in whole batches: 3, then 3 + 1; every one once, in order.
    assert relayed() == [d.decision_id for batch in batches for d in batch]
    with engine.connect() as connection:
        assert not outbox.unpublished_ids(connection) & ours
