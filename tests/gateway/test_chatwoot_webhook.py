"""`POST /v1/chatwoot/webhook` over real HTTP: Chatwoot-signed webhooks in, translated events
enqueued as one ingest message; anything not provably Chatwoot's refused with nothing enqueued.

The gateway runs as a subprocess against a redis-server of this module's own (no worker), so
the enqueued messages are counted exactly.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from connectors.chatwoot import Action, OutboundCall, sign
from tests.connectors.chatwoot.support import fixture
from tests.gateway.conftest import Broker
from tests.gateway.support import Client, GatewayProcess, Response
from tests.processes import RedisServer
from webhooks import chatwoot_echo

pytestmark = pytest.mark.timeout(120)

CHATWOOT_SECRET = "chatwoot-webhook-secret"
PATH = "/v1/chatwoot/webhook"


@pytest.fixture(scope="module")
def gateway(
    broker: Broker, sqlite_store: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    log: Path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    process = GatewayProcess(
        broker.url,
        sqlite_store,
        log,
        env={"CONVLIFE_CHATWOOT_WEBHOOK_SECRET": f"old-secret-xyz, {CHATWOOT_SECRET}"},
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[Client]:
    made = gateway.client(secret=None)  # Chatwoot signs its own way, not convlife's
    yield made
    gateway.close_clients()


def in_a_new_account(name: str) -> tuple[dict[str, Any], str]:
    """A fixture moved to an account of its own, so tests do not share echo records."""
    payload = fixture(name)
    account = random.randint(10_000, 10_000_000)
    if "account" in payload:
        payload["account"]["id"] = account
    conversation = payload.get("conversation", payload)
    for message in conversation.get("messages") or []:
        message["account_id"] = account
    return payload, str(account)


def post_signed(
    client: Client,
    payload: dict[str, Any],
    *,
    secret: str = CHATWOOT_SECRET,
    timestamp: int | None = None,
    delivery: str = "d-1",
    headers: dict[str, str] | None = None,
    path: str = PATH,
) -> Response:
    body = json.dumps(payload).encode()
    at = int(time.time()) if timestamp is None else timestamp
    signed = {
        "X-Chatwoot-Timestamp": str(at),
        "X-Chatwoot-Signature": sign(body, secret, at),
        "X-Chatwoot-Delivery": delivery,
    }
    return client.request("POST", path, body, headers=headers if headers is not None else signed)


def test_a_signed_incoming_message_is_translated_and_enqueued_as_one_message(
    client: Client, broker: Broker
) -> None:
    payload, account = in_a_new_account("message_created_incoming")
    before = broker.queued_messages()
    response = post_signed(client, payload)
    assert response.status == 200, response.body
    answer = response.json()
    assert answer["accepted"] == 2
    assert answer["rejected"] == []
    assert answer["ignored"] is None
    assert answer["delivery_id"] == "d-1"
    assert broker.queued_messages() == before + 1
    enqueued = broker.queued_batches()[-1]
    assert [event["type"] for event in enqueued] == ["contact.inbound", "conversation.message"]
    assert {event["account_id"] for event in enqueued} == {account}
    assert [event["event_id"] for event in enqueued] == answer["event_ids"]


def test_the_same_delivery_twice_gives_the_same_event_ids(client: Client) -> None:
    payload, _ = in_a_new_account("conversation_status_changed_resolved")
    first = post_signed(client, payload, delivery="d-twice")
    again = post_signed(client, payload, delivery="d-twice")
    assert first.status == again.status == 200
    assert first.json()["event_ids"]
    assert first.json()["event_ids"] == again.json()["event_ids"]


def test_a_webhook_signed_with_an_older_secret_still_in_the_list_is_accepted(
    client: Client,
) -> None:
    payload, account = in_a_new_account("conversation_created")
    response = post_signed(
        client, payload, secret="old-secret-xyz", path=f"{PATH}?account_id={account}"
    )
    assert response.status == 200, response.body


@pytest.mark.parametrize(
    "how",
    ["wrong secret", "no signature", "no timestamp", "no headers", "stale", "body changed"],
)
def test_a_webhook_not_provably_chatwoots_is_refused_401_and_nothing_is_enqueued(
    client: Client, broker: Broker, how: str
) -> None:
    payload, _ = in_a_new_account("message_created_incoming")
    before = broker.queued_messages()
    now = int(time.time())
    body = json.dumps(payload).encode()
    good = {
        "X-Chatwoot-Timestamp": str(now),
        "X-Chatwoot-Signature": sign(body, CHATWOOT_SECRET, now),
    }
    if how == "wrong secret":
        response = post_signed(client, payload, secret="not-the-secret")
    elif how == "no signature":
        response = post_signed(client, payload, headers={"X-Chatwoot-Timestamp": str(now)})
    elif how == "no timestamp":
        response = post_signed(
            client, payload, headers={"X-Chatwoot-Signature": good["X-Chatwoot-Signature"]}
        )
    elif how == "no headers":
        response = post_signed(client, payload, headers={})
    elif how == "stale":
        response = post_signed(client, payload, timestamp=now - 3600)
    else:
        payload["content"] = "changed in transit"
        response = post_signed(client, payload, headers=good)
    assert response.status == 401, response.body
    assert broker.queued_messages() == before


def test_an_event_chatwoot_sends_that_is_not_about_the_lifecycle_is_answered_200_ignored(
    client: Client, broker: Broker
) -> None:
    before = broker.queued_messages()
    response = post_signed(client, {"event": "contact_created", "id": 5, "account": {"id": 1}})
    assert response.status == 200
    assert "does not concern the lifecycle" in response.json()["ignored"]
    assert broker.queued_messages() == before


def test_a_conversation_webhook_naming_no_account_takes_the_one_in_the_url(
    client: Client, broker: Broker
) -> None:
    payload = fixture("conversation_created")
    payload["messages"] = []  # Chatwoot's push data names the account only in its messages
    assert post_signed(client, payload).status == 400
    response = post_signed(client, payload, path=f"{PATH}?account_id=777")
    assert response.status == 200, response.body
    assert {event["account_id"] for event in broker.queued_batches()[-1]} == {"777"}


def test_a_signed_body_that_is_not_chatwoots_shape_is_400_and_nothing_is_enqueued(
    client: Client, broker: Broker
) -> None:
    payload, _ = in_a_new_account("conversation_created")
    del payload["meta"]
    before = broker.queued_messages()
    response = post_signed(client, payload)
    assert response.status == 400, response.body
    assert broker.queued_messages() == before


def test_the_echo_of_convlifes_own_resolve_is_ignored(client: Client, broker: Broker) -> None:
    payload, account = in_a_new_account("conversation_status_changed_resolved")
    payload["account_id"] = int(account)
    payload["updated_at"] = time.time()
    call = OutboundCall(account, str(payload["id"]), Action.RESOLVE, None, datetime.now(UTC))
    chatwoot_echo.record(Redis.from_url(broker.url), call)
    before = broker.queued_messages()
    response = post_signed(client, payload)
    assert response.status == 200, response.body
    assert "echo of convlife's own resolve" in response.json()["ignored"]
    assert broker.queued_messages() == before


def test_with_allow_unsigned_an_unsigned_webhook_gets_in_but_a_wrong_signature_does_not(
    broker: Broker, sqlite_store: str, tmp_path: Path
) -> None:
    unsafe = GatewayProcess(
        broker.url,
        sqlite_store,
        tmp_path / "gateway.log",
        env={"CONVLIFE_CHATWOOT_ALLOW_UNSIGNED": "true"},
    )
    try:
        client = unsafe.client(secret=None)
        payload, _ = in_a_new_account("message_created_incoming")
        before = broker.queued_messages()
        assert post_signed(client, payload, headers={}).status == 200
        assert broker.queued_messages() == before + 1
        assert post_signed(client, payload, secret="forged").status == 401
        assert broker.queued_messages() == before + 1
    finally:
        unsafe.stop()


def test_a_broker_that_is_down_gets_503_with_retry_after_and_chatwoots_retry_goes_through(
    sqlite_store: str, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    own = Broker(server)
    process = GatewayProcess(
        server.url,
        sqlite_store,
        tmp_path / "gateway.log",
        env={"CONVLIFE_CHATWOOT_WEBHOOK_SECRET": CHATWOOT_SECRET},
    )
    try:
        client = process.client(secret=None)
        payload, _ = in_a_new_account("message_created_incoming")
        assert post_signed(client, payload).status == 200  # the pool holds a live connection
        server.stop()
        started = time.monotonic()
        refused = post_signed(client, payload)
        assert refused.status == 503
        assert refused.headers["retry-after"] == "7"
        assert time.monotonic() - started < 15  # fails fast, does not hang Chatwoot's job
        server.start()  # same port, empty: whatever the 503 said was not kept
        assert own.queued_messages() == 0
        retried = post_signed(client, payload)
        assert retried.status == 200
        assert own.queued_messages() == 1
    finally:
        process.stop()
        server.stop()
