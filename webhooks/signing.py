"""The signature of a webhook: `sha256=<hex of HMAC-SHA256(secret, "<timestamp>.<body>")>`.

The same scheme Stripe and Chatwoot use: the timestamp is signed with the raw body, so a
receiver that refuses stale timestamps also refuses a replayed request.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Convlife-Signature"
TIMESTAMP_HEADER = "X-Convlife-Timestamp"
DELIVERY_HEADER = "X-Convlife-Delivery"
PREFIX = "sha256="


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `X-Convlife-Signature` value for `body` sent at `timestamp` (unix seconds)."""
    message = str(timestamp).encode("ascii") + b"." + body
    return PREFIX + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance: float = 300
) -> bool:
    """What a receiver does: the timestamp is recent (`now` in unix seconds) and the signature
    matches, compared in constant time."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature)
