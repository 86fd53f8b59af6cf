"""Stable decision ids: the same decision, computed twice, gets the same id."""

from __future__ import annotations

import uuid
from hashlib import sha1

_NAMESPACE = uuid.UUID("8f1f7f0e-6f1c-4b8a-9a53-6c6f6e766c69")
_PREFIX = _NAMESPACE.bytes


def decision_id(*parts: str) -> str:
    """A UUID (version 5) derived from the parts that make a decision unique.

    `str(uuid.uuid5(namespace, "\\x1f".join(parts)))`, computed without building a `uuid.UUID`
    (whose constructor cost more than the hash): SHA-1 of namespace + name, the version and
    variant bits set, printed 8-4-4-4-12 (tests/unit/test_identity.py holds it to uuid5)."""
    digest = bytearray(sha1(_PREFIX + "\x1f".join(parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    text = digest.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
