"""The ingest and sweep handlers against a real database (each test on SQLite and PostgreSQL).

Every test picks `now` itself; nothing sleeps.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from policies.state import Status
from tests.service.conftest import Service
from tests.support import conversation_event, event, new_id, settings_event, utc
from worker.deadlines import close_due

T0 = utc("2026-03-01T10:00:00")
µs = timedelta(microseconds=1)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def account_with(service: Service, **settings: object) -> str:
    account = new_id("acct")
    service.ingest(settings_event(account, T0 - minutes(60), **settings), T0)  # type: ignore[arg-type]
    return account


def opened(account: str, conversation: str = "c1", at: object = T0, **fields: object) -> dict:
    return conversation_event("conversation.opened", account, conversation, at, **fields)  # type: ignore[arg-type]


def message(account: str, at: object, conversation: str = "c1") -> dict:
    return conversation_event(
        "conversation.message",
        account,
        conversation,
        at,
        sender="contact",  # type: ignore[arg-type]
    )


def agent_close(account: str, at: object, reason: str | None = "resolved", **kw: object) -> dict:
    return conversation_event(
        "conversation.closed",
        account,
        kw.pop("conversation", "c1"),  # type: ignore[arg-type]
        at,  # type: ignore[arg-type]
        closed_by="agent",
        agent_id=kw.pop("agent", "ana"),
        close_reason=reason,
        **kw,
    )


def inbound(account: str, at: object, contact: str = "contact-1") -> dict:
    return event("contact.inbound", account, at, contact_id=contact, line_id="line-1")  # type: ignore[arg-type]


# --- auto-close ---------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    "activity",
    [
        lambda a, at: message(a, at),
        lambda a, at: conversation_event("conversation.note", a, "c1", at),
        lambda a, at: conversation_event("conversation.transferred", a, "c1", at, group_id="sales"),
        lambda a, at: inbound(a, at),
    ],
    ids=["message", "note", "transfer", "inbound-contact"],
)
def test_any_action_restarts_the_timer(service: Service, activity: object) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest(opened(account), T0)
    service.ingest(activity(account, T0 + minutes(20)), T0 + minutes(20))  # type: ignore[operator]

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


def test_an_older_settings_update_does_not_undo_a_newer_one(service: Service) -> None:
    account = account_with(service, close_after="PT10M")
    service.ingest(settings_event(account, T0 - minutes(90), close_after=None), T0)
    service.ingest(opened(account), T0)
    assert service.conversation(account, "c1")[1] == T0 + minutes(10)


# --- ordering and duplicates ----------------------------------------------------------------


def test_the_same_payload_twice_changes_nothing(service: Service) -> None:
    account = account_with(service, close_after="PT30M", window="PT1H")
    batch = [opened(account, agent_id="ana"), message(account, T0 + minutes(1))]
    batch.append(agent_close(account, T0 + minutes(2)))
    batch.append(inbound(account, T0 + minutes(3)))

    first = service.ingest(batch, T0 + minutes(3))
    again = service.ingest(batch, T0 + minutes(4))

    assert (first.applied, first.duplicates) == (4, 0)
    assert (again.applied, again.duplicates) == (0, 4)
    assert service.count_decisions(account) == 1


def test_events_applied_in_reverse_order_give_the_same_conversation(service: Service) -> None:
    history = [
        (opened, {"agent_id": "ana"}),
        (message, {}),
        (agent_close, {}),
        (opened, {"agent_id": "bruno"}),
    ]
    results = []
    for order in (history, list(reversed(history))):
        account = account_with(service, close_after="PT30M")
        events = [
            build(account, at=T0 + minutes(i), **fields)  # type: ignore[operator]
            if build is not message and build is not agent_close
            else build(account, T0 + minutes(i))  # type: ignore[operator]
            for i, (build, fields) in enumerate(history)
        ]
        for item in events if order is history else list(reversed(events)):
            service.ingest(item, T0 + minutes(10))
        state, due = service.conversation(account, "c1")
        results.append((state.status, state.last_activity_at, state.assignee_agent_id, due))

    assert (
        results[0]
        == results[1]
        == (
            Status.OPEN,
            T0 + minutes(3),
            "bruno",
            T0 + minutes(33),
        )
    )


def test_a_close_older_than_an_applied_reopen_is_ignored(service: Service) -> None:
    account = account_with(service)
    service.ingest([opened(account), opened(account, at=T0 + minutes(10))], T0 + minutes(10))
    service.ingest(agent_close(account, T0 + minutes(5)), T0 + minutes(11))
    state, _ = service.conversation(account, "c1")
    assert state.status is Status.OPEN
    assert state.last_activity_at == T0 + minutes(10)


def test_an_event_for_a_never_seen_conversation_creates_it_open(service: Service) -> None:
    account = account_with(service)
    service.ingest(message(account, T0), T0)
    state, _ = service.conversation(account, "c1")
    assert state.status is Status.OPEN


# --- routing --------------------------------------------------------------------------------


def routed(service: Service, account: str) -> dict:
    [decision] = [d for d in service.decisions(account) if d["type"] == "contact.routed"]
    return decision


def test_an_inbound_contact_with_an_open_conversation_stays_in_it(service: Service) -> None:
    account = account_with(service, window="PT1H")
    service.ingest(opened(account, agent_id="ana"), T0)
    service.ingest(inbound(account, T0 + minutes(1)), T0 + minutes(1))
    decision = routed(service, account)
    assert (decision["route"], decision["conversation_id"], decision["agent_id"]) == (
        "open_conversation",
        "c1",
        "ana",
    )


def test_inside_the_window_the_contact_goes_back_to_the_agent(service: Service) -> None:
    account = account_with(service, window="PT1H")
    service.ingest([opened(account), agent_close(account, T0 + minutes(1))], T0 + minutes(1))
    service.ingest(inbound(account, T0 + minutes(60)), T0 + minutes(60))
    assert (routed(service, account)["route"], routed(service, account)["agent_id"]) == (
        "previous_agent",
        "ana",
    )


def test_at_closed_at_plus_window_the_contact_is_new(service: Service) -> None:
    account = account_with(service, window="PT1H")
    service.ingest([opened(account), agent_close(account, T0)], T0)
    service.ingest(inbound(account, T0 + minutes(60)), T0 + minutes(60))
    assert routed(service, account)["route"] == "unassigned"


@pytest.mark.parametrize(
    ("setup", "route", "target"),
    [
        ({"bot": True}, "bot", None),
        ({"line_agent": "olga"}, "line_owner", ("agent_id", "olga")),
        ({"line_group": "sales"}, "line_owner", ("group_id", "sales")),
        ({}, "unassigned", None),
    ],
    ids=["bot", "owner-agent", "owner-group", "unassigned"],
)
def test_a_contact_closed_without_a_reason_is_new(
    service: Service, setup: dict, route: str, target: tuple[str, str] | None
) -> None:
    account = account_with(service, window="P1D", bot=setup.get("bot", False))
    if "line_agent" in setup or "line_group" in setup:
        service.ingest(
            event(
                "line.updated",
                account,
                T0,
                line_id="line-1",
                agent_id=setup.get("line_agent"),
                group_id=setup.get("line_group"),
            ),
            T0,
        )
    service.ingest([opened(account), agent_close(account, T0, reason=None)], T0)
    service.ingest(inbound(account, T0 + minutes(5)), T0 + minutes(5))

    decision = routed(service, account)
    assert decision["route"] == route
    if target:
        assert decision[target[0]] == target[1]


def test_a_deactivated_agent_does_not_get_the_contact_back(service: Service) -> None:
    account = account_with(service, window="P1D")
    service.ingest([opened(account), agent_close(account, T0)], T0)
    service.ingest(event("agent.updated", account, T0, agent_id="ana", active=False), T0)
    service.ingest(inbound(account, T0 + minutes(5)), T0 + minutes(5))
    assert routed(service, account)["route"] == "unassigned"


def test_after_an_auto_close_the_contact_is_new(service: Service) -> None:
    account = account_with(service, close_after="PT10M", window="P1D", bot=True)
    service.ingest(opened(account, agent_id="ana"), T0)
    service.close_due(T0 + minutes(10), account)
    service.ingest(inbound(account, T0 + minutes(11)), T0 + minutes(11))
    assert routed(service, account)["route"] == "bot"


def test_one_batch_is_applied_in_time_order(service: Service) -> None:
    account = account_with(service, window="PT1H")
    batch = [inbound(account, T0 + minutes(2)), agent_close(account, T0 + minutes(1))]
    service.ingest([*batch, opened(account)], T0 + minutes(2))
    assert routed(service, account)["route"] == "previous_agent"


# --- bad input and tenants ----------------------------------------------------------------


def test_bad_events_are_dead_lettered_and_the_rest_of_the_batch_is_applied(
    service: Service,
) -> None:
    account = account_with(service, bot=True)
    marker = new_id("bad")
    result = service.ingest(
        [
            f"not json {marker}",
            {"type": "conversation.exploded", "marker": marker},
            {**inbound(account, T0), "contact_id": None, "marker": marker},
            {**inbound(account, T0), "marker": marker, "pad": "x" * 70_000},
            {**inbound(account, T0 + timedelta(hours=1)), "marker": marker},
            inbound(account, T0),
        ],
        T0,
    )

    assert (result.applied, result.dead_lettered) == (1, 5)
    errors = sorted(row.error.split(":")[0].split(" ")[0] for row in service.dead_letters(marker))
    assert errors == ["contact_id", "not", "occurred_at", "payload", "type"]
    assert routed(service, account)["route"] == "bot"


def test_an_event_of_one_account_never_touches_another(service: Service) -> None:
    alice = account_with(service, close_after="PT10M")
    bob = account_with(service, close_after="PT10M")
    service.ingest(opened(bob, "shared-id"), T0)
    service.ingest(
        conversation_event(
            "conversation.closed", alice, "shared-id", T0 + minutes(1), closed_by="system"
        ),
        T0 + minutes(1),
    )

    bob_state, bob_due = service.conversation(bob, "shared-id")
    assert bob_state.status is Status.OPEN
    assert bob_due == T0 + minutes(10)
    assert service.conversation(alice, "shared-id")[0].status is Status.CLOSED


def test_the_same_event_id_in_two_accounts_is_two_events(service: Service) -> None:
    alice, bob = account_with(service, bot=True), account_with(service, bot=True)
    service.ingest([{**inbound(alice, T0), "event_id": "e-1"}], T0)
    service.ingest([{**inbound(bob, T0), "event_id": "e-1"}], T0)
    assert routed(service, alice)["route"] == routed(service, bob)["route"] == "bot"


# --- concurrency (PostgreSQL) ---------------------------------------------------------------


def test_two_sweeps_at_once_close_each_conversation_exactly_once(
    service: Service, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time; row locks are PostgreSQL's")
    account = account_with(service, close_after="PT1S")
    service.ingest([opened(account, f"c{i}") for i in range(200)], T0)
    # Small batches, so the two sweeps overlap many times.
    service.runtime.settings = service.runtime.settings.model_copy(update={"sweep_batch_size": 20})

    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            while close_due(service.runtime, T0 + minutes(1))[1]:
                pass
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors
    closes = [d["conversation_id"] for d in service.decisions(account)]
    assert sorted(closes) == sorted(f"c{i}" for i in range(200))


def test_decisions_are_stored_as_their_json(service: Service) -> None:
    account = account_with(service, bot=True)
    service.ingest(inbound(account, T0), T0)
    assert json.dumps(routed(service, account))


def test_a_dead_letter_is_logged_with_its_ids_and_without_its_payload(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    account = account_with(service)
    secret = "my card is 4111 1111 1111 1111"
    bad = {**inbound(account, T0), "contact_id": None, "note": secret}
    with caplog.at_level("INFO"):
        service.ingest([bad], T0)
    [record] = [r for r in caplog.records if r.name == "convlife.dead_letters"]
    assert (record.account_id, record.event_id) == (account, bad["event_id"])  # type: ignore[attr-defined]
    assert secret not in caplog.text
    assert [row.raw for row in service.dead_letters(secret)]  # kept in the database, though
