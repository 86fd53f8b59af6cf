"""Webhook subscriptions as plain operations: what `convlife webhooks …` and the gateway's
`/v1/webhooks` routes call. They validate, touch the database, and return plain data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine

from events.decisions import AutoClosed, CloseWarning, ContactRouted
from store import webhooks as store

DECISION_TYPES: tuple[str, ...] = (
    AutoClosed.model_fields["type"].default,
    CloseWarning.model_fields["type"].default,
    ContactRouted.model_fields["type"].default,
)
MIN_SECRET_LENGTH = 16


class InvalidSubscription(ValueError):
    """A subscription that cannot be stored, with the reason in one line."""


def validate_url(url: str) -> str:
    """The URL, if convlife may POST to it: http or https, with a host."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018  (parsing the port is what raises on a bad one)
    except ValueError as error:
        raise InvalidSubscription(f"the URL cannot be parsed ({error})") from None
    if parts.scheme not in ("http", "https"):
        shown = parts.scheme or "none"
        raise InvalidSubscription(f"the URL must be http:// or https:// (scheme: {shown})")
    if not host:
        raise InvalidSubscription("the URL has no host")
    return url.strip()


def parse_types(types: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """Decision types from "a,b" or a list; None or empty means all."""
    if types is None:
        return None
    items = types.split(",") if isinstance(types, str) else list(types)
    cleaned = tuple(dict.fromkeys(item.strip() for item in items if item.strip()))
    unknown = [item for item in cleaned if item not in DECISION_TYPES]
    if unknown:
        raise InvalidSubscription(
            f"unknown decision type {', '.join(unknown)} (known: {', '.join(DECISION_TYPES)})"
        )
    return cleaned or None


def add(
    engine: Engine,
    *,
    url: str,
    secret: str,
    now: datetime,
    account_id: str | None = None,
    types: str | Sequence[str] | None = None,
) -> dict[str, Any]:
    """Subscribe `url` to decisions (of one account, of some types, or all); returns it."""
    checked_url = validate_url(url)
    checked_types = parse_types(types)
    if len(secret) < MIN_SECRET_LENGTH:
        raise InvalidSubscription(f"the secret must be at least {MIN_SECRET_LENGTH} characters")
    with engine.begin() as connection:
        subscription_id = store.add_subscription(
            connection,
            url=checked_url,
            secret=secret,
            now=now,
            account_id=account_id or None,
            types=checked_types,
        )
    return show(engine, subscription_id)


def connect_chatwoot(
    engine: Engine,
    *,
    url: str,
    token: str,
    now: datetime,
    account_id: str | None = None,
) -> dict[str, Any]:
    """Have decisions (of one account, or all) carried out on the Chatwoot at `url` with the
    API access token `token`; returns the subscription. Connecting the same Chatwoot and
    account again replaces the token and resumes a subscription paused on a 401: what waits
    is sent with the new token."""
    checked_url = validate_url(url).rstrip("/")
    if not token.strip():
        raise InvalidSubscription("a Chatwoot subscription needs the API access token")
    if account_id is not None and not (account_id.isascii() and account_id.isdigit()):
        raise InvalidSubscription(f"Chatwoot account ids are numbers, not {account_id!r}")
    with engine.begin() as connection:
        subscription_id = store.replace_credentials(
            connection,
            kind=store.CHATWOOT,
            url=checked_url,
            account_id=account_id or None,
            secret=token.strip(),
        )
        if subscription_id is None:
            subscription_id = store.add_subscription(
                connection,
                url=checked_url,
                secret=token.strip(),
                now=now,
                account_id=account_id or None,
                kind=store.CHATWOOT,
            )
    return show(engine, subscription_id)


def show(engine: Engine, subscription_id: int) -> dict[str, Any]:
    for subscription in list_all(engine):
        if subscription["id"] == subscription_id:
            return subscription
    raise LookupError(f"no webhook subscription {subscription_id}")


def list_all(engine: Engine) -> list[dict[str, Any]]:
    """Every subscription, without its secret."""
    with engine.connect() as connection:
        return [_plain(asdict(item)) for item in store.subscriptions(connection)]


def remove(engine: Engine, subscription_id: int) -> None:
    """Delete a subscription, its deliveries and their attempts."""
    with engine.begin() as connection:
        if not store.remove_subscription(connection, subscription_id):
            raise LookupError(f"no webhook subscription {subscription_id}")


def deliveries(
    engine: Engine,
    *,
    subscription_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Deliveries, newest first."""
    if status is not None and status not in store.STATUSES:
        raise InvalidSubscription(
            f"unknown delivery status {status} (known: {', '.join(store.STATUSES)})"
        )
    with engine.connect() as connection:
        rows = store.deliveries(
            connection, subscription_id=subscription_id, status=status, limit=limit
        )
    return [_plain(asdict(row)) for row in rows]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """JSON-ready: datetimes as ISO 8601, tuples as lists."""
    return {
        key: value.isoformat()
        if isinstance(value, datetime)
        else list(value)
        if isinstance(value, tuple)
        else value
        for key, value in item.items()
    }
