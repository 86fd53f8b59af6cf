"""A shorter setting that makes many conversations due at once.

On PostgreSQL their stored next check is not rewritten first (writing each row and every index
of it, before the first close, took longer than the closes): the scope gets a due scan, and the
sweep claims them by last activity, as the settings in force make them due, closing (or
warning about) each in one write. Whatever the store, each closes once, at the first sweep after
the change, and the conversations it does not make due keep the next check the rule gives.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from service.runtime import Runtime
from store import conversations
from tests.service.builders import T0, account_with, minutes, opened
from tests.service.test_line_settings import line_update
from tests.support import Service, close_refused, settings_event

DAY = timedelta(days=1)
CHANGED_AT = T0 + 2 * DAY


def scans_of(service: Service, account: str) -> list[conversations.DueScan]:
    with service.runtime.engine.connect() as connection:
        return [s for s in conversations.due_scans_pending(connection) if s.account_id == account]


def stored_next_check(service: Service, account: str, conversation: str) -> object:
    with service.runtime.engine.connect() as connection:
        found = conversations.get(connection, account, conversation)
    assert found is not None
    return found[1]


@pytest.fixture
def small_batches(service: Service) -> Service:
    """The same stores, a sweep batch of 5: the due conversations take several batches."""
    settings = service.runtime.settings.model_copy(update={"sweep_batch_size": 5})
    return Service(
        Runtime(settings=settings, engine=service.runtime.engine, redis=service.runtime.redis)
    )


def test_every_conversation_a_shorter_setting_makes_due_closes_once_at_the_next_sweep(
    service: Service, small_batches: Service, database_url: str
) -> None:
    account = account_with(service, close_after="P30D")
    idle = [f"c{n}" for n in range(12)]
    service.ingest([opened(account, c) for c in idle], T0)
    recent = CHANGED_AT - minutes(30)
    service.ingest(opened(account, "recent", at=recent), recent)

    service.ingest(settings_event(account, CHANGED_AT, close_after="P1D"), CHANGED_AT)

    if database_url.startswith("postgresql"):
        assert stored_next_check(service, account, "c0") == T0 + 30 * DAY  # not rewritten
        assert [s.line_id for s in scans_of(service, account)] == [None]
    # What `conversation show` says: the rule's next check, already come.
    assert service.conversation(account, "c0")[1] == T0 + DAY
    assert service.conversation(account, "recent")[1] == recent + DAY

    closed = small_batches.close_due(CHANGED_AT, account)

    assert sorted(c.conversation_id for c in closed) == sorted(idle)
    assert {(c.last_activity_at, c.closed_at) for c in closed} == {(T0, CHANGED_AT)}
    assert scans_of(service, account) == []
    assert service.close_due(CHANGED_AT + DAY - minutes(31), account) == []
    [later] = service.close_due(recent + DAY, account)
    assert later.conversation_id == "recent"
    assert service.count_decisions(account) == len(idle) + 1


def test_a_due_scan_outlives_a_sweep_whose_transaction_fails(
    service: Service, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("only PostgreSQL leaves conversations to a due scan")
    account = account_with(service, close_after="P30D")
    service.ingest([opened(account, f"c{n}") for n in range(3)], T0)
    service.ingest(settings_event(account, CHANGED_AT, close_after="P1D"), CHANGED_AT)
    [scan] = scans_of(service, account)
    settings = replace(
        service.runtime.settings.default_account_settings, inactivity_close_after=DAY
    )

    with service.runtime.engine.connect() as other_sweep:
        transaction = other_sweep.begin()
        held = conversations.claim_due_at_once(other_sweep, scan, settings, (), CHANGED_AT, 100)
        assert len(held) == 3
        # Meanwhile a sweep finds every due conversation held: it ends no scan that is not done.
        assert service.close_due(CHANGED_AT, account) == []
        assert scans_of(service, account) == [scan]
        transaction.rollback()  # the other sweep fails: its closes were never written

    closed = service.close_due(CHANGED_AT, account)
    assert sorted(c.conversation_id for c in closed) == ["c0", "c1", "c2"]
    assert scans_of(service, account) == []


def test_a_conversation_of_a_due_scan_that_cannot_be_closed_is_quarantined_once(
    service: Service, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL trigger refuses the write; only PostgreSQL makes due scans")
    bad = f"bad-{uuid.uuid4().hex[:8]}"
    account = account_with(service, close_after="P30D")
    service.ingest([opened(account, "c1"), opened(account, bad)], T0)
    service.ingest(settings_event(account, CHANGED_AT, close_after="P1D"), CHANGED_AT)

    with close_refused(service.runtime.engine, bad):
        [closed] = service.close_due(CHANGED_AT, account)
    assert closed.conversation_id == "c1"
    # Quarantined (its next check cleared), it is no longer in the scan: the scan ends, and
    # no later sweep trips on it again.
    assert scans_of(service, account) == []
    assert service.close_due(CHANGED_AT + DAY, account) == []
    assert len(service.dead_letters(bad)) == 1


def test_an_accounts_due_scan_leaves_out_a_line_with_its_own_close_setting_until_it_changes(
    service: Service,
) -> None:
    account = account_with(service, close_after="P30D")
    service.ingest(line_update(account, "slow", T0 - minutes(1), inactivity_close_after="P20D"), T0)
    service.ingest([opened(account, "c1"), opened(account, "c2", line_id="slow")], T0)

    service.ingest(settings_event(account, CHANGED_AT, close_after="P1D"), CHANGED_AT)
    [closed] = service.close_due(CHANGED_AT, account)
    assert closed.conversation_id == "c1"
    assert service.conversation(account, "c2")[1] == T0 + 20 * DAY

    # The line's own setting goes: its conversation follows the account's, due at once.
    line_changed = CHANGED_AT + minutes(1)
    service.ingest(line_update(account, "slow", line_changed), line_changed)
    assert service.conversation(account, "c2")[1] == T0 + DAY
    [closed] = service.close_due(line_changed, account)
    assert (closed.conversation_id, closed.inactivity_close_after) == ("c2", DAY)
    assert scans_of(service, account) == []


def test_a_lines_shorter_setting_closes_its_conversations_at_once_in_the_lines_name(
    service: Service,
) -> None:
    """A line's own scan: its decisions say the line set the close setting, the account's
    conversations elsewhere stay open."""
    account = account_with(service, close_after="P30D")
    service.ingest([opened(account, "c1", line_id="fast"), opened(account, "c2")], T0)

    service.ingest(
        line_update(account, "fast", CHANGED_AT, inactivity_close_after="P1D"), CHANGED_AT
    )
    [closed] = service.close_due(CHANGED_AT, account)

    assert (closed.conversation_id, closed.inactivity_close_after) == ("c1", DAY)
    assert "line fast closes conversations after 1d without action" in closed.reason
    assert service.conversation(account, "c2")[1] == T0 + 30 * DAY
