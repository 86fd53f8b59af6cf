"""The two Redis streams convlife writes (names in events/names.py), both append-only."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis import Redis
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

from events.names import DEAD_LETTERS_STREAM, DECISIONS_STREAM

__all__ = ["DEAD_LETTERS_STREAM", "DECISIONS_STREAM", "STREAM_MAXLEN", "append", "append_data"]

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


# One XADD per value, as `append` sends them, but in one command: redis-py packs a command per
# entry in Python (about 15 µs of CPU each), the script's arguments are packed in one go (under
# 2 µs each). The entries are the same: field `data`, trimmed the same way.
_APPEND_DATA = f"""
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', {STREAM_MAXLEN}, '*', 'data', ARGV[i])
end
return #ARGV
"""
_APPEND_DATA_SHA = hashlib.sha1(_APPEND_DATA.encode()).hexdigest()


def append_data(redis: Redis, stream: str, values: Sequence[str]) -> None:
    """Append one entry `{"data": value}` per value, in order, in one round trip."""
    if not values:
        return
    try:
        try:
            redis.evalsha(_APPEND_DATA_SHA, 1, stream, *values)
        except NoScriptError:
            # Loaded once per Redis (again after a restart or SCRIPT FLUSH), then by its sha.
            redis.eval(_APPEND_DATA, 1, stream, *values)
    except NoPermissionError:
        # A Redis whose ACL denies scripting: the same entries, one XADD each.
        append(redis, stream, [{"data": value} for value in values])
    except ResponseError as error:
        if "unknown command" not in str(error).lower():
            raise
        append(redis, stream, [{"data": value} for value in values])  # EVAL renamed away
