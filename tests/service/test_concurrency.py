"""Several workers at once: each close and each event is applied exactly once.

The sweeps run on PostgreSQL only (SKIP LOCKED is what lets them share the work); the ingest
races run on both stores, since SQLite must stay correct with several processes too.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from events.parsing import parse_event
from service.deadlines import close_due, sweep
from service.ingest import IngestResult, apply_events
from store.tables import decisions
from tests.service.builders import T0, account_with, inbound, message, minutes, opened
from tests.support import Service, conversation_event, new_id, settings_event

pytestmark = pytest.mark.timeout(60)


def at_once(*work: Callable[[], Any]) -> list[Any]:
    """Run each callable in its own thread, released together; their results, in order."""
    start = threading.Barrier(len(work), timeout=10)
    results: list[Any] = [None] * len(work)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait()
            results[index] = work[index]()
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    return results


def closes_per_conversation(service: Service, account: str) -> Counter[str]:
    with service.runtime.engine.connect() as connection:
        rows = connection.execute(
            select(decisions.c.conversation_id).where(
                decisions.c.account_id == account,
                decisions.c.type == "conversation.auto_closed",
            )
        ).all()
    return Counter(row.conversation_id for row in rows)


def two_hundred_due(service: Service, database_url: str, batch_size: int) -> str:
    """An account whose conversations c0..c199 are due at T0 + 1 min, swept `batch_size` at a
    time: small batches, so two sweeps overlap many times. PostgreSQL only."""
    if not database_url.startswith("postgresql"):
        pytest.skip("sweeps share work through PostgreSQL's SKIP LOCKED")
    account = account_with(service, close_after="PT1S")
    service.ingest([opened(account, f"c{i}") for i in range(200)], T0)
    settings = service.runtime.settings.model_copy(update={"sweep_batch_size": batch_size})
    service.runtime.settings = settings
    return account


def test_two_sweeps_at_once_close_each_of_200_conversations_exactly_once(
    service: Service, database_url: str
) -> None:
    account = two_hundred_due(service, database_url, batch_size=10)

    def clock() -> datetime:
        return T0 + minutes(1)

    closed = at_once(lambda: sweep(service.runtime, clock), lambda: sweep(service.runtime, clock))

    per_conversation = closes_per_conversation(service, account)
    assert set(per_conversation) == {f"c{i}" for i in range(200)}
    assert set(per_conversation.values()) == {1}
    assert sum(closed) >= 200  # each sweep counts its own closes (others' accounts too)
    assert service.close_due(T0 + minutes(2), account) == []


def test_two_close_due_loops_at_once_close_each_conversation_exactly_once(
    service: Service, database_url: str
) -> None:
    account = two_hundred_due(service, database_url, batch_size=20)

    def close_until_nothing_is_due() -> None:
        while close_due(service.runtime, T0 + minutes(1))[0]:
            pass

    at_once(close_until_nothing_is_due, close_until_nothing_is_due)

    per_conversation = closes_per_conversation(service, account)
    assert set(per_conversation) == {f"c{i}" for i in range(200)}
    assert set(per_conversation.values()) == {1}


def test_two_sweeps_at_once_close_each_conversation_a_settings_change_made_due_exactly_once(
    service: Service, database_url: str
) -> None:
    """The due scan's closes: each batch claimed and closed in one statement
    (store.conversations.close_due_at_once), two sweeps taking batches of 10 side by side."""
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL leaves conversations to a due scan")
    account = account_with(service, close_after="P30D")
    service.ingest([opened(account, f"c{i}") for i in range(200)], T0)
    changed_at = T0 + timedelta(days=2)
    service.ingest(settings_event(account, changed_at, close_after="P1D"), changed_at)
    service.runtime.settings = service.runtime.settings.model_copy(update={"sweep_batch_size": 10})

    def clock() -> datetime:
        return changed_at

    at_once(lambda: sweep(service.runtime, clock), lambda: sweep(service.runtime, clock))

    per_conversation = closes_per_conversation(service, account)
    assert set(per_conversation) == {f"c{i}" for i in range(200)}
    assert set(per_conversation.values()) == {1}
    assert service.close_due(changed_at + timedelta(days=1), account) == []


def test_the_same_batch_delivered_to_two_workers_at_once_is_applied_once(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M", bot=True)
    batch = [opened(account, f"c{i}", contact=f"k{i}") for i in range(20)]
    batch += [inbound(account, T0 + minutes(1), contact="someone-new")]

    first, second = at_once(*[lambda: service.ingest(batch, T0 + minutes(1))] * 2)

    assert isinstance(first, IngestResult)
    assert sorted([first.applied, second.applied]) == [0, 21]
    assert first.duplicates + second.duplicates == 21
    assert service.count_decisions(account) == 1


def test_two_workers_seeing_the_same_new_conversation_at_once_both_apply_their_event(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    note = conversation_event("conversation.note", account, "new", T0 + minutes(5))
    first_message = message(account, T0, conversation="new")

    results = at_once(
        lambda: service.ingest(note, T0 + minutes(5)),
        lambda: service.ingest(first_message, T0 + minutes(5)),
    )

    assert [r.applied for r in results] == [1, 1]
    state, due = service.conversation(account, "new")
    assert (state.last_activity_at, due) == (T0 + minutes(5), T0 + minutes(35))


def test_activity_on_many_conversations_from_two_workers_at_once_keeps_the_newest(
    service: Service,
) -> None:
    account = account_with(service, close_after="PT30M")
    service.ingest([opened(account, f"c{i}") for i in range(30)], T0)
    earlier = [message(account, T0 + minutes(1), conversation=f"c{i}") for i in range(30)]
    later = [message(account, T0 + minutes(2), conversation=f"c{i}") for i in reversed(range(30))]

    at_once(
        lambda: service.ingest(earlier, T0 + minutes(2)),
        lambda: service.ingest(later, T0 + minutes(2)),
    )

    deadlines = {service.conversation(account, f"c{i}")[1] for i in range(30)}
    assert deadlines == {T0 + minutes(32)}


def test_a_settings_change_racing_a_batch_that_opens_a_conversation_still_reaches_it(
    service: Service,
) -> None:
    # The account's first settings change arrives on another worker while a batch that opens
    # one of its conversations is still uncommitted: the reschedule cannot see that
    # conversation, so the change must wait for the batch (or the batch for the change).
    account = new_id("acct")
    change = settings_event(account, T0, close_after="PT2M")
    with service.runtime.engine.begin() as connection:
        apply_events(connection, [parse_event(opened(account, "c1"))], service.runtime, T0)
        other_worker = threading.Thread(target=lambda: service.ingest(change, T0))
        other_worker.start()
        other_worker.join(timeout=1)
    other_worker.join(timeout=20)

    assert not other_worker.is_alive()
    assert service.conversation(account, "c1")[1] == T0 + minutes(2)
