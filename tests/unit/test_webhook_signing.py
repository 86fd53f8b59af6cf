"""The webhook signature: HMAC-SHA256 over "<timestamp>.<body>", as documented."""

from __future__ import annotations

import hashlib
import hmac

from webhooks.signing import sign, verify

SECRET = "whsec-0123456789abcdef"
BODY = b'{"type":"contact.routed","decision_id":"d1"}'


def test_the_signature_is_the_hmac_of_timestamp_dot_body_with_the_secret() -> None:
    expected = hmac.new(SECRET.encode(), b"1767261600." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1767261600, BODY) == f"sha256={expected}"


def test_a_receiver_verifies_a_fresh_signature_and_refuses_a_tampered_stale_or_foreign_one() -> (
    None
):
    signature = sign(SECRET, 1000, BODY)
    assert verify(SECRET, "1000", BODY, signature, now=1010)
    assert not verify(SECRET, "1000", BODY + b" ", signature, now=1010)
    assert not verify(SECRET, "1001", BODY, signature, now=1010)
    assert not verify("another-secret-value", "1000", BODY, signature, now=1010)
    assert not verify(SECRET, "1000", BODY, signature, now=1000 + 301)
    assert not verify(SECRET, "not-a-number", BODY, signature, now=1010)
