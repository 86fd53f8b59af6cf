"""Reading the Redis streams back (what `convlife decisions` and `dead-letters follow` print)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from redis import Redis


def entry_id_of(redis: Redis, stream: str, start: str) -> str:
    """The entry id to read after: `start` (the oldest kept) is 0-0, `now` the newest entry's
    id (read now, so whatever is added from here on follows it), an entry id itself."""
    if start == "start":
        return "0-0"
    if start == "now":
        newest: Any = redis.xrevrange(stream, count=1)
        return str(newest[0][0]) if newest else "0-0"
    return start


def stream_entries(
    redis: Redis, stream: str, after: str, follow: bool, page: int = 1000
) -> Iterator[dict[str, str]]:
    """Each entry's fields, oldest first, after the entry id `after`; then, with `follow`,
    every new entry as it comes (blocking a second at a time, never returning). `redis`
    decodes responses."""
    last = after
    while True:
        entries: Any = redis.xread({stream: last}, count=page, block=1000 if follow else None)
        if not entries:
            if follow:
                continue
            return
        for _name, items in entries:
            for entry_id, fields in items:
                last = entry_id
                yield fields
