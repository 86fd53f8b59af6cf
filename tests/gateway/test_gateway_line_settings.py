"""The gateway's reads show per-line settings: an account's settings list each line's overrides,
and a conversation says what its line overrides."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from events.models import ConversationEvent, LineUpdated
from events.parsing import parse_event
from store import configuration, conversations
from store.db import make_engine
from tests.gateway.support import Client, GatewayProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[Client]:
    yield gateway.client()
    gateway.close_clients()


def stored(url: str, *raw: dict[str, object]) -> None:
    """Write lines and conversations straight to the gateway's store (it runs no worker)."""
    engine = make_engine(url)
    events = [parse_event(item) for item in raw]
    with engine.begin() as connection:
        for line in events:
            if isinstance(line, LineUpdated):
                configuration.apply_line(connection, line)
        conversations.lock_or_create(
            connection, [e for e in events if isinstance(e, ConversationEvent)]
        )
    engine.dispose()


def raw(type_: str, account: str, **fields: object) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    return {
        "event_id": uuid.uuid4().hex,
        "type": type_,
        "account_id": account,
        "occurred_at": now,
        **fields,
    }


def test_an_accounts_settings_list_each_line_that_overrides_some_and_what_it_overrides(
    sqlite_store: str, client: Client
) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"
    stored(
        sqlite_store,
        raw(
            "line.updated",
            account,
            line_id="fast",
            inactivity_close_after="PT10M",
            bot_enabled=None,
        ),
        raw("line.updated", account, line_id="plain", agent_id="ana"),
    )

    shown = client.request("GET", f"/v1/accounts/{account}/settings").json()

    assert shown["lines"] == {"fast": {"inactivity_close_after": "PT10M", "bot_enabled": False}}


def test_a_conversation_says_what_its_line_overrides(sqlite_store: str, client: Client) -> None:
    account = f"acct-{uuid.uuid4().hex[:8]}"
    stored(
        sqlite_store,
        raw("line.updated", account, line_id="fast", inactivity_close_after=None),
        raw(
            "conversation.opened", account, conversation_id="c1", contact_id="maria", line_id="fast"
        ),
    )

    shown = client.request("GET", f"/v1/accounts/{account}/conversations/c1").json()

    assert shown["line_overrides"] == {"inactivity_close_after": None}
