"""HMAC signatures of HTTP bodies, both ways: requests the gateway receives, webhooks it sends.

The scheme is Stripe's and Chatwoot's: the sender puts the unix time in `X-Convlife-Timestamp`
and `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>` in `X-Convlife-Signature`. The
timestamp is inside the signed text, so a captured request cannot be replayed later than the
tolerance; several secrets are accepted at once, so a key rotates without downtime (add the new
one, move the senders, remove the old one).

Pure: no I/O, time is an argument.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

TIMESTAMP_HEADER = "X-Convlife-Timestamp"
SIGNATURE_HEADER = "X-Convlife-Signature"
SCHEME = "sha256"
TOLERANCE_SECONDS = 300
"""A timestamp further than this from the receiver's clock (either way) is refused."""


class SignatureError(ValueError):
    """Why a request's signature is refused (missing, malformed, stale, or no secret matches)."""


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    """The `X-Convlife-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    signed = f"{timestamp}.".encode("ascii") + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Both headers for a request (or a webhook delivery) of `body` at `timestamp`."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(
    secrets: Sequence[str],
    timestamp: str | None,
    signature_value: str | None,
    body: bytes,
    now: float,
    *,
    tolerance: float = TOLERANCE_SECONDS,
) -> None:
    """Accept `body` (the raw bytes, before any parsing) or raise SignatureError.

    `now` is the receiver's clock (unix seconds). Every secret is compared in constant time,
    even after one matched, so the timing says nothing about which key is in use.
    """
    if not timestamp:
        raise SignatureError(f"missing {TIMESTAMP_HEADER}")
    if not signature_value:
        raise SignatureError(f"missing {SIGNATURE_HEADER}")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureError(f"{TIMESTAMP_HEADER} is not unix seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than {tolerance:.0f} s off")
    matched = False
    for secret in secrets:
        expected = signature(secret, timestamp, body)
        # One header may carry several signatures (comma-separated) while a sender rotates.
        for offered in signature_value.split(","):
            matched |= hmac.compare_digest(expected.encode(), offered.strip().encode())
    if not matched:
        raise SignatureError("signature does not match")
