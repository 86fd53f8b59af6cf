"""The HMAC scheme (events/signing.py): what is accepted and what is refused, and why."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from events.signing import SignatureError, signature, signed_headers, verify

NOW = 1_764_000_000
BODY = b'{"event_id":"e1"}'


def test_the_signature_is_hmac_sha256_of_timestamp_dot_raw_body_in_hex() -> None:
    expected = hmac.new(b"s3cret", b"1764000000." + BODY, hashlib.sha256).hexdigest()
    assert signature("s3cret", NOW, BODY) == f"sha256={expected}"
    assert signed_headers("s3cret", NOW, BODY) == {
        "X-Convlife-Timestamp": "1764000000",
        "X-Convlife-Signature": f"sha256={expected}",
    }


def test_a_body_signed_with_any_of_the_secrets_is_accepted() -> None:
    for secret in ("old", "new"):
        verify(["old", "new"], str(NOW), signature(secret, NOW, BODY), BODY, NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_a_timestamp_up_to_300_seconds_off_either_way_is_accepted(offset: int) -> None:
    verify(["k"], str(NOW + offset), signature("k", NOW + offset, BODY), BODY, NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_a_timestamp_more_than_300_seconds_off_is_refused(offset: int) -> None:
    with pytest.raises(SignatureError, match="300 s off"):
        verify(["k"], str(NOW + offset), signature("k", NOW + offset, BODY), BODY, NOW)


@pytest.mark.parametrize(
    ("timestamp", "offered", "reason"),
    [
        (None, "sha256=00", "missing X-Convlife-Timestamp"),
        (str(NOW), None, "missing X-Convlife-Signature"),
        (str(NOW), "", "missing X-Convlife-Signature"),
        ("12.5", "sha256=00", "not unix seconds"),
        ("-5", "sha256=00", "not unix seconds"),
        ("9" * 40, "sha256=00", "not unix seconds"),
        (str(NOW), "sha256=00", "does not match"),
        (str(NOW), signature("k", NOW, BODY).removeprefix("sha256="), "does not match"),
    ],
)
def test_a_missing_or_malformed_header_is_refused_with_its_reason(
    timestamp: str | None, offered: str | None, reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(["k"], timestamp, offered, BODY, NOW)


def test_a_body_changed_by_one_byte_is_refused() -> None:
    offered = signature("k", NOW, BODY)
    with pytest.raises(SignatureError, match="does not match"):
        verify(["k"], str(NOW), offered, BODY + b" ", NOW)


def test_a_signature_for_another_timestamp_is_refused() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify(["k"], str(NOW), signature("k", NOW - 1, BODY), BODY, NOW)


def test_no_secret_configured_accepts_nothing() -> None:
    with pytest.raises(SignatureError):
        verify([], str(NOW), signature("k", NOW, BODY), BODY, NOW)


def test_a_header_carrying_several_signatures_is_accepted_if_one_matches() -> None:
    offered = f"sha256=00, {signature('k', NOW, BODY)}"
    verify(["k"], str(NOW), offered, BODY, NOW)
