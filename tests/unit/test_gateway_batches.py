"""A POST /v1/events body, checked as the worker will check it (gateway/batches.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.batches import NotJSON, TooManyEvents, check, decode

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


def inbound(event_id: str, occurred_at: datetime = NOW) -> dict[str, object]:
    return {
        "event_id": event_id,
        "type": "contact.inbound",
        "account_id": "a",
        "occurred_at": occurred_at.isoformat(),
        "contact_id": "c",
        "line_id": "l",
    }


def test_one_object_is_a_batch_of_one_and_an_array_is_its_elements() -> None:
    assert decode(b'{"a": 1}') == [{"a": 1}]
    assert decode(b'[{"a": 1}, 2]') == [{"a": 1}, 2]
    assert decode(b"[]") == []


@pytest.mark.parametrize("body", [b"", b"{", b"\xff", b"[1,"])
def test_a_body_that_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(NotJSON):
        decode(body)


def test_more_events_than_allowed_are_refused() -> None:
    assert len(decode(b"[" + b",".join([b"{}"] * 1000) + b"]")) == 1000
    with pytest.raises(TooManyEvents, match="1001 events"):
        decode(b"[" + b",".join([b"{}"] * 1001) + b"]")


def test_each_refused_event_is_named_by_its_index_and_id() -> None:
    items = [
        inbound("ok"),
        {**inbound("no-line"), "line_id": None},
        42,
        inbound("late-is-fine", NOW - timedelta(days=400)),
        inbound("too-far-ahead", NOW + SKEW + timedelta(seconds=1)),
        inbound("just-within", NOW + SKEW),
    ]
    checked = check(items, NOW, max_event_bytes=64 * 1024, max_clock_skew=SKEW)
    assert checked.accepted == 3
    assert [(r.index, r.event_id) for r in checked.rejected] == [
        (1, "no-line"),
        (2, None),
        (4, "too-far-ahead"),
    ]
    assert checked.rejected[0].error.startswith("line_id:")
    assert checked.items == items  # everything still travels to the worker


def test_an_event_over_the_size_limit_is_refused() -> None:
    big = {**inbound("big"), "padding": "x" * 2048}
    checked = check([big], NOW, max_event_bytes=1024, max_clock_skew=SKEW)
    assert checked.accepted == 0
    assert "larger than 1024 bytes" in checked.rejected[0].error
