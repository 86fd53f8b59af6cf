"""Business hours end to end: a real `convlife run` counts an idle conversation's time only
inside the account's business hours (issue 13 §4). Settings are seconds long; the sweep runs
every 0.5 s in these tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.conftest import Service
from tests.support import conversation_event, event, new_id


def now() -> datetime:
    return datetime.now(UTC)


def every_day(ranges: list[list[str]]) -> dict[str, list[list[str]]]:
    return dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), ranges)


def account_with_business_hours(service: Service, business_hours: dict[str, Any]) -> str:
    account = new_id("acct")
    service.publish(
        event(
            "account.settings_updated",
            account,
            now() - timedelta(seconds=1),
            inactivity_close_after="PT2S",
            business_hours=business_hours,
        )
    )
    return account


def test_business_hours_that_exclude_now_keep_an_idle_conversation_open_past_its_deadline(
    service: Service,
) -> None:
    # Open all day every day, except yesterday, today and tomorrow (holidays, in UTC): the 2 s
    # of business time cannot pass before the day after tomorrow.
    today = now().date()
    closed_days = [str(today + timedelta(days=n)) for n in (-1, 0, 1)]
    account = account_with_business_hours(
        service,
        {"timezone": "UTC", "weekly": every_day([["00:00", "24:00"]]), "holidays": closed_days},
    )
    since = service.stream_position()
    service.publish(conversation_event("conversation.opened", account, "c1", now()))

    time.sleep(4)  # twice the wall-clock deadline: eight sweeps
    service.publish(
        event("contact.inbound", account, now(), contact_id="contact-1", line_id="line-1")
    )
    decisions = service.decisions(since, account, count=2, timeout=4)

    # Still open when the contact wrote: routed to it, and nothing closed it before or since.
    assert [(d["type"], d.get("route"), d.get("conversation_id")) for d in decisions] == [
        ("contact.routed", "open_conversation", "c1")
    ]


def test_business_hours_that_include_now_close_an_idle_conversation_on_time(
    service: Service,
) -> None:
    account = account_with_business_hours(
        service, {"timezone": "UTC", "weekly": every_day([["00:00", "24:00"]])}
    )
    since = service.stream_position()
    opened_at = now()
    service.publish(conversation_event("conversation.opened", account, "c1", opened_at))

    [closed] = service.decisions(since, account, count=1, timeout=10)

    deadline = opened_at + timedelta(seconds=2)
    assert (closed["type"], closed["conversation_id"]) == ("conversation.auto_closed", "c1")
    assert (
        deadline <= datetime.fromisoformat(closed["closed_at"]) <= deadline + timedelta(seconds=2)
    )
    assert closed["business_hours"]["timezone"] == "UTC"
    assert "of business hours (UTC) without action" in closed["reason"]
