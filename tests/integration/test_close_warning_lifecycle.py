"""The close warning end to end (issue 13): a real `convlife run` (worker + beat) on each store,
events published to the broker, decisions read from the stream. The settings are seconds long
(close after 6 s, warn 3 s before) so the warning and the close stay seconds apart even on a
loaded machine; the sweep runs every 0.5 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.integration.conftest import Service
from tests.support import conversation_event, event, new_id

CLOSE_AFTER = timedelta(seconds=6)
WARN_BEFORE = timedelta(seconds=3)


def now() -> datetime:
    return datetime.now(UTC)


def warned_account(service: Service) -> str:
    account = new_id("acct")
    service.publish(
        event(
            "account.settings_updated",
            account,
            now() - timedelta(seconds=1),
            inactivity_close_after="PT6S",
            close_warning_before="PT3S",
        )
    )
    return account


def message(account: str, sender: str, at: datetime) -> dict[str, object]:
    return conversation_event("conversation.message", account, "c1", at, sender=sender)


def test_the_warning_comes_before_the_close_and_a_reply_cancels_that_close(
    service: Service,
) -> None:
    account = warned_account(service)
    since = service.stream_position()
    opened_at = now()
    service.publish(conversation_event("conversation.opened", account, "c1", opened_at))

    [warning] = service.decisions(since, account, count=1, timeout=15)

    assert warning["type"] == "conversation.close_warning"
    assert warning["conversation_id"] == "c1"
    assert datetime.fromisoformat(warning["last_activity_at"]) == opened_at
    assert datetime.fromisoformat(warning["closes_at"]) == opened_at + CLOSE_AFTER
    assert datetime.fromisoformat(warning["decided_at"]) >= opened_at + CLOSE_AFTER - WARN_BEFORE

    replied_at = now()
    service.publish(message(account, "contact", replied_at))
    later = service.decisions(since, account, count=3, timeout=25)

    # The first period's close never comes: the reply started a new period, which gets its
    # own warning and then its own close.
    assert [d["type"] for d in later] == [
        "conversation.close_warning",
        "conversation.close_warning",
        "conversation.auto_closed",
    ]
    _, second, closed = later
    assert second["decision_id"] != warning["decision_id"]
    assert datetime.fromisoformat(second["last_activity_at"]) == replied_at
    assert datetime.fromisoformat(second["closes_at"]) == replied_at + CLOSE_AFTER
    assert datetime.fromisoformat(closed["last_activity_at"]) == replied_at
    assert datetime.fromisoformat(closed["closed_at"]) >= replied_at + CLOSE_AFTER


def test_a_system_message_after_the_warning_does_not_keep_the_conversation_open(
    service: Service,
) -> None:
    account = warned_account(service)
    since = service.stream_position()
    opened_at = now()
    service.publish(conversation_event("conversation.opened", account, "c1", opened_at))
    [warning] = service.decisions(since, account, count=1, timeout=15)
    assert warning["type"] == "conversation.close_warning"

    # The platform posts the warning's text to the contact: an automated notice.
    service.publish(message(account, "system", now()))
    made = service.decisions(since, account, count=2, timeout=15)

    assert [d["type"] for d in made] == ["conversation.close_warning", "conversation.auto_closed"]
    closed = made[1]
    assert datetime.fromisoformat(closed["last_activity_at"]) == opened_at
    assert datetime.fromisoformat(closed["closed_at"]) >= opened_at + CLOSE_AFTER
