"""Per-line settings end to end: a real `convlife run` (worker + beat) on each store, settings
seconds long, decisions read from the stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.conftest import Service
from tests.support import conversation_event, event, new_id, settings_event


def now() -> datetime:
    return datetime.now(UTC)


def account_closing_after_an_hour(service: Service) -> str:
    account = new_id("acct")
    service.publish(settings_event(account, now() - timedelta(seconds=1), close_after="PT1H"))
    return account


def test_a_line_with_its_own_short_timeout_closes_while_the_accounts_others_stay_open(
    service: Service,
) -> None:
    account = account_closing_after_an_hour(service)
    service.publish(
        event(
            "line.updated",
            account,
            now() - timedelta(seconds=1),
            line_id="fast",
            inactivity_close_after="PT2S",
        )
    )
    since = service.stream_position()
    opened_at = now()
    service.publish(
        [
            conversation_event(
                "conversation.opened", account, "on-fast", opened_at, line_id="fast"
            ),
            conversation_event("conversation.opened", account, "elsewhere", opened_at),
        ]
    )

    # Waits past the fast line's close for a second decision that must not come.
    decisions = service.decisions(since, account, count=2, timeout=8)

    assert [(d["type"], d["conversation_id"]) for d in decisions] == [
        ("conversation.auto_closed", "on-fast")
    ]
    [closed] = decisions
    assert closed["inactivity_close_after"] == "PT2S"
    assert closed["reason"].endswith("; line fast closes conversations after 2s without action")
    assert datetime.fromisoformat(closed["closed_at"]) >= opened_at + timedelta(seconds=2)


def test_changing_a_lines_override_reschedules_its_open_conversations(service: Service) -> None:
    account = account_closing_after_an_hour(service)
    since = service.stream_position()
    opened_at = now()
    service.publish(
        [
            conversation_event("conversation.opened", account, "c1", opened_at, line_id="sales"),
            conversation_event("conversation.opened", account, "c2", opened_at, line_id="support"),
        ]
    )
    # Opened under the account's hour: nothing closes until the line's setting changes.
    assert service.decisions(since, account, count=1, timeout=3) == []

    service.publish(
        event("line.updated", account, now(), line_id="sales", inactivity_close_after="PT1S")
    )

    decisions = service.decisions(since, account, count=2, timeout=6)
    assert [(d["type"], d["conversation_id"]) for d in decisions] == [
        ("conversation.auto_closed", "c1")
    ]
    assert decisions[0]["reason"].endswith(
        "; line sales closes conversations after 1s without action"
    )
