"""The warning before an auto-close, through ingest and the sweep (issue 13): it comes
`close_warning_before` ahead of the deadline, once per idle period, is stored like any decision,
and the close still comes at the deadline unless there is activity; a system message is not
activity.

Each test runs on SQLite and PostgreSQL; every `now` is chosen, nothing sleeps.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from events.decisions import AutoClosed, CloseWarning, parse_decision
from events.names import DECISIONS_STREAM, METRICS_DECISIONS_KEY
from policies.state import Status
from service.deadlines import sweep
from tests.service.builders import T0, message, minutes, opened, µs
from tests.support import Service, event, new_id


def settings(account: str, at: datetime, close_after: str, warn_before: str | None) -> dict:
    return event(
        "account.settings_updated",
        account,
        at,
        inactivity_close_after=close_after,
        close_warning_before=warn_before,
    )


def warned_account(service: Service, close_after: str = "PT30M", warn: str = "PT10M") -> str:
    """A fresh account that closes after 30 minutes and warns 10 minutes before (by default)."""
    account = new_id("acct")
    service.ingest(settings(account, T0 - minutes(60), close_after, warn), T0)
    return account


def system_message(account: str, at: datetime) -> dict[str, Any]:
    return {**message(account, at), "sender": "system"}


def test_the_warning_comes_the_warning_period_before_the_close_and_the_close_at_the_deadline(
    service: Service,
) -> None:
    account = warned_account(service)
    service.ingest(opened(account), T0)
    assert service.conversation(account, "c1")[1] == T0 + minutes(20)

    assert service.close_due(T0 + minutes(20) - µs, account) == []
    [warning] = service.close_due(T0 + minutes(20), account)

    assert isinstance(warning, CloseWarning)
    assert (warning.conversation_id, warning.contact_id, warning.line_id) == (
        "c1",
        "contact-1",
        "line-1",
    )
    assert (warning.last_activity_at, warning.closes_at) == (T0, T0 + minutes(30))
    state, due = service.conversation(account, "c1")
    assert (state.status, state.close_warned_at, due) == (
        Status.OPEN,
        T0 + minutes(20),
        T0 + minutes(30),
    )
    assert service.close_due(T0 + minutes(30) - µs, account) == []
    [closed] = service.close_due(T0 + minutes(30), account)
    assert isinstance(closed, AutoClosed)
    stored = [parse_decision(json.dumps(d)) for d in service.decisions(account)]
    assert stored == [warning, closed]


def test_an_idle_period_is_warned_about_once_however_many_sweeps_see_it(
    service: Service,
) -> None:
    account = warned_account(service)
    service.ingest(opened(account), T0)
    [_] = service.close_due(T0 + minutes(20), account)
    assert service.close_due(T0 + minutes(25), account) == []
    assert service.close_due(T0 + minutes(29), account) == []
    assert service.count_decisions(account) == 1


def test_a_reply_after_the_warning_cancels_the_close_and_the_next_idle_period_is_warned_again(
    service: Service,
) -> None:
    account = warned_account(service)
    service.ingest(opened(account), T0)
    [first] = service.close_due(T0 + minutes(20), account)
    service.ingest(message(account, T0 + minutes(25)), T0 + minutes(25))

    state, due = service.conversation(account, "c1")
    assert (state.close_warned_at, due) == (None, T0 + minutes(45))
    assert service.close_due(T0 + minutes(30), account) == []
    assert service.conversation(account, "c1")[0].status is Status.OPEN
    [second] = service.close_due(T0 + minutes(45), account)
    assert isinstance(second, CloseWarning)
    assert second.decision_id != first.decision_id
    assert second.closes_at == T0 + minutes(55)


def test_a_system_message_after_the_warning_does_not_keep_the_conversation_open(
    service: Service,
) -> None:
    account = warned_account(service)
    service.ingest(opened(account), T0)
    [_] = service.close_due(T0 + minutes(20), account)
    service.ingest(
        system_message(
            account,
            T0
            + minutes(
                20,
            ),
        ),
        T0 + minutes(21),
    )

    state, due = service.conversation(account, "c1")
    assert (state.last_activity_at, due) == (T0, T0 + minutes(30))
    [closed] = service.close_due(T0 + minutes(30), account)
    assert isinstance(closed, AutoClosed)
    assert service.count_decisions(account) == 2


def test_a_setting_that_brings_the_deadline_within_the_warning_period_warns_at_once(
    service: Service,
) -> None:
    # 20 minutes idle under "close after 1h, warn 10 minutes before": nothing due yet. The
    # account changes to "close after 25 minutes, warn 10 minutes before": the warning time
    # (15 minutes) is past, the deadline (25) is not.
    account = warned_account(service, close_after="PT1H")
    service.ingest(opened(account), T0)
    service.ingest(settings(account, T0 + minutes(20), "PT25M", "PT10M"), T0 + minutes(20))
    assert service.conversation(account, "c1")[1] == T0 + minutes(15)

    [warning] = service.close_due(T0 + minutes(20), account)
    assert isinstance(warning, CloseWarning)
    assert warning.closes_at == T0 + minutes(25)
    assert service.close_due(T0 + minutes(25) - µs, account) == []
    [closed] = service.close_due(T0 + minutes(25), account)
    assert isinstance(closed, AutoClosed)


def test_a_warning_period_longer_than_the_close_setting_warns_at_the_last_activity(
    service: Service,
) -> None:
    account = warned_account(service, close_after="PT10M", warn="PT1H")
    service.ingest(opened(account), T0)
    assert service.conversation(account, "c1")[1] == T0

    [warning] = service.close_due(T0, account)
    assert isinstance(warning, CloseWarning)
    assert warning.closes_at == T0 + minutes(10)
    assert service.conversation(account, "c1")[1] == T0 + minutes(10)


def test_a_conversation_first_seen_past_its_deadline_is_closed_without_a_warning(
    service: Service,
) -> None:
    # A sweep that was down, or a setting that put the deadline in the past: warning now of a
    # close that is already due would tell nobody anything useful.
    account = warned_account(service)
    service.ingest(opened(account), T0)
    [closed] = service.close_due(T0 + minutes(31), account)
    assert isinstance(closed, AutoClosed)
    assert service.count_decisions(account) == 1


def test_turning_the_warning_off_moves_the_next_check_back_to_the_deadline(
    service: Service,
) -> None:
    account = warned_account(service)
    service.ingest([opened(account, "c1"), opened(account, "c2")], T0)
    service.ingest(settings(account, T0 + minutes(1), "PT30M", None), T0 + minutes(1))

    assert {service.conversation(account, c)[1] for c in ("c1", "c2")} == {T0 + minutes(30)}
    assert service.close_due(T0 + minutes(20), account) == []


def test_the_sweep_relays_a_warning_to_the_stream_and_counts_it(
    service: Service,
) -> None:
    account = warned_account(service)
    service.ingest(opened(account), T0)
    redis = service.runtime.redis
    counted = "conversation.close_warning|"
    before = int(redis.hget(METRICS_DECISIONS_KEY, counted) or 0)

    sweep(service.runtime, lambda: T0 + minutes(20))

    [stored] = service.decisions(account)
    assert stored["type"] == "conversation.close_warning"
    on_stream = [
        json.loads(fields[b"data"])
        for _, fields in redis.xrevrange(DECISIONS_STREAM, count=10_000)
        if json.loads(fields[b"data"])["account_id"] == account
    ]
    assert on_stream == [stored]
    assert int(redis.hget(METRICS_DECISIONS_KEY, counted) or 0) >= before + 1
