"""Business hours in the rules: the close deadline counts only opening hours, and so does the
reassignment window when the account says so (issue 13 §4). The calendar's own walk is
specified in tests/unit/test_calendar.py; these tests hold the rules to it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from cli.main import _explain
from events.business_hours import BusinessHours
from events.decisions import ContactRouted, Route
from events.models import LATEST, ContactInbound
from policies import calendar
from policies.inactivity import auto_close, close_deadline, deadline_after, is_due
from policies.routing import route_inbound
from policies.state import AccountSettings, ClosedBy, Conversation, LineOwner, Status
from tests.support import utc

µs = timedelta(microseconds=1)
WORKDAYS = ("mon", "tue", "wed", "thu", "fri")
BERLIN = BusinessHours(
    timezone="Europe/Berlin", weekly=dict.fromkeys(WORKDAYS, (("09:00", "18:00"),))
)
"""Mon-Fri 09:00-18:00 in Berlin; in early March 2026 that is 08:00-17:00 UTC."""
FRIDAY_5PM = utc("2026-03-06T16:00:00")  # 17:00 in Berlin: one business hour left that day
MONDAY_5PM = utc("2026-03-09T16:00:00")
ALL_HOURS = BusinessHours(
    timezone="UTC",
    weekly=dict.fromkeys((*WORKDAYS, "sat", "sun"), (("00:00", "24:00"),)),
)
NEVER_OPEN = BusinessHours(timezone="UTC", weekly={})


def idle_since(last: datetime) -> Conversation:
    return Conversation(
        account_id="acct",
        conversation_id="conv",
        contact_id="maria",
        line_id="sales",
        status=Status.OPEN,
        last_activity_at=last,
    )


def close_after(duration: timedelta, hours: BusinessHours | None = BERLIN) -> AccountSettings:
    return AccountSettings(inactivity_close_after=duration, business_hours=hours)


def test_with_business_hours_close_after_9h_counts_9_business_hours_across_the_weekend() -> None:
    settings = close_after(timedelta(hours=9))
    # 1 hour on Friday (17:00-18:00), 8 on Monday (09:00-17:00), Berlin time.
    assert close_deadline(idle_since(FRIDAY_5PM), settings) == MONDAY_5PM
    assert is_due(idle_since(FRIDAY_5PM), settings, MONDAY_5PM - µs) is False
    assert auto_close(idle_since(FRIDAY_5PM), settings, MONDAY_5PM - µs) is None
    assert is_due(idle_since(FRIDAY_5PM), settings, MONDAY_5PM) is True
    assert auto_close(idle_since(FRIDAY_5PM), settings, MONDAY_5PM) is not None


def test_close_after_1_day_with_business_hours_means_24_business_hours() -> None:
    # 9 business hours a day: 1 on Friday, then 9 each Monday and Tuesday, 5 on Wednesday.
    settings = close_after(timedelta(days=1))
    assert close_deadline(idle_since(FRIDAY_5PM), settings) == utc("2026-03-11T13:00:00")


def test_a_holiday_moves_the_business_hours_deadline_past_it() -> None:
    monday_off = BERLIN.model_copy(update={"holidays": (datetime(2026, 3, 9).date(),)})
    settings = close_after(timedelta(hours=9), monday_off)
    assert close_deadline(idle_since(FRIDAY_5PM), settings) == MONDAY_5PM + timedelta(days=1)


def test_activity_outside_business_hours_starts_counting_at_the_next_opening() -> None:
    saturday_noon = utc("2026-03-07T11:00:00")
    settings = close_after(timedelta(hours=2))
    assert close_deadline(idle_since(saturday_noon), settings) == utc("2026-03-09T10:00:00")


def test_business_hours_that_never_open_never_close_a_conversation() -> None:
    settings = close_after(timedelta(seconds=1), NEVER_OPEN)
    far = utc("2100-01-01T00:00:00")
    assert close_deadline(idle_since(FRIDAY_5PM), settings) is None
    assert is_due(idle_since(FRIDAY_5PM), settings, far) is False
    assert auto_close(idle_since(FRIDAY_5PM), settings, far) is None


def test_business_hours_open_all_day_every_day_give_the_wall_clock_deadline() -> None:
    rng = random.Random(13)
    for _ in range(200):
        last = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 10**8))
        setting = timedelta(seconds=rng.randint(1, 10**7), microseconds=rng.randint(0, 999_999))
        assert (
            deadline_after(last, setting, ALL_HOURS)
            == deadline_after(last, setting)
            == (last + setting)
        )


@pytest.mark.parametrize("hours", [None, ALL_HOURS], ids=["clock", "business-hours"])
def test_a_deadline_at_or_after_the_latest_instant_is_never_with_or_without_business_hours(
    hours: BusinessHours | None,
) -> None:
    day = timedelta(days=1)
    assert deadline_after(LATEST - day, day, hours) is None
    assert deadline_after(LATEST - day - µs, day, hours) == LATEST - µs
    assert deadline_after(datetime(9990, 1, 1, tzinfo=UTC), day, hours) is None


def test_an_auto_close_in_business_hours_says_how_long_counted_and_how_long_on_the_clock() -> None:
    settings = close_after(timedelta(hours=9))
    result = auto_close(idle_since(FRIDAY_5PM), settings, MONDAY_5PM + timedelta(minutes=5))
    assert result is not None
    _, decision = result
    assert decision.reason == (
        "no action for 9h 5m of business hours (3d 5m on the clock); the account closes "
        "conversations after 9h of business hours (Europe/Berlin) without action"
    )
    assert decision.business_hours == BERLIN
    assert decision.inactivity_close_after == timedelta(hours=9)


def test_an_auto_close_on_the_clock_says_nothing_of_business_hours() -> None:
    result = auto_close(idle_since(FRIDAY_5PM), close_after(timedelta(hours=9), None), MONDAY_5PM)
    assert result is not None
    assert result[1].reason == (
        "no action for 3d; the account closes conversations after 9h without action"
    )
    assert result[1].business_hours is None


def test_the_business_time_in_a_close_reason_is_what_the_calendar_counts() -> None:
    rng = random.Random(4)
    settings = close_after(timedelta(hours=rng.randint(1, 40)))
    for _ in range(20):
        last = FRIDAY_5PM + timedelta(minutes=rng.randint(0, 60 * 24 * 14))
        due = close_deadline(idle_since(last), settings)
        assert due is not None
        assert calendar.counted_between(last, due, BERLIN) == settings.inactivity_close_after


# The reassignment window -------------------------------------------------------------------


def closed_by_ana(at: datetime) -> Conversation:
    return Conversation(
        account_id="acct",
        conversation_id="c1",
        contact_id="maria",
        line_id="sales",
        status=Status.CLOSED,
        last_activity_at=at,
        status_changed_at=at,
        closed_at=at,
        closed_by=ClosedBy.AGENT,
        closing_agent_id="ana",
        close_reason="resolved",
    )


def window(
    duration: timedelta, *, in_business_hours: bool, hours: BusinessHours | None = BERLIN
) -> AccountSettings:
    return AccountSettings(
        reassignment_window=duration,
        business_hours=hours,
        window_counts_business_hours=in_business_hours,
    )


def routed(settings: AccountSettings, wrote_at: datetime) -> ContactRouted:
    message = ContactInbound(
        type="contact.inbound",
        event_id="in-1",
        account_id="acct",
        occurred_at=wrote_at,
        contact_id="maria",
        line_id="sales",
    )
    return route_inbound(
        message,
        [closed_by_ana(FRIDAY_5PM)],
        settings,
        LineOwner(),
        {},
        wrote_at,
        open_assigned={},
    )


MONDAY_10AM = utc("2026-03-09T09:00:00")  # 2 business hours after the Friday 17:00 close


def test_a_window_counted_in_business_hours_runs_over_the_weekend() -> None:
    decision = routed(window(timedelta(hours=8), in_business_hours=True), MONDAY_10AM)
    assert (decision.route, decision.agent_id) == (Route.PREVIOUS_AGENT, "ana")
    assert decision.reason == (
        "agent ana closed conversation c1 with reason 'resolved' 2d 17h before the contact "
        "wrote, within the 8h reassignment window (counted in business hours, Europe/Berlin: "
        "2h of it had passed)"
    )


def test_the_window_stays_on_the_clock_unless_the_account_counts_it_in_business_hours() -> None:
    decision = routed(window(timedelta(hours=8), in_business_hours=False), MONDAY_10AM)
    assert decision.route is Route.UNASSIGNED
    assert "the 8h reassignment window after conversation c1 is over" in decision.reason


def test_a_window_in_business_hours_without_business_hours_set_stays_on_the_clock() -> None:
    settings = window(timedelta(hours=8), in_business_hours=True, hours=None)
    decision = routed(settings, MONDAY_10AM)
    assert decision.route is Route.UNASSIGNED
    assert "the 8h reassignment window after conversation c1 is over" in decision.reason


def test_a_window_in_business_hours_is_over_exactly_when_its_business_time_is_used() -> None:
    # 1h on Friday, 7h on Monday: the window ends Monday 16:00 Berlin (15:00 UTC).
    ends = utc("2026-03-09T15:00:00")
    settings = window(timedelta(hours=8), in_business_hours=True)
    assert routed(settings, ends - µs).route is Route.PREVIOUS_AGENT
    over = routed(settings, ends)
    assert over.route is Route.UNASSIGNED
    assert over.reason == (
        "new contact (the 8h reassignment window (counted in business hours, Europe/Berlin) "
        "after conversation c1 is over); the bot is off and the line has no owner"
    )


def test_a_window_in_business_hours_that_never_open_never_ends() -> None:
    settings = window(timedelta(seconds=1), in_business_hours=True, hours=NEVER_OPEN)
    assert routed(settings, utc("2100-01-01T00:00:00")).route is Route.PREVIOUS_AGENT


# conversation show ---------------------------------------------------------------------------


def test_conversation_show_says_the_deadline_counts_business_hours_and_whether_they_run() -> None:
    settings = close_after(timedelta(hours=9))
    due = close_deadline(idle_since(FRIDAY_5PM), settings)
    saturday = utc("2026-03-07T12:00:00")
    shown = _explain(idle_since(FRIDAY_5PM), due, settings, saturday)
    assert "closes at 2026-03-09T16:00:00+00:00, in 2d 4h" in shown
    assert (
        "the deadline counts business hours only (Europe/Berlin): 1h of 9h counted so far; "
        "business hours are closed now: the timer is paused"
    ) in shown
    assert "business hours in Europe/Berlin" in shown
    assert "reindex" not in shown
    monday = _explain(idle_since(FRIDAY_5PM), due, settings, utc("2026-03-09T09:00:00"))
    assert "2h of 9h counted so far; business hours are open now: the timer runs" in monday


def test_conversation_show_on_the_clock_says_every_hour_counts() -> None:
    settings = close_after(timedelta(hours=9), None)
    shown = _explain(idle_since(FRIDAY_5PM), FRIDAY_5PM + timedelta(hours=9), settings, FRIDAY_5PM)
    assert "business hours" not in shown
    assert "every hour counts" in shown
