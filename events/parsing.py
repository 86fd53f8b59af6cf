"""Raw input becomes an event here, or an `InvalidEvent` that names what is wrong."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter, ValidationError

from events.models import EVENT_TYPES, Event

MAX_EVENT_BYTES = 64 * 1024
"""An event larger than this (as JSON) is refused: no legitimate event comes near it."""

MAX_RAW_KEPT = 8 * 1024
"""How much of a refused payload a dead letter keeps."""

_event_adapter: TypeAdapter[Any] = TypeAdapter(Event)


class InvalidEvent(ValueError):
    """Input that is not a valid event. `raw` is the payload as text (cut to MAX_RAW_KEPT)."""

    def __init__(self, reason: str, raw: str, event_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = storable(reason)
        raw = raw if len(raw) <= MAX_RAW_KEPT else raw[:MAX_RAW_KEPT] + "…[cut]"
        self.raw = storable(raw)
        # The dead letter's event_id column holds 200 characters, like every id.
        self.event_id = None if event_id is None else storable(event_id)[:MAX_ID_KEPT]


MAX_ID_KEPT = 200


def storable(text: str) -> str:
    """`text` as any store can hold it: NUL and lone surrogates written as escapes.

    A dead letter must be storable whatever arrived, or one bad event would fail its batch.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\u0000")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", errors="backslashreplace").decode("utf-8")
    return text


def raw_text(payload: object) -> str:
    """The payload as text, for a dead letter, whatever it is."""
    if isinstance(payload, bytes):
        return payload.decode("utf-8", errors="replace")
    if isinstance(payload, str):
        return payload
    try:
        return json.dumps(payload, ensure_ascii=False, default=repr)
    except (ValueError, TypeError, RecursionError):  # cycles, non-string keys, deep nesting
        pass
    try:
        return repr(payload)[: MAX_RAW_KEPT + 1]
    except RecursionError:
        return f"<{type(payload).__name__} nested too deeply to show>"


def parse_event(payload: object, *, max_bytes: int = MAX_EVENT_BYTES) -> Event:
    """Turn one raw payload (a dict, or JSON as str/bytes) into an event.

    Raises InvalidEvent with a one-line reason: not JSON, not an object, too large, unknown type,
    missing or mistyped fields.
    """
    if not _surely_within(payload, max_bytes):
        text = raw_text(payload)
        if len(text.encode("utf-8", errors="replace")) > max_bytes:
            raise InvalidEvent(f"payload larger than {max_bytes} bytes", text)
    original = payload
    if isinstance(payload, str | bytes):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError) as exc:
            raise InvalidEvent(f"not JSON: {exc}", raw_text(original)) from None
    if not isinstance(payload, dict):
        raise InvalidEvent(
            f"an event is a JSON object, got {type(payload).__name__}", raw_text(original)
        )
    event_id = payload.get("event_id") if isinstance(payload.get("event_id"), str) else None
    try:
        return _event_adapter.validate_python(payload)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise InvalidEvent(_one_line(exc), raw_text(original), event_id) from None
    except RecursionError:
        raise InvalidEvent("payload nested too deeply", raw_text(original), event_id) from None


def _surely_within(payload: object, max_bytes: int) -> bool:
    """True when `payload` cannot exceed `max_bytes` as UTF-8 JSON, judged without encoding it:
    a flat dict of short scalars (every event) is bounded by its lengths, each character taking at
    most 6 bytes (`\\uXXXX`). Anything else is measured by encoding it."""
    if isinstance(payload, str | bytes):
        return len(payload) * 6 <= max_bytes  # as measured below: at most 4 bytes a character
    if not isinstance(payload, dict):
        return False
    budget = 2  # the braces
    for key, value in payload.items():
        if not isinstance(key, str):
            return False
        if isinstance(value, str):
            budget += 6 * len(value) + 2
        elif value is None or isinstance(value, bool | float):
            budget += 32
        elif isinstance(value, int) and value.bit_length() <= 64:
            budget += 32  # at most 20 digits and a sign
        else:
            return False
        budget += 6 * len(key) + 4  # quotes, colon, comma
    return budget <= max_bytes


def _one_line(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False):
        loc = [str(p) for p in error["loc"]]
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            parts.append(f"type: {error['msg']}")
            continue
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]  # pydantic prefixes the union member; the field is what helps
        parts.append(f"{'.'.join(loc) or 'event'}: {error['msg']}")
    return "; ".join(parts)
