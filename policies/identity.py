"""Stable decision ids: the same decision, computed twice, gets the same id."""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.UUID("8f1f7f0e-6f1c-4b8a-9a53-6c6f6e766c69")
_NAMESPACE_BYTES = _NAMESPACE.bytes


def decision_id(*parts: str) -> str:
    """A UUID (version 5) derived from the parts that make a decision unique.

    `str(uuid.uuid5(_NAMESPACE, "\\x1f".join(parts)))`, written out: every decision needs one,
    and building a `uuid.UUID` cost more than the hash (tests/unit/test_identity.py holds the
    two equal).
    """
    digest = bytearray(
        hashlib.sha1(
            _NAMESPACE_BYTES + "\x1f".join(parts).encode(), usedforsecurity=False
        ).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
