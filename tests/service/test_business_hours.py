"""Business hours through the handlers: an account that counts business hours gets its close
deadlines from the calendar, on every path that stores one (activity, a settings change, paged
whatever the store), on SQLite and PostgreSQL. Every `now` is chosen, nothing sleeps."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from events.business_hours import BusinessHours
from events.decisions import parse_decision
from policies.calendar import deadline
from service import deadlines
from tests.service.builders import T0, minutes, opened, µs
from tests.support import Service, event, new_id, utc

BERLIN_OFFICE: dict[str, Any] = {
    "timezone": "Europe/Berlin",
    "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}
"""Mon-Fri 09:00-18:00 Berlin: 08:00-17:00 UTC in early March 2026. T0 is a Sunday."""
MONDAY_9AM_BERLIN = utc("2026-03-02T08:00:00")


def settings(account: str, at: Any, **fields: Any) -> dict[str, Any]:
    return event("account.settings_updated", account, at, **fields)


def an_account(service: Service, **fields: Any) -> str:
    account = new_id("acct")
    service.ingest(settings(account, T0 - minutes(60), **fields), T0)
    return account


def test_an_account_with_business_hours_closes_after_that_much_business_time(
    service: Service,
) -> None:
    account = an_account(service, inactivity_close_after="PT2H", business_hours=BERLIN_OFFICE)
    service.ingest(opened(account), T0)  # Sunday: nothing counts until Monday 09:00 Berlin

    _, due = service.conversation(account, "c1")
    assert due == MONDAY_9AM_BERLIN + timedelta(hours=2)
    assert service.close_due(due - µs, account) == []
    [closed] = service.close_due(due, account)

    assert closed.reason == (
        "no action for 2h of business hours (1d on the clock); the account closes "
        "conversations after 2h of business hours (Europe/Berlin) without action"
    )
    [stored] = service.decisions(account)
    assert stored["business_hours"]["timezone"] == "Europe/Berlin"
    assert parse_decision(json.dumps(stored)) == closed


def test_activity_in_business_hours_moves_the_deadline_by_business_time(
    service: Service,
) -> None:
    account = an_account(service, inactivity_close_after="PT2H", business_hours=BERLIN_OFFICE)
    friday_4pm_berlin = utc("2026-03-06T15:00:00")
    service.ingest(opened(account, at=friday_4pm_berlin), friday_4pm_berlin)

    _, due = service.conversation(account, "c1")
    assert due == friday_4pm_berlin + timedelta(hours=2)  # 18:00 Berlin: the end of the day
    service.ingest(
        event(
            "conversation.message",
            account,
            friday_4pm_berlin + minutes(1),
            conversation_id="c1",
            contact_id="contact-1",
            line_id="line-1",
            sender="contact",
        ),
        friday_4pm_berlin + minutes(1),
    )
    _, due = service.conversation(account, "c1")
    assert due == utc("2026-03-09T08:01:00")  # the last minute counts on Monday


@pytest.mark.parametrize("page", [2, 1000], ids=["many-pages", "one-page"])
def test_a_settings_change_reschedules_open_conversations_by_the_calendar_and_back(
    service: Service, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    monkeypatch.setattr(deadlines, "_PAGE", page)
    account = an_account(service, inactivity_close_after="PT2H")
    thursday_11am_berlin = utc("2026-02-26T10:00:00")
    lasts = {f"c{n}": T0 - timedelta(days=n, minutes=7 * n) for n in range(5)}
    lasts["c5"] = thursday_11am_berlin
    for conversation, last in lasts.items():
        service.ingest(opened(account, conversation, at=last), T0)
    for conversation, last in lasts.items():
        assert service.conversation(account, conversation)[1] == last + timedelta(hours=2)

    changed_at = T0 + minutes(1)
    service.ingest(settings(account, changed_at, business_hours=BERLIN_OFFICE), changed_at)

    calendar = BusinessHours.model_validate(BERLIN_OFFICE)
    for conversation, last in lasts.items():
        _, due = service.conversation(account, conversation)
        assert due == deadline(last, timedelta(hours=2), calendar), conversation
    assert service.conversation(account, "c0")[1] == MONDAY_9AM_BERLIN + timedelta(hours=2)
    assert service.conversation(account, "c5")[1] == utc("2026-02-26T12:00:00")

    back = changed_at + minutes(1)
    service.ingest(settings(account, back, business_hours=None), back)
    for conversation, last in lasts.items():
        assert service.conversation(account, conversation)[1] == last + timedelta(hours=2)
