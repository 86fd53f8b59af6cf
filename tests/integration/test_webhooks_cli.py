"""`convlife webhooks …` against a running service: an event in, a signed decision out."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from store.db import make_engine
from tests.integration.conftest import Service
from tests.processes import run_convlife, wait_until
from tests.receivers import receiving
from tests.support import event, new_id
from webhooks import manage
from webhooks.signing import verify

SECRET = "whsec-cli-0123456789"


def env_of(service: Service) -> dict[str, str]:
    return {
        "CONVLIFE_BROKER_URL": service.broker_url,
        "CONVLIFE_DATABASE_URL": service.database_url,
    }


def webhooks(service: Service, *args: str) -> tuple[int, list[str]]:
    done = run_convlife(["webhooks", *args], env_of(service))
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout.splitlines()


def test_a_subscribed_receiver_gets_each_decision_of_its_account_signed_and_listed_as_delivered(
    service: Service,
) -> None:
    account = new_id("acct")
    with receiving() as receiver:
        code, out = webhooks(
            service, "add", "--url", receiver.url, "--account", account,
            "--types", "contact.routed", "--secret", SECRET,
        )  # fmt: skip
        assert code == 0, out
        added = json.loads(out[0])
        assert (added["url"], added["account_id"], added["types"]) == (
            receiver.url,
            account,
            ["contact.routed"],
        )
        assert "secret" not in added
        try:
            service.publish(
                event("contact.inbound", account, datetime.now(UTC), contact_id="k1", line_id="l1")
            )
            wait_until(lambda: len(receiver.received) >= 1, 30, "the webhook")
            (request,) = receiver.received
            decision = json.loads(request.body)
            assert (decision["type"], decision["account_id"]) == ("contact.routed", account)
            assert request.delivery == decision["decision_id"]
            assert verify(
                SECRET,
                request.headers["X-Convlife-Timestamp"],
                request.body,
                request.headers["X-Convlife-Signature"],
                now=time.time(),
            )

            wait_until(lambda: recorded(service, added["id"]) == ["delivered"], 10, "the record")
            _, lines = webhooks(
                service, "deliveries", "--subscription", str(added["id"]), "--status", "delivered"
            )
            (shown,) = [json.loads(line) for line in lines]
            assert (shown["decision_id"], shown["attempts"]) == (decision["decision_id"], 1)
            listed = [json.loads(line) for line in webhooks(service, "list")[1]]
            assert added["id"] in [item["id"] for item in listed]
            assert all("secret" not in item for item in listed)
        finally:
            assert webhooks(service, "remove", str(added["id"]))[0] == 0
    assert added["id"] not in [item["id"] for item in subscriptions(service)]


def recorded(service: Service, subscription_id: int) -> list[str]:
    return [
        item["status"]
        for item in manage.deliveries(engine_of(service), subscription_id=subscription_id)
    ]


def subscriptions(service: Service) -> list[dict[str, Any]]:
    return manage.list_all(engine_of(service))


def engine_of(service: Service) -> Engine:
    if service.database_url not in _engines:
        _engines[service.database_url] = make_engine(service.database_url)
    return _engines[service.database_url]


_engines: dict[str, Engine] = {}


def test_bad_subscriptions_are_refused_with_one_line_and_nothing_is_stored(
    service: Service,
) -> None:
    before = subscriptions(service)
    for args, says in [
        (["--url", "file:///etc/passwd"], "must be http:// or https:// (scheme: file)"),
        (["--url", "http://127.0.0.1/h", "--types", "conversation.opened"], "unknown decision"),
    ]:
        if "--secret" not in args:
            args = [*args, "--secret", SECRET]
        code, out = webhooks(service, "add", *args)
        assert code == 2
        assert len(out) == 1
        assert says in out[0]
    assert webhooks(service, "remove", "987654321") == (
        2,
        ["webhooks remove: no webhook subscription 987654321"],
    )
    assert subscriptions(service) == before
