"""The Redis keys convlife owns: two streams, both append-only."""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis

DECISIONS_STREAM = "convlife:decisions"
"""Every decision; field `data` holds its JSON."""

DEAD_LETTERS_STREAM = "convlife:dead-letters"
"""Every refused event; fields `raw` (the payload as received), `error`, `received_at`."""

STREAM_MAXLEN = 1_000_000
"""Streams are trimmed (approximately) to this many entries; the database keeps everything."""


def append(redis: Redis, stream: str, entries: Sequence[dict[str, str]]) -> None:
    """Append entries to a stream in one round trip."""
    if not entries:
        return
    pipeline = redis.pipeline(transaction=False)
    for entry in entries:
        pipeline.xadd(stream, entry, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
    pipeline.execute()
