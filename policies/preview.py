"""What a settings change would close, and when: the pure half of `convlife settings preview`.

A conversation's deadline only grows with its last activity (policies.calendar.deadline is
monotonic), so "closes by time T" is "last activity at or before a cutoff", one cutoff per
horizon. The store then counts open conversations below each cutoff from an index, which answers
for a million conversations as fast as for ten, with business hours too: the cutoff is found by
searching the calendar once, not by computing a deadline per conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from events.business_hours import BusinessHours
from events.models import EARLIEST
from policies.calendar import deadline
from policies.state import AccountSettings

HORIZONS: tuple[tuple[str, timedelta], ...] = (
    ("at_once", timedelta(0)),
    ("within_1h", timedelta(hours=1)),
    ("within_24h", timedelta(hours=24)),
    ("within_7d", timedelta(days=7)),
)
"""The horizons a preview counts, each from now: closed at once, then within 1 h, 24 h, 7 days."""

_RESOLUTION = timedelta(microseconds=1)


@dataclass(frozen=True)
class Horizon:
    name: str
    closes_by: datetime
    """The end of the horizon (UTC)."""
    last_activity_cutoff: datetime | None
    """Open conversations whose last activity is at or before this close by `closes_by`;
    None: none does (the setting is Never, or business hours never come)."""


def horizons(settings: AccountSettings, now: datetime) -> list[Horizon]:
    """The cutoff of each horizon under `settings` (the settings the change would leave)."""
    return [
        Horizon(
            name,
            now + ahead,
            last_activity_closing_by(
                now + ahead, settings.inactivity_close_after, settings.business_hours
            ),
        )
        for name, ahead in HORIZONS
    ]


def last_activity_closing_by(
    by: datetime, close_after: timedelta | None, calendar: BusinessHours | None
) -> datetime | None:
    """The latest last activity whose close deadline is at or before `by`; None if none is."""
    if close_after is None:
        return None
    if calendar is None:
        try:
            return by - close_after
        except OverflowError:
            return None
    return _latest(lambda start: _closes_by(start, close_after, calendar, by), by)


def _closes_by(
    start: datetime, close_after: timedelta, calendar: BusinessHours, by: datetime
) -> bool:
    due = deadline(start, close_after, calendar)
    return due is not None and due <= by


def _latest(holds: Callable[[datetime], bool], upper: datetime) -> datetime | None:
    """The latest instant at or before `upper` where the monotonic predicate `holds` (true
    up to some instant, false after it), to the microsecond; None if it holds nowhere after
    EARLIEST."""
    if holds(upper):
        return upper
    # Gallop back until it holds, then bisect between the last miss and the first hit.
    step = timedelta(hours=1)
    miss = upper
    hit = upper - step
    while not holds(hit):
        miss = hit
        step *= 2
        hit = upper - step
        if hit < EARLIEST:
            return None if not holds(EARLIEST) else _bisect(holds, EARLIEST, miss)
    return _bisect(holds, hit, miss)


def _bisect(holds: Callable[[datetime], bool], hit: datetime, miss: datetime) -> datetime:
    while miss - hit > _RESOLUTION:
        middle = hit + (miss - hit) // 2
        if holds(middle):
            hit = middle
        else:
            miss = middle
    return hit
