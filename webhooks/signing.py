"""The headers of a webhook delivery. The scheme itself (HMAC-SHA256 over "<timestamp>.<body>",
Stripe's and Chatwoot's) is events/signing.py, the same one the gateway verifies requests with;
this module adds the delivery id and a receiver's yes/no check."""

from __future__ import annotations

from events.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError
from events.signing import signature as sign
from events.signing import verify as _verify

DELIVERY_HEADER = "X-Convlife-Delivery"

__all__ = ["DELIVERY_HEADER", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "sign", "verify"]


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance: float = 300
) -> bool:
    """What a receiver does: the timestamp is recent (`now` in unix seconds) and the signature
    matches, compared in constant time."""
    try:
        _verify([secret], timestamp, signature, body, now, tolerance=tolerance)
    except SignatureError:
        return False
    return True
