"""The cutoffs of a preview: the latest last activity that closes by each horizon."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from events.business_hours import BusinessHours
from policies.calendar import deadline
from policies.preview import horizons, last_activity_closing_by
from policies.state import AccountSettings
from tests.support import utc

NOW = utc("2026-03-04T15:30:00")  # a Wednesday
µs = timedelta(microseconds=1)
OFFICE = BusinessHours.model_validate(
    {
        "timezone": "Europe/Berlin",
        "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-03-06"],
    }
)


def test_without_business_hours_the_cutoff_is_the_horizon_minus_the_setting() -> None:
    [at_once, hour, day, week] = horizons(
        AccountSettings(inactivity_close_after=timedelta(hours=24)), NOW
    )
    assert at_once.last_activity_cutoff == NOW - timedelta(hours=24)
    assert hour.last_activity_cutoff == NOW - timedelta(hours=23)
    assert day.last_activity_cutoff == NOW
    assert week.last_activity_cutoff == NOW + timedelta(days=6)


def test_a_setting_of_never_closes_nothing_at_any_horizon() -> None:
    assert all(h.last_activity_cutoff is None for h in horizons(AccountSettings(), NOW))


def test_business_hours_that_never_come_close_nothing() -> None:
    closed_all_week = BusinessHours(timezone="UTC", weekly={})
    assert last_activity_closing_by(NOW, timedelta(hours=1), closed_all_week) is None


def test_with_business_hours_the_cutoff_is_counted_back_in_business_time() -> None:
    # 15:30 UTC is 16:30 in Berlin (winter time): Wednesday 09:00-16:30 counts 7.5 hours, and
    # the last half hour of Tuesday the other 0.5: the cutoff is Tuesday 17:30 local.
    cutoff = last_activity_closing_by(NOW, timedelta(hours=8), OFFICE)
    assert cutoff is not None
    assert deadline(cutoff, timedelta(hours=8), OFFICE) <= NOW  # type: ignore[operator]
    assert deadline(cutoff + µs, timedelta(hours=8), OFFICE) > NOW  # type: ignore[operator]
    assert cutoff == utc("2026-03-03T16:30:00")


@settings(max_examples=60, deadline=None)
@given(
    by=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
    ),
    minutes=st.integers(min_value=1, max_value=60 * 24 * 10),
)
def test_the_cutoff_is_the_last_instant_that_closes_by_the_horizon(
    by: datetime, minutes: int
) -> None:
    close_after = timedelta(minutes=minutes)
    cutoff = last_activity_closing_by(by, close_after, OFFICE)
    assert cutoff is not None
    due = deadline(cutoff, close_after, OFFICE)
    after = deadline(cutoff + µs, close_after, OFFICE)
    assert due is not None
    assert due <= by
    assert after is not None
    assert after > by
