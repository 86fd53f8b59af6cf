"""Migration 0012 on a store with decisions fanned out to webhooks and not: upgrade puts exactly
the ones not fanned out in the webhook outbox, which the next fan-out takes; downgrade marks the
rest fanned out."""

from __future__ import annotations

import json
from datetime import timedelta

from alembic import command
from sqlalchemy import text

from store import webhooks
from store.db import make_engine
from store.migrate import alembic_config
from tests.support import new_id, utc

T0 = utc("2026-03-01T10:00:00")


def test_the_upgrade_keeps_decisions_not_fanned_out_for_the_next_fan_out(fresh_url: str) -> None:
    config = alembic_config(fresh_url)
    command.upgrade(config, "0011")
    engine = make_engine(fresh_url)
    account = new_id("acct")
    fanned_out = [f"{account}-f{n}" for n in range(3)]
    waiting = [f"{account}-w{n:04}" for n in range(1_201)]  # three outbox rows: 500, 500, 201
    with engine.begin() as connection:
        for n, decision_id in enumerate([*fanned_out, *waiting]):
            connection.execute(
                text(
                    "INSERT INTO decisions (decision_id, type, account_id, contact_id, "
                    "decided_at, data, webhooks_fanned_out_at) VALUES (:id, 'contact.routed', "
                    ":account, 'k', :at, '{}', :fanned_out_at)"
                ),
                {
                    "id": decision_id,
                    "account": account,
                    "at": T0.replace(microsecond=n),
                    "fanned_out_at": T0 if decision_id in fanned_out else None,
                },
            )
    engine.dispose()

    command.upgrade(config, "0012")
    engine = make_engine(fresh_url)
    with engine.connect() as connection:
        sizes = connection.execute(text("SELECT size FROM webhook_outbox ORDER BY made_at"))
        assert list(sizes.scalars()) == [500, 500, 201]
    with engine.begin() as connection:
        subscription = webhooks.add_subscription(
            connection, url="http://127.0.0.1:9/hook", secret="s" * 20, now=T0, account_id=account
        )
    made = webhooks.fan_out(engine, T0 + timedelta(seconds=1))  # the upgraded store's fan-out
    with engine.connect() as connection:
        delivered_to = webhooks.deliveries(connection, subscription_id=subscription, limit=5_000)
        left = connection.execute(text("SELECT count(*) FROM webhook_outbox")).scalar_one()
    engine.dispose()
    assert made == len(waiting)
    assert sorted(d.decision_id for d in delivered_to) == sorted(waiting)
    assert left == 0


def test_downgrade_marks_fanned_out_all_but_what_the_webhook_outbox_holds(fresh_url: str) -> None:
    config = alembic_config(fresh_url)
    command.upgrade(config, "0012")
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
                "INSERT INTO webhook_outbox (first_decision_id, decision_ids, size, made_at) "
                "VALUES (:first, :ids, 2, :at)"
            ),
            {"first": ids[2], "ids": json.dumps(ids[2:]), "at": T0},
        )
    engine.dispose()

    command.downgrade(config, "0011")
    engine = make_engine(fresh_url)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT decision_id, webhooks_fanned_out_at FROM decisions ORDER BY decision_id")
        ).all()
    engine.dispose()
    assert [(r.decision_id, r.webhooks_fanned_out_at is None) for r in rows] == [
        (ids[0], False),
        (ids[1], False),
        (ids[2], True),
        (ids[3], True),
    ]
