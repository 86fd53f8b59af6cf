"""What convlife accepts of the senders' clocks."""

from __future__ import annotations

from datetime import datetime, timedelta


def from_the_future(occurred_at: datetime, now: datetime, max_skew: timedelta) -> bool:
    """True when an event is dated more than `max_skew` after convlife's clock `now` (UTC):
    such an event would hold a conversation open, or route a contact, from a time not yet come.
    Exactly `max_skew` ahead is still accepted."""
    return occurred_at > now + max_skew
