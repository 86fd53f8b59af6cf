"""`convlife gateway` over real HTTP: who gets in, what is enqueued, what is refused and how.

The gateway runs as a subprocess against a redis-server of this module's own (no worker), so
the tests count the ingest messages it enqueued exactly.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signed_headers
from tests.gateway.conftest import Broker
from tests.gateway.support import SECOND_SECRET, SECRET, Client, GatewayProcess, event
from tests.processes import RedisServer, run_convlife

pytestmark = pytest.mark.timeout(120)


def account() -> str:
    return f"acct-{uuid.uuid4().hex[:8]}"


@pytest.fixture(autouse=True)
def _close_clients(gateway: GatewayProcess) -> Iterator[None]:
    yield
    gateway.close_clients()


@pytest.fixture
def client(gateway: GatewayProcess) -> Client:
    return gateway.client()


# --- authentication ---------------------------------------------------------------------------


def test_a_correctly_signed_event_is_accepted_and_enqueued_as_one_message(
    client: Client, broker: Broker
) -> None:
    before = broker.queued_messages()
    sent = event(account(), "e1")
    response = client.post_events(sent)
    assert response.status == 202, response.body
    assert response.json() == {"accepted": 1, "rejected": []}
    assert broker.queued_messages() == before + 1
    assert broker.queued_batches()[-1] == [sent]


@pytest.mark.parametrize(
    "missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER], ids=["no-timestamp", "no-signature"]
)
def test_a_request_without_a_signature_header_gets_401_and_nothing_is_enqueued(
    gateway: GatewayProcess, broker: Broker, missing: str
) -> None:
    before = broker.queued_messages()
    body = json.dumps(event(account(), "e1")).encode()
    headers = {TIMESTAMP_HEADER: str(int(time.time())), SIGNATURE_HEADER: "sha256=00"}
    del headers[missing]
    response = gateway.client(secret=None).post_events(body, headers=headers)
    assert response.status == 401
    assert "missing" in response.json()["detail"]
    assert broker.queued_messages() == before


def test_a_request_signed_with_an_unknown_secret_gets_401_and_nothing_is_enqueued(
    client: Client, broker: Broker
) -> None:
    before = broker.queued_messages()
    response = client.post_events(event(account(), "e1"), secret="not-our-secret")
    assert response.status == 401
    assert response.json()["detail"] == "unauthorized: signature does not match"
    assert broker.queued_messages() == before


def test_a_body_changed_after_signing_gets_401(gateway: GatewayProcess, broker: Broker) -> None:
    before = broker.queued_messages()
    signed = json.dumps(event(account(), "e1")).encode()
    headers = signed_headers(SECRET, int(time.time()), signed)
    tampered = signed.replace(b'"e1"', b'"e2"')
    response = gateway.client(secret=None).post_events(tampered, headers=headers)
    assert response.status == 401
    assert broker.queued_messages() == before


# 330 s, not 301: the request reaches the gateway's clock a moment after the test read its own,
# and on a loaded machine that moment can be seconds, which would bring 301 s ahead within bounds.
@pytest.mark.parametrize("offset", [-330, 330, -3600], ids=["330s-old", "330s-ahead", "1h-old"])
def test_a_timestamp_more_than_300_seconds_off_gets_401(
    client: Client, broker: Broker, offset: int
) -> None:
    before = broker.queued_messages()
    response = client.post_events(event(account(), "e1"), timestamp=int(time.time()) + offset)
    assert response.status == 401
    assert "300 s off" in response.json()["detail"]
    assert broker.queued_messages() == before


def test_a_timestamp_within_300_seconds_is_accepted(client: Client) -> None:
    response = client.post_events(event(account(), "e1"), timestamp=int(time.time()) - 270)
    assert response.status == 202


def test_both_secrets_are_accepted_while_a_key_rotates(client: Client) -> None:
    for secret in (SECRET, SECOND_SECRET):
        response = client.post_events(event(account(), "e1"), secret=secret)
        assert response.status == 202, secret


def test_reads_are_signed_too_a_get_signs_the_empty_body(
    gateway: GatewayProcess, client: Client
) -> None:
    path = f"/v1/accounts/{account()}/settings"
    assert client.request("GET", path).status == 200
    assert client.request("GET", path, secret="not-our-secret").status == 401
    unsigned = gateway.client(secret=None)
    assert unsigned.request("GET", path).status == 401


# --- bad requests -------------------------------------------------------------------------------


def test_a_body_that_is_not_json_gets_400_and_nothing_is_enqueued(
    client: Client, broker: Broker
) -> None:
    before = broker.queued_messages()
    response = client.post_events(b'{"event_id": "e1", ')
    assert response.status == 400
    assert "not JSON" in response.json()["detail"]
    assert broker.queued_messages() == before


def test_a_body_over_1_mib_gets_413_from_its_content_length(client: Client, broker: Broker) -> None:
    before = broker.queued_messages()
    big = json.dumps([event(account(), f"e{i}", padding="x" * 1100) for i in range(1000)])
    assert len(big) > 1024 * 1024
    response = client.post_events(big.encode())
    assert response.status == 413
    assert broker.queued_messages() == before


def test_an_announced_body_over_1_mib_is_refused_before_it_is_sent(
    gateway: GatewayProcess,
) -> None:
    """The gateway answers from Content-Length alone: it never waits for (or buffers) the body."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
        )
        status_line = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


def test_a_client_that_hangs_up_mid_body_gets_nothing_enqueued_and_no_traceback(
    gateway: GatewayProcess, broker: Broker
) -> None:
    before = broker.queued_messages()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{"
        )
        time.sleep(0.3)
    time.sleep(0.5)
    assert broker.queued_messages() == before
    assert "Traceback" not in gateway.log.read_text(errors="replace")


def test_a_chunked_body_over_1_mib_gets_413_while_it_streams(
    gateway: GatewayProcess, broker: Broker
) -> None:
    """No Content-Length: the gateway counts the bytes as they come and stops at the limit."""
    before = broker.queued_messages()
    chunk = b" " * 65536
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=30)
    try:
        # The server may answer and close before taking it all: the answer is still there.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.request(
                "POST",
                "/v1/events",
                body=iter([chunk] * 24),  # 1.5 MiB, never announced
                headers={"Content-Type": "application/json"},
                encode_chunked=True,
            )
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    assert broker.queued_messages() == before


def test_more_than_1000_events_get_413_and_nothing_is_enqueued(
    client: Client, broker: Broker
) -> None:
    before = broker.queued_messages()
    acct = account()
    response = client.post_events([event(acct, f"e{i}") for i in range(1001)])
    assert response.status == 413
    assert "1001 events" in response.json()["detail"]
    assert broker.queued_messages() == before


def test_1000_events_are_accepted_in_one_message(client: Client, broker: Broker) -> None:
    before = broker.queued_messages()
    acct = account()
    response = client.post_events([event(acct, f"e{i}") for i in range(1000)])
    assert response.status == 202
    assert response.json()["accepted"] == 1000
    assert broker.queued_messages() == before + 1


# --- partial batches ------------------------------------------------------------------------------


def test_a_partial_batch_accepts_the_valid_events_and_names_each_refused_one(
    client: Client, broker: Broker
) -> None:
    acct = account()
    future = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
    sent = [
        event(acct, "ok-1"),
        {**event(acct, "no-contact"), "contact_id": None},
        "not an object",
        event(acct, "ok-2"),
        event(acct, "from-the-future", occurred_at=future),
        {**event(acct, "bad-type"), "type": "conversation.exploded"},
    ]
    response = client.post_events(sent)
    assert response.status == 202
    body = response.json()
    assert body["accepted"] == 2
    rejected = {item["index"]: item for item in body["rejected"]}
    assert sorted(rejected) == [1, 2, 4, 5]
    assert rejected[1]["event_id"] == "no-contact"
    assert rejected[1]["error"].startswith("contact_id:")
    assert rejected[2]["event_id"] is None
    assert "JSON object" in rejected[2]["error"] or "not JSON" in rejected[2]["error"]
    assert "ahead of convlife's clock" in rejected[4]["error"]
    assert rejected[5]["event_id"] == "bad-type"
    # Every item travels to the worker, which applies the valid ones and dead-letters the rest
    # exactly as for any other way in (the end-to-end test sees the dead letters).
    assert broker.queued_batches()[-1] == sent


def test_an_empty_array_is_accepted_and_sends_nothing(client: Client, broker: Broker) -> None:
    before = broker.queued_messages()
    response = client.post_events([])
    assert response.status == 202
    assert response.json() == {"accepted": 0, "rejected": []}
    assert broker.queued_messages() == before


def test_a_settings_change_is_enqueued_as_an_account_settings_updated_event(
    client: Client, broker: Broker
) -> None:
    acct = account()
    response = client.request(
        "PUT",
        f"/v1/accounts/{acct}/settings",
        {"inactivity_close_after": "PT10S", "bot_enabled": True, "event_id": "change-1"},
    )
    assert response.status == 202, response.body
    sent = broker.queued_batches()[-1]
    assert len(sent) == 1
    assert sent[0]["type"] == "account.settings_updated"
    assert sent[0]["account_id"] == acct
    assert sent[0]["event_id"] == "change-1"
    assert sent[0]["inactivity_close_after"] == 10.0
    assert sent[0]["bot_enabled"] is True
    assert "reassignment_window" not in sent[0]  # left out: keeps its value


def test_an_invalid_settings_change_gets_422_and_nothing_is_enqueued(
    client: Client, broker: Broker
) -> None:
    before = broker.queued_messages()
    path = f"/v1/accounts/{account()}/settings"
    assert client.request("PUT", path, {"inactivity_close_after": "soon"}).status == 422
    assert client.request("PUT", path, {}).status == 422
    assert client.request("PUT", path, {"colour": "blue"}).status == 422
    assert broker.queued_messages() == before


# --- probes, docs ---------------------------------------------------------------------------------


def test_healthz_and_readyz_answer_without_authentication(gateway: GatewayProcess) -> None:
    unsigned = gateway.client(secret=None)
    assert unsigned.request("GET", "/healthz").json() == {"status": "ok"}
    ready = unsigned.request("GET", "/readyz")
    assert ready.status == 200
    assert ready.json() == {"status": "ready", "broker": "ok", "database": "ok"}


def test_metrics_are_not_on_the_public_port(gateway: GatewayProcess) -> None:
    assert gateway.client(secret=None).request("GET", "/metrics").status == 404


def test_the_openapi_document_lists_every_route(gateway: GatewayProcess) -> None:
    spec = gateway.client(secret=None).request("GET", "/openapi.json").json()
    assert {
        "/v1/events",
        "/v1/accounts/{account_id}/conversations/{conversation_id}",
        "/v1/accounts/{account_id}/settings",
        "/healthz",
        "/readyz",
    } <= set(spec["paths"])


def test_the_docs_page_needs_nothing_from_the_internet(gateway: GatewayProcess) -> None:
    """Every asset /docs references is served here; no http(s) URL at all (a CDN, a validator)."""
    client = gateway.client(secret=None)
    page = client.request("GET", "/docs")
    assert page.status == 200
    html = page.body.decode()
    assert "http://" not in html
    assert "https://" not in html
    assets = re.findall(r'(?:src|href)="(/[^"]+)"', html)
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(assets)
    for asset in assets:
        assert client.request("GET", asset).status == 200, asset


# --- start-up -------------------------------------------------------------------------------------


def test_the_gateway_refuses_to_start_without_a_secret(broker: Broker, sqlite_store: str) -> None:
    result = run_convlife(
        ["gateway", "--port", "1"],
        {
            "CONVLIFE_BROKER_URL": broker.url,
            "CONVLIFE_DATABASE_URL": sqlite_store,
            "CONVLIFE_GATEWAY_SECRETS": " , ",
        },
    )
    assert result.returncode == 2
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1
    assert "refusing to start: no CONVLIFE_GATEWAY_SECRETS" in lines[0]


def test_insecure_no_auth_takes_unsigned_requests_and_says_so_loudly(
    broker: Broker, sqlite_store: str, tmp_path: Path
) -> None:
    log = tmp_path / "insecure.log"
    process = GatewayProcess(broker.url, sqlite_store, log, "--insecure-no-auth")
    try:
        response = process.client(secret=None).post_events(event(account(), "e1"))
        assert response.status == 202
    finally:
        process.stop()
    assert "INSECURE: --insecure-no-auth" in log.read_text()


# --- broker down ----------------------------------------------------------------------------------


def test_a_broker_that_is_down_gets_503_with_retry_after_and_the_retry_goes_through(
    sqlite_store: str, tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    own = Broker(server)
    process = GatewayProcess(server.url, sqlite_store, tmp_path / "gateway.log")
    try:
        client = process.client()
        acct = account()
        batch = [event(acct, f"e{i}") for i in range(10)]
        assert client.post_events(batch).status == 202  # the pool holds a live connection
        server.stop()
        started = time.monotonic()
        refused = client.post_events(batch)
        assert refused.status == 503
        assert refused.headers["retry-after"] == "7"
        assert "nothing was accepted" in refused.json()["detail"]
        assert time.monotonic() - started < 10  # fails fast, does not hang the client
        assert client.request("GET", "/readyz").status == 503
        assert client.request("GET", "/healthz").status == 200
        server.start()  # same port, empty: whatever the 503 said was not kept
        assert own.queued_messages() == 0
        retried = client.post_events(batch)
        assert retried.status == 202
        assert retried.json()["accepted"] == 10
        assert own.queued_messages() == 1
        assert own.queued_batches() == [batch]
    finally:
        process.stop()
        server.stop()


def test_a_settings_preview_answers_with_counts_and_changes_nothing(
    client: Client, broker: Broker
) -> None:
    before = broker.queued_messages()
    response = client.request(
        "POST",
        f"/v1/accounts/{account()}/settings/preview",
        {"inactivity_close_after": "P1D", "business_hours": None},
    )
    assert response.status == 200, response.body
    shown = response.json()
    assert (shown["close_at_once"], shown["more_within_7d"], shown["sample"]) == (0, 0, [])
    assert shown["exact"] is True
    assert broker.queued_messages() == before  # a preview enqueues nothing


def test_a_settings_preview_of_nothing_or_of_a_bad_value_gets_422(client: Client) -> None:
    path = f"/v1/accounts/{account()}/settings/preview"
    assert client.request("POST", path, {}).status == 422
    assert client.request("POST", path, {"inactivity_close_after": "soon"}).status == 422
    bad_zone = {"business_hours": {"timezone": "Mars/Olympus", "weekly": {}}}
    assert client.request("POST", path, bad_zone).status == 422
    assert client.request("POST", path, {"reassignment_window": "P1D"}).status == 422


def test_a_settings_change_carries_the_warning_business_hours_and_routing_flags(
    client: Client, broker: Broker
) -> None:
    hours = {"timezone": "UTC", "weekly": {"mon": [["09:00", "17:00"]]}}
    change = {
        "close_warning_before": "PT5M",
        "business_hours": hours,
        "route_to_away_agents": False,
        "window_counts_business_hours": True,
    }
    response = client.request("PUT", f"/v1/accounts/{account()}/settings", change)
    assert response.status == 202, response.body
    [sent] = broker.queued_batches()[-1]
    assert sent["close_warning_before"] == 300.0
    assert sent["business_hours"] == hours
    assert (sent["route_to_away_agents"], sent["window_counts_business_hours"]) == (False, True)
    bad = {"business_hours": {"timezone": "Mars/Olympus", "weekly": {}}}
    assert client.request("PUT", f"/v1/accounts/{account()}/settings", bad).status == 422
