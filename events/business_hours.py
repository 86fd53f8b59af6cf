"""Business hours as events carry them: a time zone, weekly opening ranges, and holidays.

    {"timezone": "America/Sao_Paulo",
     "weekly": {"mon": [["09:00", "18:00"]], "fri": [["09:00", "12:00"], ["13:00", "17:00"]],
                "sat": [["22:00", "06:00"]]},
     "holidays": ["2026-12-25"]}

- `timezone`: an IANA name (zoneinfo). Ranges are local wall-clock times in it, so a DST change
  moves them with the clock on the wall.
- `weekly`: per day (`mon` … `sun`), ranges `[start, end]` as `HH:MM`; `24:00` as an end means
  midnight at the end of the day. An end earlier than its start is an overnight range: it runs
  to that time on the next day. A day left out is closed all day; a week with no range means
  the hours never come, so nothing counted in business hours ever runs out.
- `holidays`: local dates closed all day, whatever the weekly ranges say (including the part
  of an overnight range begun the day before).

This module only parses and validates; policies/calendar.py counts time with it.
"""

from __future__ import annotations

import re
from datetime import date, time
from itertools import pairwise
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""In the order of `date.weekday()` (Monday is 0)."""

MAX_RANGES_PER_DAY = 12
MAX_HOLIDAYS = 1000

_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")


def _clock_time(value: object) -> str:
    if not isinstance(value, str) or not _CLOCK.fullmatch(value):
        raise ValueError("a time of day is HH:MM, from 00:00 to 23:59 (24:00 only as an end)")
    return value


ClockTime = Annotated[str, BeforeValidator(_clock_time)]


def minutes_of(clock: str) -> int:
    """Minutes since midnight of an `HH:MM` text (24:00 is 1440)."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _one_range(value: tuple[str, str]) -> tuple[str, str]:
    start, end = value
    if start == "24:00":
        raise ValueError("a range cannot start at 24:00; use 00:00 of the next day")
    if start == end:
        raise ValueError(f"the range [{start!r}, {end!r}] is empty; use 00:00-24:00 for all day")
    return value


OpeningRange = Annotated[tuple[ClockTime, ClockTime], AfterValidator(_one_range)]


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as UTC") from error
    return value


def _ranges_do_not_overlap(
    weekly: dict[Weekday, tuple[OpeningRange, ...]],
) -> dict[Weekday, tuple[OpeningRange, ...]]:
    for day, ranges in weekly.items():
        spans = sorted(
            (minutes_of(start), minutes_of(end) if minutes_of(end) > minutes_of(start) else 1440)
            for start, end in ranges
        )
        for (_, first_end), (second_start, _) in pairwise(spans):
            if second_start < first_end:
                raise ValueError(f"the ranges of {day} overlap")
    return weekly


class BusinessHours(BaseModel):
    """When time counts, for the settings that count business hours (see the module)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: Annotated[str, Field(max_length=64), AfterValidator(_known_zone)]
    weekly: Annotated[
        dict[Weekday, Annotated[tuple[OpeningRange, ...], Field(max_length=MAX_RANGES_PER_DAY)]],
        AfterValidator(_ranges_do_not_overlap),
    ]
    holidays: Annotated[tuple[date, ...], Field(max_length=MAX_HOLIDAYS)] = ()

    def __hash__(self) -> int:  # frozen, but `weekly` is a dict: hash its canonical JSON
        return hash(self.model_dump_json())

    @property
    def is_empty(self) -> bool:
        """True when no range is open on any day: business time never passes."""
        return not any(self.weekly.values())


def opening_times(business_hours: BusinessHours) -> dict[int, list[tuple[time, int]]]:
    """Per weekday number (Monday 0), each range as (start time, length in minutes)."""
    table: dict[int, list[tuple[time, int]]] = {}
    for number, day in enumerate(WEEKDAYS):
        spans = []
        for start, end in business_hours.weekly.get(day, ()):
            begin, finish = minutes_of(start), minutes_of(end)
            length = finish - begin if finish > begin else 1440 - begin + finish
            spans.append((time(begin // 60, begin % 60), length))
        table[number] = sorted(spans)
    return table
