"""Business hours: only time inside opening ranges counts, walked forward in the account's zone,
with overnight ranges, holidays and DST days counted as the wall clock and real time say."""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from itertools import accumulate
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.business_hours import WEEKDAYS, BusinessHours, opening_times
from events.models import LATEST
from policies.calendar import counted_between, deadline, is_open
from tests.support import utc

H = timedelta(hours=1)
MINUTE = timedelta(minutes=1)
µs = timedelta(microseconds=1)
OFFICE = dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), (("09:00", "18:00"),))


def hours(timezone: str = "UTC", holidays: tuple[str, ...] = (), **weekly: Any) -> BusinessHours:
    return BusinessHours.model_validate(
        {"timezone": timezone, "weekly": weekly, "holidays": holidays}
    )


# 2026-03-02 is a Monday.
MONDAY = utc("2026-03-02T00:00:00")


# Examples


def test_a_duration_that_completes_at_the_end_of_a_range_gives_that_end_not_the_next_opening() -> (
    None
):
    office = hours(**OFFICE)
    assert deadline(utc("2026-03-02T09:00:00"), 9 * H, office) == utc("2026-03-02T18:00:00")
    assert deadline(utc("2026-03-02T17:00:00"), H, office) == utc("2026-03-02T18:00:00")


def test_time_starts_counting_at_the_next_opening_when_the_start_is_closed() -> None:
    office = hours(**OFFICE)
    assert deadline(utc("2026-03-02T06:00:00"), 2 * H, office) == utc("2026-03-02T11:00:00")


def test_a_weekend_in_the_middle_does_not_count() -> None:
    office = hours(**OFFICE)
    friday_five = utc("2026-03-06T17:00:00")
    assert deadline(friday_five, 2 * H, office) == utc("2026-03-09T10:00:00")
    assert counted_between(friday_five, utc("2026-03-09T10:00:00"), office) == 2 * H


def test_an_overnight_range_runs_into_the_next_day() -> None:
    saturday_night = hours(sat=(("22:00", "06:00"),))
    saturday_nine_pm = utc("2026-03-07T21:00:00")
    assert deadline(saturday_nine_pm, 3 * H, saturday_night) == utc("2026-03-08T01:00:00")
    # 8 hours a week: the ninth hour is the first of the next Saturday night.
    assert deadline(saturday_nine_pm, 9 * H, saturday_night) == utc("2026-03-14T23:00:00")
    assert is_open(utc("2026-03-08T05:59:00"), saturday_night)
    assert not is_open(utc("2026-03-08T06:00:00"), saturday_night)


def test_a_range_ending_at_24_00_ends_at_midnight() -> None:
    evenings = hours(mon=(("20:00", "24:00"),))
    assert deadline(utc("2026-03-02T20:00:00"), 4 * H, evenings) == utc("2026-03-03T00:00:00")
    assert not is_open(utc("2026-03-03T00:00:00"), evenings)


def test_a_holiday_is_closed_all_day() -> None:
    office = hours(holidays=("2026-03-03",), **OFFICE)
    monday_five = utc("2026-03-02T17:00:00")
    assert deadline(monday_five, 2 * H, office) == utc("2026-03-04T10:00:00")
    assert not is_open(utc("2026-03-03T12:00:00"), office)


def test_a_holiday_cuts_the_part_of_an_overnight_range_begun_the_day_before() -> None:
    saturday_night = hours(sat=(("22:00", "06:00"),), holidays=("2026-03-08",))
    saturday_nine_pm = utc("2026-03-07T21:00:00")
    # Only Saturday 22:00-24:00 counts this week; the third hour is next Saturday 22:00-23:00.
    assert deadline(saturday_nine_pm, 3 * H, saturday_night) == utc("2026-03-14T23:00:00")
    assert not is_open(utc("2026-03-08T01:00:00"), saturday_night)


def test_a_holiday_on_the_eve_leaves_the_overnight_part_after_midnight_open() -> None:
    saturday_night = hours(sat=(("22:00", "06:00"),), holidays=("2026-03-07",))
    saturday_nine_pm = utc("2026-03-07T21:00:00")
    assert deadline(saturday_nine_pm, 3 * H, saturday_night) == utc("2026-03-08T03:00:00")


def test_an_overnight_range_overlapping_the_next_days_range_counts_the_overlap_once() -> None:
    overlapping = hours(mon=(("22:00", "06:00"),), tue=(("05:00", "07:00"),))
    week = counted_between(MONDAY, MONDAY + timedelta(days=7), overlapping)
    assert week == 9 * H


BERLIN_NIGHTS = hours("Europe/Berlin", sun=(("01:00", "04:00"),))


def test_berlin_spring_forward_night_counts_the_two_real_hours_of_01_00_to_04_00() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST. 01:00 CET is 00:00 UTC, 04:00 CEST is 02:00 UTC.
    opens = utc("2026-03-29T00:00:00")
    assert deadline(opens, 2 * H, BERLIN_NIGHTS) == utc("2026-03-29T02:00:00")
    assert counted_between(opens - H, opens + 5 * H, BERLIN_NIGHTS) == 2 * H
    # The third hour is the next Sunday's first: 01:00 CEST is 23:00 UTC on Saturday.
    assert deadline(opens, 3 * H, BERLIN_NIGHTS) == utc("2026-04-05T00:00:00")


def test_berlin_fall_back_night_counts_the_four_real_hours_of_01_00_to_04_00() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET. 01:00 CEST is 23:00 UTC the day before,
    # 04:00 CET is 03:00 UTC.
    opens = utc("2026-10-24T23:00:00")
    assert not is_open(opens - µs, BERLIN_NIGHTS)
    assert deadline(opens, 4 * H, BERLIN_NIGHTS) == utc("2026-10-25T03:00:00")
    assert is_open(utc("2026-10-25T02:59:00"), BERLIN_NIGHTS)
    assert not is_open(utc("2026-10-25T03:00:00"), BERLIN_NIGHTS)


def test_a_week_containing_a_dst_change_is_counted_range_by_range_not_as_an_ordinary_week() -> None:
    # Three counted hours in an ordinary week; the week of the change has two (spring) or four
    # (autumn), so a walk that skipped it as an ordinary week would be an hour off.
    friday_before_spring = utc("2026-03-27T12:00:00")
    assert deadline(friday_before_spring, 4 * H, BERLIN_NIGHTS) == utc("2026-04-05T01:00:00")
    friday_before_autumn = utc("2026-10-23T12:00:00")
    assert deadline(friday_before_autumn, 5 * H, BERLIN_NIGHTS) == utc("2026-11-01T01:00:00")


def test_an_ordinary_berlin_sunday_counts_three_hours() -> None:
    sunday = utc("2026-03-22T00:00:00")  # 01:00 CET
    assert counted_between(sunday - H, sunday + 5 * H, BERLIN_NIGHTS) == 3 * H


def test_a_range_starting_in_the_spring_gap_opens_when_the_clock_jumps() -> None:
    gap_start = hours("Europe/Berlin", sun=(("02:30", "05:00"),))
    jump = utc("2026-03-29T01:00:00")  # 02:00 CET, shown as 03:00 CEST
    assert not is_open(jump - µs, gap_start)
    assert is_open(jump, gap_start)
    assert deadline(jump - H, 2 * H, gap_start) == utc("2026-03-29T03:00:00")  # 05:00 CEST


def test_a_range_inside_the_spring_gap_is_empty_that_day() -> None:
    in_the_gap = hours("Europe/Berlin", sun=(("02:00", "02:30"),))
    sunday = utc("2026-03-29T00:00:00")
    assert counted_between(sunday, sunday + timedelta(days=1), in_the_gap) == timedelta(0)
    assert deadline(sunday, 30 * MINUTE, in_the_gap) == utc("2026-04-05T00:30:00")


def test_a_range_starting_in_the_autumn_fold_opens_at_the_first_occurrence() -> None:
    fold_start = hours("Europe/Berlin", sun=(("02:30", "05:00"),))
    first_two_thirty = utc("2026-10-25T00:30:00")  # 02:30 CEST
    assert not is_open(first_two_thirty - µs, fold_start)
    assert is_open(first_two_thirty, fold_start)
    # Until 05:00 CET (04:00 UTC): three and a half real hours.
    later = first_two_thirty + timedelta(days=1)
    assert counted_between(first_two_thirty, later, fold_start) == 3.5 * H


NEW_YORK_NIGHTS = hours("America/New_York", sun=(("01:00", "04:00"),))


def test_new_york_spring_forward_night_counts_two_hours() -> None:
    # 2026-03-08: 02:00 EST becomes 03:00 EDT. 01:00 EST is 06:00 UTC, 04:00 EDT is 08:00 UTC.
    opens = utc("2026-03-08T06:00:00")
    assert deadline(opens, 2 * H, NEW_YORK_NIGHTS) == utc("2026-03-08T08:00:00")
    assert counted_between(opens - H, opens + 5 * H, NEW_YORK_NIGHTS) == 2 * H


def test_new_york_fall_back_night_counts_four_hours() -> None:
    # 2026-11-01: 02:00 EDT becomes 01:00 EST. 01:00 EDT is 05:00 UTC, 04:00 EST is 09:00 UTC.
    opens = utc("2026-11-01T05:00:00")
    assert deadline(opens, 4 * H, NEW_YORK_NIGHTS) == utc("2026-11-01T09:00:00")
    assert counted_between(opens - H, opens + 6 * H, NEW_YORK_NIGHTS) == 4 * H


def test_an_office_in_sao_paulo_counts_its_local_hours() -> None:
    office = hours("America/Sao_Paulo", **OFFICE)  # UTC-3 since 2019
    assert deadline(utc("2026-03-02T11:00:00"), H, office) == utc("2026-03-02T13:00:00")
    # Close after 30 days of 9 hours a working day: 80 working days, 16 weeks.
    assert deadline(utc("2026-03-02T12:00:00"), timedelta(days=30), office) == utc(
        "2026-06-19T21:00:00"
    )


def test_a_week_with_no_range_never_reaches_a_deadline() -> None:
    assert deadline(MONDAY, H, hours()) is None
    assert deadline(MONDAY, H, hours(mon=(), tue=())) is None
    assert counted_between(MONDAY, MONDAY + timedelta(days=30), hours()) == timedelta(0)


def test_a_zero_duration_is_the_start_itself_even_in_closed_hours() -> None:
    saturday = utc("2026-03-07T12:00:00")
    assert deadline(saturday, timedelta(0), hours(**OFFICE)) == saturday
    assert deadline(saturday, timedelta(0), hours()) == saturday


def test_without_a_calendar_the_deadline_is_start_plus_duration() -> None:
    length = timedelta(days=3, seconds=7)
    assert deadline(MONDAY, length, None) == MONDAY + length


def test_without_a_calendar_a_deadline_at_or_past_the_latest_time_is_never() -> None:
    assert deadline(LATEST - H, H, None) is None
    assert deadline(LATEST - H, H - µs, None) == LATEST - µs
    assert deadline(datetime.max.replace(tzinfo=UTC), timedelta(days=1), None) is None


def test_with_a_calendar_a_deadline_past_the_latest_time_is_never() -> None:
    assert deadline(utc("8999-12-20T00:00:00"), timedelta(days=30), hours(**OFFICE)) is None


def test_a_start_in_another_zone_gives_the_same_utc_deadline() -> None:
    office = hours(**OFFICE)
    start = utc("2026-03-02T10:00:00")
    in_sao_paulo = start.astimezone(ZoneInfo("America/Sao_Paulo"))
    result = deadline(in_sao_paulo, 2 * H, office)
    assert result == deadline(start, 2 * H, office) == utc("2026-03-02T12:00:00")
    assert result is not None
    assert result.tzinfo is UTC


def test_ranges_are_open_at_their_start_and_closed_at_their_end() -> None:
    office = hours(**OFFICE)
    assert is_open(utc("2026-03-02T09:00:00"), office)
    assert not is_open(utc("2026-03-02T09:00:00") - µs, office)
    assert is_open(utc("2026-03-02T18:00:00") - µs, office)
    assert not is_open(utc("2026-03-02T18:00:00"), office)


def test_naive_times_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        deadline(datetime(2026, 3, 2), H, hours(**OFFICE))
    with pytest.raises(ValueError, match="negative"):
        deadline(MONDAY, -H, hours(**OFFICE))


# Properties, over random calendars (overnight ranges and holidays included) in zones with DST,
# starting near their DST changes.

DST_DAYS = {
    "Europe/Berlin": ("2026-03-29", "2026-10-25"),
    "America/New_York": ("2026-03-08", "2026-11-01"),
    # Brazil changed at midnight while it had DST: 00:00 did not exist, or happened twice.
    "America/Sao_Paulo": ("2018-11-04", "2019-02-17"),
    "Australia/Lord_Howe": ("2026-04-05", "2026-10-04"),  # half-hour DST
    "UTC": ("2026-03-01",),
}
GRID = list(range(0, 1440, 30))
# Wall times at or near the DST changes of the zones above (Sao Paulo's at midnight), drawn
# often so that ranges begin and end inside gaps and folds.
NEAR_CHANGES = [0, 60, 90, 120, 150, 180, 1410]
MARKS = st.one_of(st.sampled_from(NEAR_CHANGES), st.sampled_from(GRID))


def clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@st.composite
def day_ranges(draw: st.DrawFn) -> tuple[tuple[str, str], ...]:
    marks = sorted(draw(st.sets(MARKS, max_size=4)))
    pairs = [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)]
    ranges = [(clock(begin), clock(end)) for begin, end in pairs]
    if ranges and draw(st.booleans()):
        # The last range ends at midnight, or runs overnight into the next day.
        begin = pairs[-1][0]
        end = draw(st.sampled_from([m for m in GRID if m < begin] + [1440]))
        ranges[-1] = (clock(begin), clock(end))
    return tuple(ranges)


@st.composite
def calendars_and_starts(draw: st.DrawFn) -> tuple[BusinessHours, datetime]:
    zone = draw(st.sampled_from(sorted(DST_DAYS)))
    around = date.fromisoformat(draw(st.sampled_from(DST_DAYS[zone])))
    weekly = {day: draw(day_ranges()) for day in WEEKDAYS if draw(st.integers(0, 3))}
    holidays = draw(st.lists(st.integers(-3, 8), max_size=3).map(sorted))
    calendar = BusinessHours.model_validate(
        {
            "timezone": zone,
            "weekly": weekly,
            "holidays": [(around + timedelta(days=k)).isoformat() for k in set(holidays)],
        }
    )
    minute = draw(st.integers(-3 * 1440, 2 * 1440))
    start = datetime.combine(around, datetime.min.time(), UTC) + minute * MINUTE
    return calendar, start


PROPERTY = settings(max_examples=200, deadline=None)
# Ten days: a start before a DST change, a first day walked range by range, then a whole week
# that may be skipped (it must not be when the offset changes inside it), then more.
HORIZON = 10


@lru_cache(maxsize=64)
def walls(zone: str, first: datetime, count: int) -> tuple[list[datetime], list[datetime]]:
    """The wall clock at each minute from `first`, and its running maximum."""
    tz = ZoneInfo(zone)
    shown = [(first + k * MINUTE).astimezone(tz).replace(tzinfo=None) for k in range(count)]
    return shown, list(accumulate(shown, max))


class Reference:
    """Business hours by brute force, minute by minute, from the module's definitions only:
    ranges split at local midnight, holidays close their local date, and a range edge at wall
    time t is the first minute whose wall clock shows t or later."""

    def __init__(self, calendar: BusinessHours, start: datetime, days: int) -> None:
        # From a UTC midnight two days before, so that examples share the cached wall clocks.
        first = datetime.combine((start - timedelta(days=2)).date(), datetime.min.time(), UTC)
        self.start_index = (start - first) // MINUTE
        count = self.start_index + (days + 1) * 1440
        shown, running = walls(calendar.timezone, first, count)
        open_minutes = [False] * count

        def index(wall: datetime) -> int:
            return bisect_left(running, wall)

        table = opening_times(calendar)
        for day in (shown[0].date() + timedelta(days=k) for k in range(-1, days + 5)):
            for begin, length in table[day.weekday()]:
                opens = datetime.combine(day, begin)
                closes = opens + timedelta(minutes=length)
                midnight = datetime.combine(day + timedelta(days=1), datetime.min.time())
                parts = [(opens, min(closes, midnight), day)]
                if closes > midnight:
                    parts.append((midnight, closes, day + timedelta(days=1)))
                for low, high, on in parts:
                    if on in calendar.holidays:
                        continue
                    for k in range(index(low), min(index(high), count)):
                        open_minutes[k] = True
        self.open = open_minutes
        self.days = days

    def is_open(self, minute: int) -> bool:
        return self.open[self.start_index + minute]

    def counted(self, minutes: int) -> timedelta:
        begin = self.start_index
        return sum(self.open[begin : begin + minutes]) * MINUTE

    def deadline(self, minutes: int) -> timedelta | None:
        """Minutes after the start at which `minutes` of open time have passed; None if later
        than the horizon."""
        if minutes == 0:
            return timedelta(0)
        seen = 0
        for k in range(self.days * 1440):
            seen += self.open[self.start_index + k]
            if seen == minutes:
                return (k + 1) * MINUTE
        return None


@PROPERTY
@given(
    calendars_and_starts(),
    st.integers(0, 4 * 1440),
    st.integers(0, HORIZON * 1440),
    st.lists(st.integers(0, HORIZON * 1440 - 1), max_size=20),
)
def test_deadlines_counts_and_openness_agree_with_a_minute_by_minute_reference(
    case: tuple[BusinessHours, datetime], minutes: int, span: int, probes: list[int]
) -> None:
    calendar, start = case
    reference = Reference(calendar, start, days=HORIZON)
    expected = reference.deadline(minutes)
    result = deadline(start, minutes * MINUTE, calendar)
    if expected is not None:
        assert result == start + expected
    else:
        assert result is None or result > start + timedelta(days=HORIZON)
    assert counted_between(start, start + span * MINUTE, calendar) == reference.counted(span)
    for probe in probes:
        assert is_open(start + probe * MINUTE, calendar) == reference.is_open(probe)


@PROPERTY
@given(
    calendars_and_starts(),
    st.integers(0, 14 * 24 * 3600 * 10**6),
    st.integers(0, 30 * 24 * 3600 * 10**6),
    st.integers(1, 60 * 24 * 3600 * 10**6),
)
def test_a_later_start_never_gives_an_earlier_deadline(
    case: tuple[BusinessHours, datetime], shift: int, duration: int, other: int
) -> None:
    calendar, start = case
    later = start + timedelta(microseconds=shift)
    for length in (timedelta(microseconds=duration), timedelta(microseconds=other)):
        first, second = deadline(start, length, calendar), deadline(later, length, calendar)
        if first is None:
            assert second is None
        elif second is not None:
            assert first <= second


@PROPERTY
@given(calendars_and_starts(), st.integers(1, 60 * 24 * 3600 * 10**6), st.integers(0, 59))
def test_the_deadline_is_reached_inside_open_time_and_counts_exactly_the_duration(
    case: tuple[BusinessHours, datetime], duration: int, second: int
) -> None:
    calendar, start = case
    start += timedelta(seconds=second)
    length = timedelta(microseconds=duration)
    result = deadline(start, length, calendar)
    if result is None:
        assert calendar.is_empty
        return
    assert result > start
    assert is_open(result - µs, calendar)
    assert counted_between(start, result, calendar) == length
    assert counted_between(start, result - µs, calendar) == length - µs
