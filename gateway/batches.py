"""A `POST /v1/events` body, checked: which events the worker will apply and which it refuses.

Pure: no I/O, the clock is an argument. The verdict per event is the worker's own
(`events.parsing.parse_event`, the same size limit and the same clock-skew rule as
`service.ingest.validate`), so the response tells the client what will happen. Every item,
valid or not, still travels to the worker in the request's one message: the worker applies the
valid ones and dead-letters the others exactly as it does for any other way in, so a refused
event is in `convlife:dead-letters` and the `dead_letters` table whichever way it came.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from events.parsing import InvalidEvent, parse_event

MAX_BODY_BYTES = 1024 * 1024
MAX_EVENTS = 1000


class NotJSON(ValueError):
    """The body is not JSON (400)."""


class TooManyEvents(ValueError):
    """More events than one request may carry (413)."""


@dataclass(frozen=True)
class Rejected:
    index: int
    event_id: str | None
    error: str


@dataclass
class Checked:
    items: list[Any]
    """Every item of the body, in order, as decoded JSON: what the ingest message carries."""
    accepted: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def decode(body: bytes, *, max_events: int = MAX_EVENTS) -> list[Any]:
    """The items of a body: a JSON array's elements, or the one JSON value it holds."""
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise NotJSON(f"the body is not JSON: {error}") from None
    items = decoded if isinstance(decoded, list) else [decoded]
    if len(items) > max_events:
        raise TooManyEvents(f"{len(items)} events in one request; at most {max_events}")
    return items


def check(
    items: list[Any], now: datetime, *, max_event_bytes: int, max_clock_skew: timedelta
) -> Checked:
    """The worker's verdict on each item; `now` is the gateway's clock (aware UTC)."""
    checked = Checked(items)
    for index, item in enumerate(items):
        try:
            event = parse_event(item, max_bytes=max_event_bytes)
        except InvalidEvent as error:
            checked.rejected.append(Rejected(index, error.event_id, error.reason))
            continue
        if event.occurred_at > now + max_clock_skew:
            reason = (
                f"occurred_at {event.occurred_at.isoformat()} is more than "
                f"{max_clock_skew} ahead of convlife's clock"
            )
            checked.rejected.append(Rejected(index, event.event_id, reason))
            continue
        checked.accepted += 1
    return checked
