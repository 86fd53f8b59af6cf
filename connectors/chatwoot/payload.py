"""Reading Chatwoot's webhook payloads: typed access, its two ways of writing time, our event ids.

The shapes follow Chatwoot's own serializers (see tests/connectors/chatwoot/fixtures/README.md):
conversation webhooks are `Conversation#webhook_data` (= `Conversations::EventDataPresenter#
push_data`) plus `event` and `changed_attributes`; message webhooks are `Message#webhook_data`,
which embeds the conversation's `webhook_data` under `conversation`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

Payload = Mapping[str, Any]


class PayloadError(ValueError):
    """A payload that does not have the shape Chatwoot's source gives it (a field missing or of the
    wrong type). The gateway answers 400 and keeps the raw body for an operator."""


def mapping(value: object, where: str) -> Payload:
    if not isinstance(value, Mapping):
        raise PayloadError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def optional_mapping(value: object, where: str) -> Payload | None:
    return None if value is None else mapping(value, where)


def chatwoot_id(value: object, where: str) -> str:
    """An id as convlife holds it: Chatwoot's integer ids written as decimal strings."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PayloadError(f"{where}: expected an id, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise PayloadError(f"{where}: empty id")
    return text


def optional_id(value: object, where: str) -> str | None:
    return None if value is None else chatwoot_id(value, where)


def text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected a string, got {type(value).__name__}")
    return value


def unix_time(value: object, where: str) -> datetime:
    """Chatwoot's push data writes times as unix seconds: `created_at` an integer, `updated_at`
    a float (`updated_at.to_f`, microseconds kept)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where}: expected unix seconds, got {type(value).__name__}")
    if not math.isfinite(value) or value <= 0:
        raise PayloadError(f"{where}: {value!r} is not a time")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise PayloadError(f"{where}: {value!r} is not a time ({exc})") from None


def iso_time(value: object, where: str) -> datetime:
    """`Message#webhook_data` writes `created_at` as Rails serializes a time: ISO 8601 with
    milliseconds and an offset (`2026-03-01T10:00:00.123Z`, or `+02:00` when the app runs in
    another zone). Unix seconds are taken too, since older serializers wrote those."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return unix_time(value, where)
    raw = text(value, where)
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise PayloadError(f"{where}: {raw!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise PayloadError(f"{where}: {raw!r} has no offset")
    return parsed.astimezone(UTC)


def rfc3339(moment: datetime) -> str:
    """The `occurred_at` convlife takes: RFC 3339, UTC, `Z`, microseconds when there are any."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def time_key(value: object, where: str) -> str:
    """A time as it appears in an event id: the same payload always gives the same key.

    `updated_at` is a float: `repr` of the parsed float is stable, and distinct for two updates
    a microsecond apart."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError(f"{where}: expected unix seconds, got {type(value).__name__}")
    return repr(float(value))


def changed_attributes(payload: Payload) -> dict[str, tuple[Any, Any]]:
    """`changed_attributes` as `{name: (previous, current)}`.

    Chatwoot's BaseListener#extract_changed_attributes writes a list of one-key objects,
    `[{"status": {"previous_value": "open", "current_value": "resolved"}}, ...]`, or null."""
    raw = payload.get("changed_attributes")
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise PayloadError("changed_attributes: expected a list")
    changes: dict[str, tuple[Any, Any]] = {}
    for item in raw:
        for name, change in mapping(item, "changed_attributes[]").items():
            values = mapping(change, f"changed_attributes.{name}")
            changes[str(name)] = (values.get("previous_value"), values.get("current_value"))
    return changes


def event_id(conversation_id: str, *parts: str) -> str:
    """Our event id: `cw:c<conversation display_id>:<what>`, unique within the account.

    Built only from what the payload carries (ids, statuses, Chatwoot's own timestamps), so a
    retried or re-sent webhook gives the same ids and convlife drops the copies."""
    return ":".join(("cw", f"c{conversation_id}", *parts))
