"""Counting time in business hours: deadlines that only run while an account is open.

The calendar is `events.business_hours.BusinessHours`: a zone, weekly local ranges, holidays.
Counted time is the real (UTC) time that passes inside opening ranges; nothing else counts.

How a week of ranges becomes instants:
- Each range belongs to the local date it starts on. An overnight range (end before start) is
  split at local midnight: the part before midnight belongs to its own date, the rest to the next
  date. A holiday closes everything on its local date, so it cuts the second half of an overnight
  range begun the day before, and leaves the first half of one begun on the eve alone.
- Ranges that touch or overlap once placed on a date count once (their union).
- A range edge at local wall time `t` is the first instant at which the wall clock in the zone
  shows `t` or later. So, on DST days:
  * autumn fold (a wall time happens twice): the first occurrence. A range 01:00-04:00 on the
    night Europe/Berlin goes back counts 4 real hours;
  * spring gap (a wall time never shows): the instant the clock jumps. A range 02:30-05:00 on
    the night Berlin goes forward opens at 03:00 CEST; 01:00-04:00 counts 2 real hours; a range
    lying wholly inside the gap is empty that day.
  This map from wall time to instant never goes backwards, so ranges keep their order and never
  get a negative length.
- Ranges are half-open: open at the start instant, closed at the end instant.

`deadline` walks forward from the start, range by range. It is written to run for every open
conversation when settings change, so it never steps by the minute: a day costs one pass over
its ranges, and a whole week without a holiday and with one UTC offset throughout costs one
subtraction of the week's precomputed total.

Pure: no clock is read; all instants are aware datetimes, results are UTC.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from events.business_hours import BusinessHours, opening_times
from events.models import LATEST

_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_ZERO = timedelta(0)
# Walking stops here: any deadline after LATEST is "never" anyway, and date arithmetic must stay
# clear of date.max.
_LAST_DATE = LATEST.date() + _DAY

Span = tuple[datetime, datetime]
_SPANS_KEPT = 4096  # dates memoised per calendar


@dataclass(frozen=True)
class _Plan:
    """A calendar prepared for walking: local pieces per weekday, holidays, a week's total."""

    zone: ZoneInfo
    pieces: tuple[tuple[tuple[int, int], ...], ...]  # per weekday: (start, end) minutes, [0, 1440]
    holidays: tuple[date, ...]  # sorted
    holiday_set: frozenset[date]
    week_total: timedelta  # counted time in a week with one UTC offset and no holiday
    spans: dict[date, tuple[Span, ...]] = field(default_factory=dict, compare=False, hash=False)


@lru_cache(maxsize=256)
def _plan(calendar: BusinessHours) -> _Plan:
    # Cached because the same few calendars are asked about for many conversations in a row.
    per_day: list[list[tuple[int, int]]] = [[] for _ in range(7)]
    for weekday, spans in opening_times(calendar).items():
        for start, length in spans:
            begin = start.hour * 60 + start.minute
            end = begin + length
            per_day[weekday].append((begin, min(end, 1440)))
            if end > 1440:  # overnight: the rest belongs to the next date (holidays cut there)
                per_day[(weekday + 1) % 7].append((0, end - 1440))
    pieces = tuple(tuple(_union(day)) for day in per_day)
    total = sum(end - begin for day in pieces for begin, end in day)
    holidays = tuple(sorted(set(calendar.holidays)))
    return _Plan(
        zone=ZoneInfo(calendar.timezone),
        pieces=pieces,
        holidays=holidays,
        holiday_set=frozenset(holidays),
        week_total=timedelta(minutes=total),
    )


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    # An overnight spill may overlap or touch the next day's own ranges; validation only looks
    # within one day. Counting the union keeps "open" a plain yes/no.
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((begin, end))
    return merged


# The zone facts below are cached per (zone, date): a settings change re-plans many
# conversations whose deadlines fall on the same few hundred dates, and these lookups are most
# of the cost of a walk. Bounded, and pure (memoised functions of their arguments).
@lru_cache(maxsize=1 << 16)
def _offset_at_midnight(zone: ZoneInfo, day: date) -> timedelta | None:
    return datetime(day.year, day.month, day.day, tzinfo=zone).utcoffset()


def _midnight_offset(plan: _Plan, day: date) -> timedelta | None:
    return _offset_at_midnight(plan.zone, day)


@lru_cache(maxsize=1 << 16)
def _one_offset_week(zone: ZoneInfo, first: date) -> bool:
    # All eight midnights, not only both ends: memoised it costs nothing more, and a change
    # undone within the same week (short DST pauses exist in tzdata's history) cannot hide.
    offset = _offset_at_midnight(zone, first)
    return all(_offset_at_midnight(zone, first + k * _DAY) == offset for k in range(1, 8))


def _instant(plan: _Plan, wall: datetime) -> datetime:
    return _instant_in(plan.zone, wall)


def _instant_in(zone: ZoneInfo, wall: datetime) -> datetime:
    """The first instant at which the wall clock shows `wall` or later (see the module)."""
    aware = wall.replace(tzinfo=zone)  # fold=0: the first occurrence of a repeated time
    instant = aware.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # `wall` lies in a spring gap. fold=0 read it with the offset before the jump, which lands
    # after the jump; fold=1 reads it with the offset after, which lands before. The jump is in
    # between: find where the offset changes (bisection to the second; gap days are rare).
    before = aware.replace(fold=1).astimezone(UTC)
    after = instant
    offset_after = after.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) // 2
        middle = middle.replace(microsecond=0)
        if middle.astimezone(zone).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return after


def _midnight(plan: _Plan, day: date) -> datetime:
    return _zone_midnight(plan.zone, day)


@lru_cache(maxsize=1 << 16)
def _zone_midnight(zone: ZoneInfo, day: date) -> datetime:
    return _instant_in(zone, datetime(day.year, day.month, day.day))


def _spans(plan: _Plan, day: date) -> tuple[Span, ...]:
    """The open spans (UTC, half-open, in order) of one local date."""
    # Memoised on the plan (one per calendar, itself cached): the first days of a walk are the
    # same few dates for every conversation re-planned after a settings change.
    spans = plan.spans.get(day)
    if spans is None:
        if len(plan.spans) >= _SPANS_KEPT:
            plan.spans.clear()
        spans = plan.spans[day] = tuple(_place(plan, day))
    return spans


def _place(plan: _Plan, day: date) -> list[Span]:
    if day in plan.holiday_set:
        return []
    pieces = plan.pieces[day.weekday()]
    if not pieces:
        return []
    offset = _midnight_offset(plan, day)
    if offset is not None and offset == _midnight_offset(plan, day + _DAY):
        # One offset all day (no zone changes offset and back within a day): plain arithmetic.
        base = datetime(day.year, day.month, day.day, tzinfo=UTC) - offset
        return [
            (base + timedelta(minutes=begin), base + timedelta(minutes=end))
            for begin, end in pieces
        ]
    wall = datetime(day.year, day.month, day.day)
    spans = []
    for begin, end in pieces:
        opens = _instant(plan, wall + timedelta(minutes=begin))
        closes = _instant(plan, wall + timedelta(minutes=end))
        if closes > opens:  # a range inside a spring gap is empty that day
            spans.append((opens, closes))
    return spans


def _plain_week(plan: _Plan, first: date) -> bool:
    """True when the week from `first` counts exactly `week_total`: no holiday, one offset."""
    index = bisect_left(plan.holidays, first)
    if index < len(plan.holidays) and plan.holidays[index] < first + _WEEK:
        return False
    return _one_offset_week(plan.zone, first)


def _local_date(plan: _Plan, instant: datetime) -> date:
    return instant.astimezone(plan.zone).date()


def _utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is UTC:  # every stored time already is: the sweep's hot path
        return instant
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return instant.astimezone(UTC)


def _before_latest(instant: datetime) -> datetime | None:
    return instant if instant < LATEST else None


def deadline(
    start: datetime, duration: timedelta, calendar: BusinessHours | None
) -> datetime | None:
    """The instant (UTC) at which `duration` of counted time has passed since `start`.

    Without a calendar all time counts: `start + duration`. With one, only time inside opening
    ranges counts (see the module). A zero duration gives `start` itself, even when closed; a
    duration that completes exactly at the end of a range gives that end. None means never: an
    empty week, or a result at or after LATEST (9000-01-01 UTC). `duration` must not be negative.
    """
    start = _utc(start, "start")
    if duration < _ZERO:
        raise ValueError("a duration to count must not be negative")
    if calendar is None:
        try:
            return _before_latest(start + duration)
        except OverflowError:
            return None
    if duration == _ZERO:
        return _before_latest(start)
    if calendar.is_empty:
        return None
    plan = _plan(calendar)
    remaining = duration
    cursor = start
    # From the day before: a range begun on the eve may still be open at `start`.
    day = _local_date(plan, start) - _DAY
    while day < _LAST_DATE:
        # Strictly more than a week's worth: a deadline at the very end of this week's last
        # range must come out of the range walk below, as that range's end.
        if remaining > plan.week_total > _ZERO:
            week_starts = _midnight(plan, day)
            if cursor <= week_starts and _plain_week(plan, day):
                remaining -= plan.week_total
                day += _WEEK
                cursor = week_starts + _WEEK  # one offset all week: seven days of real time
                continue
        for opens, closes in _spans(plan, day):
            opens = max(opens, cursor)
            if closes <= opens:
                continue
            if remaining <= closes - opens:
                return _before_latest(opens + remaining)
            remaining -= closes - opens
            cursor = closes
        day += _DAY
    return None


def is_open(instant: datetime, calendar: BusinessHours) -> bool:
    """True when `instant` (aware) lies inside an opening range; ranges are [start, end)."""
    instant = _utc(instant, "instant")
    plan = _plan(calendar)
    day = _local_date(plan, instant)
    # Neighbouring dates too: the eve's spans end at most at this midnight, but a fold or gap
    # near midnight can shift an edge across the date line.
    for near in (day - _DAY, day, day + _DAY):
        for opens, closes in _spans(plan, near):
            if opens <= instant < closes:
                return True
    return False


def counted_between(start: datetime, end: datetime, calendar: BusinessHours) -> timedelta:
    """The counted time inside [start, end) (aware instants); zero when end <= start."""
    start, end = _utc(start, "start"), _utc(end, "end")
    if end <= start or calendar.is_empty:
        return _ZERO
    plan = _plan(calendar)
    total = _ZERO
    cursor = start
    day = _local_date(plan, start) - _DAY
    last = min(_local_date(plan, end), _LAST_DATE) + _DAY
    while day <= last:
        week_starts = _midnight(plan, day)
        if (
            day + _WEEK <= last
            and cursor <= week_starts
            and week_starts + _WEEK <= end
            and _plain_week(plan, day)
        ):
            total += plan.week_total
            day += _WEEK
            cursor = week_starts + _WEEK
            continue
        for opens, closes in _spans(plan, day):
            opens, closes = max(opens, cursor), min(closes, end)
            if closes > opens:
                total += closes - opens
                cursor = closes
        day += _DAY
    return total
