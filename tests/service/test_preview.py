"""`settings preview`: its counts are what the change then does, on both stores.

Each test previews a change at `now`, then makes it and sweeps at now, now + 1 h, now + 24 h and
now + 7 d: the conversations closed by each sweep are the preview's figures, horizon by horizon.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from events.business_hours import BusinessHours
from service.preview import preview
from tests.service.builders import T0, account_with, message, opened
from tests.support import Service, event

HOUR = timedelta(hours=1)
SWEEPS = {
    "at_once": timedelta(0),
    "within_1h": HOUR,
    "within_24h": 24 * HOUR,
    "within_7d": timedelta(days=7),
}

IDLE_HOURS = [200.0, 60.0, 47.5, 25.0, 24.0, 23.5, 12.0, 1.0, 0.25]
"""Hours of idleness at T0 (last activity = T0 - h). Under a 2-day setting: two close at once,
one within 1 h, two more within 24 h (24 h exactly is due), the other four within 7 days."""


def with_conversations(service: Service, account: str, line: str = "line-1") -> list[str]:
    ids = []
    for number, idle in enumerate(IDLE_HOURS):
        conversation = f"{line}-c{number}"
        at = T0 - timedelta(hours=idle)
        service.ingest(opened(account, conversation, at - HOUR, line_id=line), T0)
        service.ingest(message(account, at, conversation, line_id=line), T0)
        ids.append(conversation)
    return ids


def closes_after_change(
    service: Service, account: str, change: dict[str, Any], now: datetime
) -> dict[str, int]:
    service.ingest(event("account.settings_updated", account, now, **change), now)
    return {name: len(service.close_due(now + ahead, account)) for name, ahead in SWEEPS.items()}


def test_a_shorter_close_setting_closes_what_the_preview_counted(service: Service) -> None:
    account = account_with(service, close_after="P30D")
    with_conversations(service, account)

    shown = preview(
        service.runtime.engine,
        account,
        {"inactivity_close_after": timedelta(days=2)},
        T0,
        service.runtime.settings.default_account_settings,
    )

    assert shown.closes == {"at_once": 2, "within_1h": 1, "within_24h": 2, "within_7d": 4}
    assert shown.sample == ["line-1-c0", "line-1-c1"]  # oldest activity first
    assert shown.closes == closes_after_change(
        service, account, {"inactivity_close_after": "P2D"}, T0
    )


def test_business_hours_previewed_are_the_closes_the_sweep_makes(service: Service) -> None:
    account = account_with(service, close_after="P30D")
    with_conversations(service, account)
    hours = {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
        "holidays": ["2026-03-02"],
    }
    change = {"inactivity_close_after": timedelta(hours=9), "business_hours": hours}

    shown = preview(
        service.runtime.engine,
        account,
        {**change, "business_hours": BusinessHours.model_validate(hours)},
        T0,
        service.runtime.settings.default_account_settings,
    )

    assert shown.closes == closes_after_change(
        service, account, {"inactivity_close_after": "PT9H", "business_hours": hours}, T0
    )


def test_a_preview_changes_nothing(service: Service) -> None:
    account = account_with(service, close_after="P30D")
    with_conversations(service, account)

    preview(
        service.runtime.engine,
        account,
        {"inactivity_close_after": timedelta(hours=1)},
        T0,
        service.runtime.settings.default_account_settings,
    )

    assert service.close_due(T0 + HOUR, account) == []


def test_a_line_overriding_the_close_setting_is_counted_under_its_own(service: Service) -> None:
    account = account_with(service, close_after="P30D")
    with_conversations(service, account, "line-1")
    with_conversations(service, account, "line-2")
    service.ingest(
        event("line.updated", account, T0 - HOUR, line_id="line-2", inactivity_close_after="P2D"),
        T0,
    )

    shown = preview(
        service.runtime.engine,
        account,
        {"inactivity_close_after": timedelta(hours=24)},
        T0,
        service.runtime.settings.default_account_settings,
    )

    assert shown.lines_on_their_own == ["line-2"]
    assert shown.closes == closes_after_change(
        service, account, {"inactivity_close_after": "PT24H"}, T0
    )
    # line-1's five idle 24 h or more, and line-2's two idle 2 days or more under its own
    assert shown.closes["at_once"] == 5 + 2


def test_a_line_preview_counts_that_line_only(service: Service) -> None:
    account = account_with(service, close_after="P30D")
    with_conversations(service, account, "line-1")
    with_conversations(service, account, "line-2")

    shown = preview(
        service.runtime.engine,
        account,
        {"inactivity_close_after": timedelta(hours=24)},
        T0,
        service.runtime.settings.default_account_settings,
        line_id="line-2",
    )

    assert shown.closes["at_once"] == 5
    assert all(conversation.startswith("line-2-") for conversation in shown.sample)
