"""When a conversation closes by itself: the deadline is last activity + the account's setting,
kept right through activity and settings changes, and each close makes one decision.

Each test runs on SQLite and PostgreSQL; every `now` is chosen, nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest
from redis import Redis

from events.decisions import parse_decision
from policies.state import Status
from service.deadlines import close_due
from service.runtime import Runtime
from service.settings import Settings
from store.db import make_engine
from tests.service.builders import (
    T0,
    account_with,
    agent_close,
    inbound,
    message,
    minutes,
    opened,
    µs,
)
from tests.support import Service, conversation_event, event, new_id, settings_event, utc

DAY = timedelta(days=1)


def test_the_close_is_dated_by_the_sweep_that_makes_it_and_stored_as_sent(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    swept_at = T0 + minutes(30) + timedelta(seconds=7)

    [closed] = service.close_due(swept_at, account)

    assert (closed.closed_at, closed.decided_at) == (swept_at, swept_at)
    assert closed.last_activity_at == T0
    [stored] = service.decisions(account)
    assert parse_decision(json.dumps(stored)) == closed
    state, _ = service.conversation(account, "c1")
    assert (state.closed_at, state.auto_closed) == (swept_at, True)
    assert state.status_changed_at == T0  # the open that started the idle period it ended


def test_a_conversation_reopened_after_an_auto_close_closes_again_with_a_second_decision(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    [first] = service.close_due(T0 + minutes(30), account)
    service.ingest(opened(account, at=T0 + minutes(40)), T0 + minutes(40))

    assert service.close_due(T0 + minutes(70) - µs, account) == []
    [second] = service.close_due(T0 + minutes(70), account)

    assert second.last_activity_at == T0 + minutes(40)
    assert first.decision_id != second.decision_id
    assert service.count_decisions(account) == 2


def test_a_late_event_older_than_the_last_activity_does_not_bring_the_deadline_back(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest([opened(account), message(account, T0 + minutes(20))], T0 + minutes(20))
    service.ingest(message(account, T0 + minutes(5)), T0 + minutes(21))

    state, due = service.conversation(account, "c1")
    assert (state.last_activity_at, due) == (T0 + minutes(20), T0 + minutes(50))
    assert service.close_due(T0 + minutes(50) - µs, account) == []


def test_an_event_with_an_offset_counts_from_the_instant_it_names(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    in_madrid = T0.astimezone(timezone(timedelta(hours=1)))
    service.ingest(opened(account, at=in_madrid), T0)

    state, due = service.conversation(account, "c1")
    assert (state.last_activity_at, due) == (T0, T0 + minutes(30))
    assert due is not None
    assert due.utcoffset() == timedelta(0)


def test_an_agent_close_is_never_followed_by_an_auto_close(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest([opened(account), agent_close(account, T0 + minutes(29))], T0 + minutes(29))
    assert service.close_due(T0 + timedelta(days=365), account) == []
    assert service.count_decisions(account) == 0


def test_a_close_upstream_by_the_system_also_clears_the_deadline(service: Service) -> None:
    account = account_with(service, close_after="PT30M")
    system_close = {
        **agent_close(account, T0 + minutes(1), reason=None, agent=None),
        "closed_by": "system",
    }
    service.ingest([opened(account), system_close], T0 + minutes(1))
    state, due = service.conversation(account, "c1")
    assert (state.status, due) == (Status.CLOSED, None)


def test_a_change_to_never_cancels_every_pending_close(service: Service) -> None:
    account = account_with(service, close_after="PT10M")
    service.ingest([opened(account, f"c{i}") for i in range(5)], T0)
    service.ingest(settings_event(account, T0 + minutes(1), close_after=None), T0 + minutes(1))

    assert service.close_due(T0 + timedelta(days=3650), account) == []
    assert {service.conversation(account, f"c{i}")[1] for i in range(5)} == {None}


def test_a_shorter_setting_counts_from_the_last_activity_not_from_the_change(
    service: Service,
) -> None:
    account = account_with(service, close_after="P1D")
    service.ingest(opened(account), T0)
    changed_at = T0 + minutes(90)
    service.ingest(settings_event(account, changed_at, close_after="PT1H"), changed_at)

    assert service.conversation(account, "c1")[1] == T0 + minutes(60)
    [closed] = service.close_due(changed_at, account)
    assert (closed.last_activity_at, closed.closed_at) == (T0, changed_at)
    assert closed.inactivity_close_after == minutes(60)


def test_a_settings_update_that_leaves_the_close_setting_out_keeps_every_deadline(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    only_the_bot = event("account.settings_updated", account, T0 + minutes(1), bot_enabled=True)
    service.ingest(only_the_bot, T0 + minutes(1))

    assert service.conversation(account, "c1")[1] == T0 + minutes(30)
    assert len(service.close_due(T0 + minutes(30), account)) == 1


def test_a_settings_change_of_one_account_moves_no_other_accounts_deadlines(
    service: Service,
) -> None:
    alice = account_with(service, close_after="PT30M")
    bob = account_with(service, close_after="PT30M")
    service.ingest([opened(alice, "shared-id"), opened(bob, "shared-id")], T0)
    service.ingest(settings_event(alice, T0 + minutes(1), close_after="PT1S"), T0 + minutes(1))

    [closed] = service.close_due(T0 + minutes(1), alice)  # sweeps every account

    assert closed.conversation_id == "shared-id"
    bob_state, bob_due = service.conversation(bob, "shared-id")
    assert (bob_state.status, bob_due) == (Status.OPEN, T0 + minutes(30))
    assert service.count_decisions(bob) == 0


def test_an_account_never_configured_closes_after_the_default_setting(service: Service) -> None:
    service.runtime.settings = service.runtime.settings.model_copy(
        update={"default_inactivity_close_after": timedelta(hours=2)}
    )
    account = new_id("acct")
    service.ingest(opened(account), T0)

    assert service.conversation(account, "c1")[1] == T0 + timedelta(hours=2)
    assert len(service.close_due(T0 + timedelta(hours=2), account)) == 1


def test_one_call_closes_at_most_one_batch(service: Service) -> None:
    service.runtime.settings = service.runtime.settings.model_copy(update={"sweep_batch_size": 3})
    account = account_with(service, close_after="PT1M")
    # Dated before every other test's conversations, so this account's are claimed first.
    long_ago = utc("2001-01-01T00:00:00")
    service.ingest([opened(account, f"c{i}", at=long_ago) for i in range(7)], T0)

    claimed, made, _ = close_due(service.runtime, T0)
    assert (claimed, len(made)) == (3, 3)
    assert len(service.close_due(T0, account)) == 4


def test_a_close_setting_beyond_the_calendar_never_breaks_the_account(service: Service) -> None:
    account = account_with(service)
    service.ingest(opened(account), T0)
    huge = settings_event(account, T0 + minutes(1), close_after="P3000000D")
    service.ingest(huge, T0 + minutes(1))
    service.ingest(message(account, T0 + minutes(2)), T0 + minutes(2))

    assert service.conversation(account, "c1")[0].last_activity_at == T0 + minutes(2)
    assert service.close_due(T0 + timedelta(days=3650), account) == []


def test_an_idle_conversation_closes_exactly_at_its_deadline_and_only_once(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    deadline = T0 + minutes(30)

    assert service.close_due(deadline - µs, account) == []
    [closed] = service.close_due(deadline, account)
    assert service.close_due(deadline + minutes(1), account) == []

    assert closed.conversation_id == "c1"
    assert closed.closed_at == deadline
    assert closed.last_activity_at == T0
    assert closed.inactivity_close_after == minutes(30)
    state, due = service.conversation(account, "c1")
    assert (state.status, state.closed_by.value, state.close_reason, due) == (
        Status.CLOSED,
        "system",
        "inactivity",
        None,
    )
    assert [d["type"] for d in service.decisions(account)] == ["conversation.auto_closed"]


ACTIVITY: dict[str, Callable[[str, datetime], dict]] = {
    "message": lambda a, at: message(a, at),
    "note": lambda a, at: conversation_event("conversation.note", a, "c1", at),
    "transfer": lambda a, at: conversation_event(
        "conversation.transferred", a, "c1", at, group_id="sales"
    ),
    "inbound-contact": lambda a, at: inbound(a, at),
}


@pytest.mark.parametrize("activity", list(ACTIVITY))
def test_any_action_restarts_the_timer(service: Service, activity: str) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    service.ingest(ACTIVITY[activity](account, T0 + minutes(20)), T0 + minutes(20))

    assert service.close_due(T0 + minutes(30), account) == []
    _, due = service.conversation(account, "c1")
    assert due == T0 + minutes(50)
    assert len(service.close_due(T0 + minutes(50), account)) == 1


def test_a_conversation_on_never_is_never_closed(service: Service) -> None:
    account = account_with(service, close_after=None)
    service.ingest(opened(account), T0)
    _, due = service.conversation(account, "c1")
    assert due is None
    assert service.close_due(T0 + timedelta(days=3650), account) == []


def test_an_agent_close_clears_the_deadline_and_a_reopen_sets_it_again(
    service: Service,
) -> None:
    account = account_with(service, close_after="P1D")
    service.ingest([opened(account), agent_close(account, T0 + minutes(5))], T0 + minutes(5))
    assert service.conversation(account, "c1")[1] is None

    service.ingest(opened(account, at=T0 + minutes(60)), T0 + minutes(60))
    state, due = service.conversation(account, "c1")
    assert state.status is Status.OPEN
    assert due == T0 + minutes(60) + timedelta(days=1)


def test_events_from_weeks_ago_make_a_conversation_due_at_once(service: Service) -> None:
    account = account_with(service, close_after="P1D")
    weeks_ago = T0 - timedelta(weeks=3)
    service.ingest(message(account, weeks_ago), T0)
    [closed] = service.close_due(T0, account)
    assert closed.last_activity_at == weeks_ago


def test_a_settings_change_applies_to_conversations_already_open(service: Service) -> None:
    account = account_with(service, close_after=None)
    service.ingest([opened(account, f"c{i}") for i in range(50)], T0)
    assert service.close_due(T0 + timedelta(days=1), account) == []

    service.ingest(settings_event(account, T0 + minutes(1), close_after="PT1S"), T0 + minutes(1))

    closed = service.close_due(T0 + minutes(1), account)
    assert sorted(d.conversation_id for d in closed) == sorted(f"c{i}" for i in range(50))


def test_a_longer_setting_moves_deadlines_later(service: Service) -> None:
    account = account_with(service, close_after="PT10M")
    service.ingest(opened(account), T0)
    service.ingest(settings_event(account, T0 + minutes(1), close_after="PT2H"), T0 + minutes(1))

    assert service.close_due(T0 + minutes(30), account) == []
    assert service.conversation(account, "c1")[1] == T0 + timedelta(hours=2)


# --- PostgreSQL with a server time zone that has daylight saving time ------------------------


@pytest.fixture
def service_in_madrid(postgres_url: str, redis_url: str) -> Iterator[Service]:
    """A PostgreSQL session whose TimeZone is Europe/Madrid, as initdb sets it on such a host."""
    engine = make_engine(postgres_url, connect_args={"options": "-c TimeZone=Europe/Madrid"})
    settings = Settings(database_url=postgres_url, broker_url=redis_url)  # type: ignore[arg-type]
    client = Redis.from_url(redis_url)
    yield Service(Runtime(settings=settings, engine=engine, redis=client))
    client.close()
    engine.dispose()


def test_a_settings_change_sets_deadlines_of_exactly_the_setting_across_a_dst_change(
    service_in_madrid: Service,
) -> None:
    service = service_in_madrid
    before_dst_ends = utc("2026-10-24T12:00:00")  # Europe leaves summer time on 2026-10-25
    account = account_with(service, close_after=None)
    service.ingest(opened(account, at=before_dst_ends), before_dst_ends)
    changed_at = before_dst_ends + minutes(1)
    service.ingest(settings_event(account, changed_at, close_after="P1D"), changed_at)

    assert service.conversation(account, "c1")[1] == before_dst_ends + DAY
    assert len(service.close_due(before_dst_ends + DAY, account)) == 1


def test_a_deadline_set_by_activity_is_exact_across_a_dst_change(
    service_in_madrid: Service,
) -> None:
    service = service_in_madrid
    before_dst_ends = utc("2026-10-24T12:00:00")
    account = account_with(service, close_after="P1D")
    service.ingest(opened(account, at=before_dst_ends), before_dst_ends)

    assert service.conversation(account, "c1")[1] == before_dst_ends + DAY
    assert len(service.close_due(before_dst_ends + DAY, account)) == 1
