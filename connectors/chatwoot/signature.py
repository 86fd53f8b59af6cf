"""Checking that a webhook comes from Chatwoot: its HMAC signature over the raw body.

Chatwoot (lib/webhooks/trigger.rb, newer versions) signs each delivery when the webhook has a
secret: `X-Chatwoot-Timestamp: <unix seconds>` and `X-Chatwoot-Signature: sha256=<hex
HMAC-SHA256(secret, "<timestamp>.<raw body>")>`. Pure: the gateway passes the raw bytes as
received (before any parsing), the two header values, the secrets and its clock's `now`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta

TOLERANCE = timedelta(minutes=5)
"""How far the timestamp may be from convlife's clock: older is a replay, newer a lie."""


class SignatureError(ValueError):
    """The webhook is not provably Chatwoot's (the gateway answers 401)."""


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The `X-Chatwoot-Signature` value Chatwoot sends for `body` at `timestamp`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify_signature(
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    secrets: Sequence[str],
    now: datetime,
    tolerance: timedelta = TOLERANCE,
    allow_unsigned: bool = False,
) -> None:
    """Raise SignatureError unless `body` is signed with one of `secrets` (several, so a secret
    rotates without downtime) at a timestamp within `tolerance` of `now` (aware UTC).

    `allow_unsigned`: accept a delivery with no signature at all, for Chatwoot versions that do
    not sign. Unsafe: anyone who reaches the URL can then close and assign conversations.
    """
    if signature is None and timestamp is None and allow_unsigned:
        return
    if not signature or not timestamp:
        raise SignatureError("unsigned: X-Chatwoot-Signature and X-Chatwoot-Timestamp are needed")
    if not secrets:
        raise SignatureError("no webhook secret is configured to check the signature with")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise SignatureError(f"X-Chatwoot-Timestamp {timestamp[:40]!r} is not unix seconds")
    signed_at = int(timestamp)
    now_seconds = now.timestamp()
    if abs(now_seconds - signed_at) > tolerance.total_seconds():
        raise SignatureError(
            f"X-Chatwoot-Timestamp is {now_seconds - signed_at:+.0f} s from convlife's clock "
            f"(at most {tolerance.total_seconds():.0f} s either way)"
        )
    if not any(hmac.compare_digest(signature, sign(body, s, signed_at)) for s in secrets):
        raise SignatureError("X-Chatwoot-Signature does not match the body and timestamp")
