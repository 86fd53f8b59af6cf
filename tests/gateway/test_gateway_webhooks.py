"""`/v1/webhooks` on the gateway: a platform that only speaks HTTP registers where its signed
decisions go, reads the deliveries, and removes the subscription — the same operations as
`convlife webhooks`, signed like every other route."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.gateway.support import Client, GatewayProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _close_clients(gateway: GatewayProcess) -> Iterator[None]:
    yield
    gateway.close_clients()


@pytest.fixture
def client(gateway: GatewayProcess) -> Client:
    return gateway.client()


def a_subscription(**fields: object) -> dict[str, object]:
    return {
        "url": f"https://hooks.example.com/{uuid.uuid4().hex[:8]}",
        "secret": "whsec-0123456789abcdef",
        "account_id": f"acct-{uuid.uuid4().hex[:8]}",
        "types": ["contact.routed"],
        **fields,
    }


def test_a_subscription_added_over_http_is_listed_without_its_secret_and_can_be_removed(
    client: Client,
) -> None:
    wanted = a_subscription()
    added = client.request("POST", "/v1/webhooks", wanted)
    assert added.status == 201, added.body
    subscription = added.json()
    assert (subscription["url"], subscription["account_id"]) == (
        wanted["url"],
        wanted["account_id"],
    )
    assert subscription["types"] == ["contact.routed"]

    listed = client.request("GET", "/v1/webhooks")
    assert listed.status == 200
    [found] = [item for item in listed.json() if item["id"] == subscription["id"]]
    assert "secret" not in found
    assert wanted["secret"] not in listed.body.decode()

    deliveries = client.request("GET", f"/v1/webhooks/deliveries?subscription_id={found['id']}")
    assert (deliveries.status, deliveries.json()) == (200, [])

    assert client.request("DELETE", f"/v1/webhooks/{found['id']}").status == 204
    assert client.request("DELETE", f"/v1/webhooks/{found['id']}").status == 404
    assert all(item["id"] != found["id"] for item in client.request("GET", "/v1/webhooks").json())


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"url": "ftp://example.com/hook"}, "ftp"),
        ({"secret": "short"}, "secret"),
        ({"types": ["conversation.waved"]}, "conversation.waved"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_subscription_that_cannot_work_is_refused_with_the_reason(
    client: Client, fields: dict[str, object], says: str
) -> None:
    refused = client.request("POST", "/v1/webhooks", a_subscription(**fields))
    assert refused.status == 422
    assert says in refused.body.decode()


def test_the_webhook_routes_are_signed_like_every_other(gateway: GatewayProcess) -> None:
    unsigned = Client(gateway.port, secret=None)
    try:
        assert unsigned.request("GET", "/v1/webhooks").status == 401
        assert unsigned.request("POST", "/v1/webhooks", a_subscription()).status == 401
    finally:
        unsigned.close()


def test_an_unknown_delivery_status_is_refused(client: Client) -> None:
    assert client.request("GET", "/v1/webhooks/deliveries?status=lost").status == 422
