"""Issue 14's end-to-end test: Chatwoot-shaped traffic through a real `convlife run` (worker +
beat + dispatcher) and a real `convlife gateway`, with a fake Chatwoot API on 127.0.0.1.

Signed Chatwoot webhooks go in at `POST /v1/chatwoot/webhook`; what comes out is what the fake
Chatwoot API was asked to do. Seconds-long settings reach the account as an
`account.settings_updated` POSTed to `/v1/events`. SQLite only (the delivery tests cover both
stores), to keep it under a minute.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.chatwoot import sign
from store.db import make_engine
from tests.chatwoot_api import FakeChatwoot, fake_chatwoot
from tests.connectors.chatwoot.support import fixture
from tests.gateway.support import Client, GatewayProcess, Response
from tests.integration.conftest import Service
from tests.processes import wait_until
from webhooks import manage

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.parametrize("service", ["sqlite"], indirect=True),
]

CHATWOOT_SECRET = "chatwoot-webhook-secret-e2e"
TOKEN = "cw-api-token-e2e-0123"
CLOSE_AFTER = 3.0


@pytest.fixture(scope="module")
def gateway(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    process = GatewayProcess(
        service.broker_url,
        service.database_url,
        log,
        env={"CONVLIFE_CHATWOOT_WEBHOOK_SECRET": CHATWOOT_SECRET},
    )
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[Client]:
    yield gateway.client()
    gateway.close_clients()


@pytest.fixture
def chatwoot(service: Service) -> Iterator[FakeChatwoot]:
    with fake_chatwoot(TOKEN) as fake:
        engine = make_engine(service.database_url)
        try:
            manage.connect_chatwoot(engine, url=fake.url, token=TOKEN, now=datetime.now(UTC))
        finally:
            engine.dispose()
        yield fake


def new_account(
    client: Client, close_after: float | None, window: float = 3600, bot: bool = False
) -> str:
    """A Chatwoot account (an integer id) with these settings, set over /v1/events."""
    account = str(random.randint(10**6, 10**9))
    settings = {
        "event_id": f"settings-{account}",
        "type": "account.settings_updated",
        "account_id": account,
        "occurred_at": datetime.now(UTC).isoformat(),
        "inactivity_close_after": close_after,
        "reassignment_window": window,
        "bot_enabled": bot,
    }
    assert client.post_events(settings).status == 202
    path = f"/v1/accounts/{account}/settings"
    wait_until(
        lambda: client.request("GET", path).json().get("reassignment_window_seconds") == window,
        15,
        "the account's settings applied",
    )
    return account


def chatwoot_sends(client: Client, account: str, name: str, at: float, **changes: Any) -> Response:
    """Fixture `name`, dated `at` (unix seconds) as Chatwoot dates it, for `account`, signed and
    POSTed as Chatwoot does (the account in the webhook URL, as docs/integrations/chatwoot.md
    sets it up)."""
    payload = fixture(name)
    conversation = payload.get("conversation", payload)
    if "account" in payload:
        payload["account"]["id"] = int(account)
    if payload["event"] == "message_created":
        payload["created_at"] = datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    else:
        payload["updated_at"] = at
        if payload["event"] == "conversation_created":
            payload["created_at"] = int(at)
    conversation["updated_at"] = at
    for message in conversation.get("messages") or []:
        message["account_id"] = int(account)
        message["created_at"] = int(at)
    payload.update(changes)
    body = json.dumps(payload).encode()
    timestamp = int(time.time())
    return client.request(
        "POST",
        f"/v1/chatwoot/webhook?account_id={account}",
        body,
        headers={
            "X-Chatwoot-Timestamp": str(timestamp),
            "X-Chatwoot-Signature": sign(body, CHATWOOT_SECRET, timestamp),
            "X-Chatwoot-Delivery": f"{name}-{at}",
        },
    )


def conversation_is(client: Client, account: str, status: str) -> None:
    """Wait until convlife has applied what was sent so far and conversation 42 is `status`.

    The worker processes take ingest messages in parallel, so two webhooks sent a moment apart
    may be applied in either order; Chatwoot's own are seconds apart (a person acts between
    them), which this wait stands for."""
    path = f"/v1/accounts/{account}/conversations/42"

    def seen() -> bool:
        response = client.request("GET", path)
        return response.status == 200 and response.json()["status"] == status

    wait_until(seen, 15, f"conversation 42 {status}")


def last_activity_is(client: Client, account: str, at: float) -> None:
    """Wait until convlife has applied the message dated `at` in conversation 42 (its last
    activity moves to it, in the transaction that routes the message)."""
    path = f"/v1/accounts/{account}/conversations/42"
    wanted = datetime.fromtimestamp(at, UTC)

    def seen() -> bool:
        response = client.request("GET", path)
        if response.status != 200:
            return False
        return datetime.fromisoformat(response.json()["last_activity_at"]) >= wanted

    wait_until(seen, 15, f"the message of {wanted.isoformat()} applied")


def accepted(response: Response) -> dict[str, Any]:
    assert response.status == 200, response.body
    answer: dict[str, Any] = response.json()
    assert answer["rejected"] == [], answer
    return answer


def test_an_idle_conversation_gets_exactly_one_resolve_at_its_deadline_and_its_echo_changes_nothing(
    client: Client, chatwoot: FakeChatwoot, service: Service
) -> None:
    account = new_account(client, close_after=CLOSE_AFTER)
    start = time.time()
    accepted(chatwoot_sends(client, account, "conversation_created", start))
    accepted(chatwoot_sends(client, account, "message_created_incoming", start))
    last_activity = time.time()
    accepted(chatwoot_sends(client, account, "message_created_outgoing_agent", last_activity))
    deadline = last_activity + CLOSE_AFTER

    wait_until(lambda: chatwoot.calls_to("42", account), 20, "the resolve")
    [resolve] = chatwoot.calls_to("42", account)
    assert resolve.summary == "toggle_status resolved"
    assert deadline - 0.5 <= resolve.at <= deadline + 10, resolve.at - deadline

    # Chatwoot reports the resolve back (agent 7 still assigned there): the echo is dropped,
    # so it is not a close by agent 7 that would make the contact theirs.
    echo = accepted(
        chatwoot_sends(client, account, "conversation_status_changed_resolved", resolve.at + 0.2)
    )
    assert echo["ignored"] is not None
    assert "echo of convlife's own resolve" in echo["ignored"]
    time.sleep(2)  # a few dispatch runs: nothing else may be sent
    assert chatwoot.summaries(account=account) == ["toggle_status resolved"]

    # The contact writes again within the window: the close was the system's, so no agent.
    as_sent = {"id": 1301, "conversation": fixture("conversation_status_changed_reopened")}
    back = time.time()
    accepted(chatwoot_sends(client, account, "conversation_status_changed_reopened", back))
    accepted(chatwoot_sends(client, account, "message_created_incoming", back, **as_sent))
    wait_until(
        lambda: any(
            d["type"] == "contact.routed" and d["route"] == "unassigned"
            for d in service.decisions("0-0", account, count=10, timeout=0.5)
        ),
        15,
        "the returning contact routed",
    )
    time.sleep(1.5)
    assert "assignments" not in " ".join(chatwoot.summaries(account=account))
    assert chatwoot.refused == []


def test_a_contact_whose_conversation_an_agent_resolved_comes_back_to_that_agent_once(
    client: Client, chatwoot: FakeChatwoot
) -> None:
    account = new_account(client, close_after=None)
    start = time.time()
    accepted(chatwoot_sends(client, account, "conversation_created", start))
    accepted(chatwoot_sends(client, account, "message_created_incoming", start))
    accepted(chatwoot_sends(client, account, "message_created_outgoing_agent", start))
    conversation_is(client, account, "open")
    # Agent 7 resolves it in Chatwoot (not convlife's doing: no call of ours to match).
    resolved = accepted(
        chatwoot_sends(client, account, "conversation_status_changed_resolved", time.time())
    )
    assert resolved["ignored"] is None
    conversation_is(client, account, "closed")

    # The contact writes again: Chatwoot reopens the conversation and sends both webhooks.
    back = time.time() + 0.5
    reopened = fixture("conversation_status_changed_reopened")
    reopened["updated_at"] = back
    as_sent = {"id": 1301, "conversation": reopened}
    accepted(chatwoot_sends(client, account, "conversation_status_changed_reopened", back))
    accepted(chatwoot_sends(client, account, "message_created_incoming", back, **as_sent))

    wait_until(lambda: chatwoot.calls_to("42", account), 20, "the assignment")
    time.sleep(0.5)
    calls = chatwoot.calls_to("42", account)
    assert [call.summary for call in calls] == ["assignments assignee_id=7"], calls
    [assignment] = calls

    # Its echo (Chatwoot reports the assignment) changes nothing; nothing more is sent.
    echo = accepted(
        chatwoot_sends(
            client,
            account,
            "conversation_updated_assignee",
            assignment.at + 0.2,
            changed_attributes=[{"assignee_id": {"previous_value": None, "current_value": 7}}],
            meta={
                **fixture("conversation_updated_assignee")["meta"],
                "assignee": {"id": 7, "type": "user"},
            },
        )
    )
    assert "echo of convlife's own assign_agent" in echo["ignored"]
    time.sleep(2)
    assert chatwoot.summaries(account=account) == ["assignments assignee_id=7"]
    assert chatwoot.refused == []


def test_a_contact_back_after_the_window_with_the_bot_on_is_handed_to_the_bot_once(
    client: Client, chatwoot: FakeChatwoot
) -> None:
    account = new_account(client, close_after=None, window=1, bot=True)
    start = time.time()
    # Each webhook applied before the next is sent, as a person acting between them spaces
    # Chatwoot's: the worker processes take messages in parallel, and this test is about the
    # return, not about how the first message races its conversation (routed first, it finds
    # no conversation and hands this new contact to the bot: a first toggle; routed after the
    # agent's resolve, it counts the close as before it) (docs/integrations/chatwoot.md).
    accepted(chatwoot_sends(client, account, "conversation_created", start))
    conversation_is(client, account, "open")
    accepted(chatwoot_sends(client, account, "message_created_incoming", start))
    last_activity_is(client, account, start)
    accepted(chatwoot_sends(client, account, "conversation_status_changed_resolved", time.time()))
    conversation_is(client, account, "closed")
    # Past the 1 s window, with room: Chatwoot dates the message that reopens it in whole
    # seconds (push data), so the inbound may read up to 1 s earlier than it was sent.
    time.sleep(2.5)

    back = time.time()
    reopened = fixture("conversation_status_changed_reopened")
    reopened["updated_at"] = back
    accepted(chatwoot_sends(client, account, "conversation_status_changed_reopened", back))
    accepted(
        chatwoot_sends(
            client, account, "message_created_incoming", back, id=1301, conversation=reopened
        )
    )
    wait_until(lambda: chatwoot.calls_to("42", account), 20, "the hand-over to the bot")
    [handover] = chatwoot.calls_to("42", account)
    assert handover.summary == "toggle_status pending"

    # Chatwoot reports the conversation pending: our own doing, ignored.
    echo = accepted(
        chatwoot_sends(
            client,
            account,
            "conversation_status_changed_reopened",
            handover.at + 0.2,
            status="pending",
            changed_attributes=[{"status": {"previous_value": "open", "current_value": "pending"}}],
        )
    )
    assert "echo of convlife's own pending" in echo["ignored"]
    time.sleep(2)
    assert chatwoot.summaries(account=account) == ["toggle_status pending"]
    assert chatwoot.refused == []
