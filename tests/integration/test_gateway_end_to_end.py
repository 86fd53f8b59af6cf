"""A platform that speaks only HTTP drives the whole lifecycle through `convlife gateway`.

A real `convlife run` (worker + beat) and a real `convlife gateway` run against the suite's
Redis and each store; events go in as signed POSTs, decisions come out on the stream, and the
signed reads show what the worker did.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.gateway.support import Client, GatewayProcess
from tests.integration.conftest import Service
from tests.processes import wait_until


@pytest.fixture(scope="module")
def gateway(service: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    log = tmp_path_factory.mktemp("gateway") / "gateway.log"
    process = GatewayProcess(service.broker_url, service.database_url, log)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[Client]:
    yield gateway.client()
    gateway.close_clients()


def at(offset_seconds: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_seconds)).isoformat()


def conversation(
    kind: str, account: str, event_id: str, conv: str, contact: str, **more: Any
) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": kind,
        "account_id": account,
        "occurred_at": at(),
        "conversation_id": conv,
        "contact_id": contact,
        "line_id": "sales",
        **more,
    }


def configured_account(client: Client, **settings: Any) -> str:
    """A new account with `settings`, changed through the gateway and seen applied."""
    account = f"acct-{uuid.uuid4().hex[:8]}"
    response = client.request("PUT", f"/v1/accounts/{account}/settings", settings)
    assert response.status == 202, response.body
    path = f"/v1/accounts/{account}/settings"
    wait_until(
        lambda: (
            client.request("GET", path).json()["bot_enabled"] == settings["bot_enabled"]
            and client.request("GET", path).json()["inactivity_close_after_seconds"] is not None
        ),
        15,
        "the settings change applied",
    )
    return account


def test_events_posted_over_http_are_decided_and_readable_over_http(
    service: Service, client: Client
) -> None:
    account = configured_account(
        client, inactivity_close_after="PT2S", reassignment_window="PT1H", bot_enabled=False
    )
    assert client.request("GET", f"/v1/accounts/{account}/settings").json() == {
        "account_id": account,
        "inactivity_close_after_seconds": 2.0,
        "reassignment_window_seconds": 3600.0,
        "bot_enabled": False,
        "close_warning_before_seconds": None,
        "business_hours": None,
        "route_to_away_agents": True,
        "window_counts_business_hours": False,
        "lines": {},
    }
    since = service.stream_position()
    dead_since = service.stream_position("convlife:dead-letters")
    marker = f"refused-{uuid.uuid4().hex}"
    batch = [
        conversation("conversation.opened", account, "e1", "c1", "maria", agent_id="ana"),
        conversation("conversation.opened", account, "e2", "c2", "joao", agent_id="bruno"),
        conversation(
            "conversation.closed",
            account,
            "e3",
            "c2",
            "joao",
            closed_by="agent",
            agent_id="bruno",
            close_reason="resolved",
        ),
        # joao writes again: in the same batch as the close, so it is routed after it (events
        # of one contact sent in separate requests may reach two worker processes at once).
        {
            "event_id": "e4",
            "type": "contact.inbound",
            "account_id": account,
            "occurred_at": at(0.01),
            "contact_id": "joao",
            "line_id": "sales",
        },
        {"event_id": marker, "type": "contact.inbound", "account_id": account},
    ]
    posted = client.post_events(batch)
    assert posted.status == 202
    assert posted.json()["accepted"] == 4
    assert [(r["index"], r["event_id"]) for r in posted.json()["rejected"]] == [(4, marker)]

    decided = service.decisions(since, account, count=2, timeout=20)
    by_type = {d["type"]: d for d in decided}
    assert by_type["contact.routed"]["route"] == "previous_agent"
    assert by_type["contact.routed"]["agent_id"] == "bruno"
    assert by_type["conversation.auto_closed"]["conversation_id"] == "c1"
    # The refused event was dead-lettered by the worker, as from any other way in.
    [dead] = service.dead_letters(dead_since, marker, count=1, timeout=10)
    assert "contact_id" in dead["error"]

    shown = client.request("GET", f"/v1/accounts/{account}/conversations/c1")
    assert shown.status == 200
    view = shown.json()
    assert view["status"] == "closed"
    assert view["assignee"] == {"agent_id": "ana", "group_id": None, "bot": False}
    assert view["closed"]["by"] == "system"
    assert view["closed"]["reason"] == "inactivity"
    assert view["close_due_at"] is None
    [closed] = view["decisions"]
    assert closed["decision_id"] == by_type["conversation.auto_closed"]["decision_id"]
    assert closed["reason"]
    missing = client.request("GET", f"/v1/accounts/{account}/conversations/nope")
    assert missing.status == 404


def test_a_retried_request_changes_nothing_the_first_one_did(
    service: Service, client: Client
) -> None:
    """The client retries the whole request (after a 503 or a lost answer): event ids make it
    idempotent, so one inbound routed once, however many times it was POSTed."""
    account = configured_account(
        client, inactivity_close_after="P1D", reassignment_window=None, bot_enabled=True
    )
    since = service.stream_position()
    inbound = {
        "event_id": "once",
        "type": "contact.inbound",
        "account_id": account,
        "occurred_at": at(),
        "contact_id": "maria",
        "line_id": "sales",
    }
    for _ in range(3):
        assert client.post_events([inbound]).status == 202
    routed = service.decisions(since, account, count=2, timeout=6)
    assert len(routed) == 1
    assert routed[0]["route"] == "bot"
    assert time.time() - routed[0]["_received"] < 60
