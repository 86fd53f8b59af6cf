"""The webhook signature (HMAC-SHA256 over "<timestamp>.<body>", as documented) and what a
subscription may be."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from webhooks.manage import InvalidSubscription, parse_types, validate_url
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


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/hook", "scheme: ftp"),
        ("javascript:alert(1)", "scheme: javascript"),
        ("example.com/hook", "scheme: none"),
        ("http:///nohost", "no host"),
        ("http://[::1/hook", "cannot be parsed"),
        ("http://127.0.0.1:99999/hook", "cannot be parsed"),
    ],
)
def test_a_webhook_url_must_be_http_or_https_with_a_host(url: str, says: str) -> None:
    with pytest.raises(InvalidSubscription, match=says):
        validate_url(url)


def test_types_are_checked_and_a_short_secret_is_refused() -> None:
    assert parse_types("contact.routed, conversation.auto_closed,contact.routed") == (
        "contact.routed",
        "conversation.auto_closed",
    )
    assert parse_types("conversation.close_warning") == ("conversation.close_warning",)
    assert parse_types("") is None
    with pytest.raises(InvalidSubscription, match=r"unknown decision type conversation\.opened"):
        parse_types("conversation.opened")
