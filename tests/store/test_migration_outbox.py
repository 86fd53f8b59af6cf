"""Migration 0011 on a store with decisions published and not: upgrade puts exactly the
unpublished ones in the outbox, which the next relay sends; downgrade marks the rest published."""

from __future__ import annotations

import json

from alembic import command
from redis import Redis
from sqlalchemy import text

from events.names import DECISIONS_STREAM
from store import outbox
from store.db import make_engine
from store.migrate import alembic_config
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


def test_the_upgrade_keeps_unpublished_decisions_for_the_relay_and_downgrade_restores_them(
    fresh_url: str, redis_url: str
) -> None:
    config = alembic_config(fresh_url)
    command.upgrade(config, "0010")
    engine = make_engine(fresh_url)
    account = new_id("acct")
    published = [f"{account}-p{n}" for n in range(3)]
    waiting = [f"{account}-w{n:04}" for n in range(1_201)]  # three outbox rows: 500, 500, 201
    with engine.begin() as connection:
        for n, decision_id in enumerate([*published, *waiting]):
            connection.execute(
                text(
                    "INSERT INTO decisions (decision_id, type, account_id, contact_id, "
                    "decided_at, data, published_at) VALUES (:id, 'contact.routed', :account, "
                    "'k', :at, :data, :published_at)"
                ),
                {
                    "id": decision_id,
                    "account": account,
                    "at": T0.replace(microsecond=n),
                    "data": json.dumps({"decision_id": decision_id, "account_id": account}),
                    "published_at": T0 if decision_id in published else None,
                },
            )
    engine.dispose()

    command.upgrade(config, "0011")
    engine = make_engine(fresh_url)
    with engine.connect() as connection:
        assert outbox.unpublished_ids(connection) == set(waiting)
        sizes = connection.execute(text("SELECT size FROM decision_outbox ORDER BY made_at"))
        assert list(sizes.scalars()) == [500, 500, 201]
    publisher = Redis.from_url(redis_url)
    outbox.relay(engine, publisher, T0)  # the upgraded store's relay sends what was waiting
    sent = [
        data["decision_id"]
        for _id, fields in publisher.xrange(DECISIONS_STREAM)
        if (data := json.loads(fields[b"data"])).get("account_id") == account
    ]
    publisher.close()
    assert sorted(sent) == sorted(waiting)
    with engine.connect() as connection:
        assert outbox.unpublished_ids(connection) == set()
    engine.dispose()


def test_downgrade_marks_published_all_but_what_the_outbox_holds(fresh_url: str) -> None:
    config = alembic_config(fresh_url)
    command.upgrade(config, "0011")
    engine = make_engine(fresh_url)
    account = new_id("acct")
    ids = [f"{account}-{n}" for n in range(4)]
    with engine.begin() as connection:
        for decision_id in ids:
            connection.execute(
                text(
                    "INSERT INTO decisions (decision_id, type, account_id, contact_id, "
                    "decided_at, data) VALUES (:id, 'contact.routed', :account, 'k', :at, '{}')"
                ),
                {"id": decision_id, "account": account, "at": T0},
            )
        connection.execute(
            text(
                "INSERT INTO decision_outbox (first_decision_id, decision_ids, size, made_at) "
                "VALUES (:first, :ids, 2, :at)"
            ),
            {"first": ids[2], "ids": json.dumps(ids[2:]), "at": T0},
        )
    engine.dispose()

    command.downgrade(config, "0010")
    engine = make_engine(fresh_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT decision_id, published_at FROM decisions ORDER BY decision_id")
        ).all()
    engine.dispose()
    assert [(r.decision_id, r.published_at is None) for r in rows] == [
        (ids[0], False),
        (ids[1], False),
        (ids[2], True),
        (ids[3], True),
    ]
