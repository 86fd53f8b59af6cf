"""A webhook counts as Chatwoot's only with a fresh signature over its raw body."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from connectors.chatwoot.signature import SignatureError, sign, verify_signature
from tests.connectors.chatwoot.support import FIXTURES

NOW = datetime(2026, 3, 1, 10, 0, 5, tzinfo=UTC)
SENT = int(datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC).timestamp())
BODY = (FIXTURES / "message_created_incoming.json").read_bytes()
SECRET = "whsec-4c1f0a"


def check(
    body: bytes = BODY,
    signature: str | None = None,
    timestamp: str | None = str(SENT),
    secrets: tuple[str, ...] = (SECRET,),
    now: datetime = NOW,
    **kwargs: bool,
) -> None:
    if signature is None and timestamp is not None:
        signature = sign(BODY, SECRET, int(timestamp))
    verify_signature(
        body, signature=signature, timestamp=timestamp, secrets=secrets, now=now, **kwargs
    )


def test_the_signature_is_chatwoots_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{SENT}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(BODY, SECRET, SENT) == f"sha256={expected}"


def test_a_fresh_signed_delivery_passes() -> None:
    check()


def test_any_of_several_secrets_passes_so_a_secret_rotates_without_downtime() -> None:
    check(secrets=("whsec-new", SECRET))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"body": BODY + b" "}, "does not match"),
        ({"secrets": ("another",)}, "does not match"),
        ({"secrets": ()}, "no webhook secret"),
        ({"signature": "sha256=" + "0" * 64}, "does not match"),
        ({"signature": sign(BODY, SECRET, SENT).removeprefix("sha256=")}, "does not match"),
        ({"now": NOW + timedelta(minutes=5, seconds=6)}, "from convlife's clock"),
        ({"now": NOW - timedelta(minutes=5, seconds=6)}, "from convlife's clock"),
        ({"timestamp": "2026-03-01T10:00:00Z", "signature": "sha256=00"}, "not unix seconds"),
        ({"timestamp": None, "signature": None}, "unsigned"),
        ({"timestamp": None, "signature": "sha256=00"}, "unsigned"),
    ],
    ids=[
        "body-changed",
        "wrong-secret",
        "no-secret-configured",
        "forged",
        "without-prefix",
        "stale",
        "from-the-future",
        "timestamp-not-seconds",
        "unsigned",
        "timestamp-missing",
    ],
)
def test_anything_else_is_refused_with_the_reason(kwargs: dict, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        check(**kwargs)


def test_a_signature_over_the_body_alone_is_refused() -> None:
    """The timestamp is inside the signature, so it cannot be replaced to replay a delivery."""
    body_only = "sha256=" + hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureError):
        check(signature=body_only)


def test_unsigned_deliveries_pass_only_when_explicitly_allowed() -> None:
    check(timestamp=None, signature=None, allow_unsigned=True)
    with pytest.raises(SignatureError, match="does not match"):  # a bad signature is still bad
        check(signature="sha256=00", allow_unsigned=True)
