"""The two Redis streams convlife writes (names in events/names.py), both append-only."""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis

from events.names import DEAD_LETTERS_STREAM, DECISIONS_STREAM

__all__ = ["DEAD_LETTERS_STREAM", "DECISIONS_STREAM", "STREAM_MAXLEN", "append"]

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
