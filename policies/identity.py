"""Stable decision ids: the same decision, computed twice, gets the same id; ids of decisions
made in time order sort in that order."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

_NAMESPACE = uuid.UUID("8f1f7f0e-6f1c-4b8a-9a53-6c6f6e766c69")
_NAMESPACE_BYTES = _NAMESPACE.bytes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MOST_MS = (1 << 48) - 1
"""The largest time the id's 48 bits hold (in the year 10889: every time convlife accepts)."""


def decision_id(at: datetime, *parts: str) -> str:
    """A UUID (version 8, RFC 9562, in version 7's layout) of a decision: its first 48 bits are
    `at` in Unix milliseconds, the time the decision is about (one of its inputs, never the
    clock: the inbound event's `occurred_at`, the conversation's last activity); the other 74
    are of the SHA-1 of the parts that make the decision unique (hashed as version 5 hashes).

    Why the time first: `decisions.decision_id` is the primary key, and a random id (version 5,
    until session 19) put each insert at a random place of its index, so every batch dirtied
    about one index page per decision, which both stores then wrote out: storing 500 routed
    decisions among 150,000 took 35-38 µs a decision on SQLite against 16 with ids in time
    order, 31-39 on PostgreSQL against 28-34 (`python -m bench.decision_ids`, two runs).
    Decisions come roughly in the order of their times (routes as events arrive, closes as
    deadlines fall), so their ids now land at the end of the index, on the same few pages.

    `at` must be aware; a time before 1970 counts as 1970 (the bits hold no sign).
    """
    delta = at - _EPOCH
    ms = min(
        max(delta.days * 86_400_000 + delta.seconds * 1_000 + delta.microseconds // 1_000, 0),
        _MOST_MS,
    )
    digest = bytearray(
        hashlib.sha1(
            _NAMESPACE_BYTES + "\x1f".join(parts).encode(), usedforsecurity=False
        ).digest()[:10]
    )
    digest[0] = (digest[0] & 0x0F) | 0x80  # version 8
    digest[2] = (digest[2] & 0x3F) | 0x80  # the RFC 4122 variant
    h = ms.to_bytes(6, "big").hex() + digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
