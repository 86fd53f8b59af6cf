"""Close deadlines: recomputed when an account's setting changes, and the sweep that closes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import NamedTuple

from redis.exceptions import RedisError
from sqlalchemy.engine import Connection

from events.decisions import AutoClosed
from events.names import HEARTBEAT_KEY, SWEEP_FAILURES_KEY
from events.parsing import storable
from policies.inactivity import auto_close, close_deadline
from policies.state import AccountSettings, Conversation
from service import counters, logs
from service.runtime import Runtime
from store import configuration, conversations, outbox
from store.conversations import ConversationKey, key_of

log = logging.getLogger("convlife.sweep")

_PAGE = 1000


def reschedule_account(connection: Connection, account_id: str, settings: AccountSettings) -> int:
    """Give every open conversation of the account the deadline its new setting implies.

    A shorter setting can make many conversations due at once; the sweep then closes them in
    batches. Returns how many conversations were rescheduled.
    """
    in_one_statement = conversations.reschedule_open(connection, account_id, settings)
    if in_one_statement is not None:
        return in_one_statement
    after: str | None = None
    total = 0
    while True:
        page = conversations.open_of_account(connection, account_id, after, _PAGE)
        if not page:
            return total
        conversations.save(connection, {key_of(c): (c, close_deadline(c, settings)) for c in page})
        total += len(page)
        after = page[-1].conversation_id


class SweepBatch(NamedTuple):
    claimed: int
    """Rows claimed (closed, rescheduled or quarantined)."""
    decisions: list[AutoClosed]
    """The auto_closed decisions stored by this batch (one already stored is not repeated)."""
    quarantined: int
    """Rows set aside because they could not be read or closed."""


def close_due(runtime: Runtime, now: datetime) -> SweepBatch:
    """Close one batch of due conversations in one transaction.

    A claimed one whose setting has changed gets its new deadline instead of a close. A row
    that cannot be read or closed is quarantined (deadline cleared, dead letter naming it) in
    the same transaction, and the rest of the batch is closed as usual.
    """
    settings = runtime.settings
    with runtime.engine.begin() as connection:
        claimed = conversations.claim_due(connection, now, settings.sweep_batch_size)
        if not len(claimed):
            return SweepBatch(0, [], 0)
        faulty = dict(claimed.unreadable)
        by_account = configuration.account_settings(
            connection,
            {c.account_id for c in claimed.conversations},
            settings.default_account_settings,
        )
        changed: dict[ConversationKey, tuple[Conversation, datetime | None]] = {}
        decisions: dict[ConversationKey, AutoClosed] = {}
        for conversation in claimed.conversations:
            key = key_of(conversation)
            try:
                changed[key], decision = _decide(conversation, by_account[key[0]], now)
            except Exception as error:
                if not conversations.is_row_fault(error):
                    raise
                faulty[key] = conversations.describe_fault(error)
                continue
            if decision is not None:
                decisions[key] = decision
        stored = _write(connection, changed, decisions, faulty)
        _quarantine(connection, faulty, now)
    made = [d for d in decisions.values() if d.decision_id in stored]
    return SweepBatch(len(claimed), made, len(faulty))


def _decide(
    conversation: Conversation, settings: AccountSettings, now: datetime
) -> tuple[tuple[Conversation, datetime | None], AutoClosed | None]:
    closing = auto_close(conversation, settings, now)
    if closing is None:
        # Not due after all (its setting changed): store the deadline it has now.
        return (conversation, close_deadline(conversation, settings)), None
    closed, decision = closing
    return (closed, None), decision


def _write(
    connection: Connection,
    changed: dict[ConversationKey, tuple[Conversation, datetime | None]],
    decisions: dict[ConversationKey, AutoClosed],
    faulty: dict[ConversationKey, str],
) -> set[str]:
    """Save the batch in one go; if a row's values make that fail, save row by row and add the
    ones that fail to `faulty`. Returns the decision ids stored."""
    try:
        with connection.begin_nested():
            conversations.save(connection, changed)
            return set(outbox.add_decisions(connection, decisions.values()))
    except Exception as error:
        if not conversations.is_row_fault(error):
            raise
    stored: set[str] = set()
    for key, row in changed.items():
        try:
            with connection.begin_nested():
                conversations.save(connection, {key: row})
                stored.update(
                    outbox.add_decisions(connection, [decisions[key]] * (key in decisions))
                )
        except Exception as error:
            if not conversations.is_row_fault(error):
                raise
            faulty[key] = conversations.describe_fault(error)
    return stored


def _quarantine(connection: Connection, faulty: dict[ConversationKey, str], now: datetime) -> None:
    """Take faulty rows out of the due set, so no sweep trips on them again, and leave a dead
    letter per row that names it and says why (an operator fixes the row, then reschedules it
    with `convlife reindex`)."""
    if not faulty:
        return
    conversations.quarantine(connection, faulty)
    for (account_id, conversation_id), reason in sorted(faulty.items()):
        error = (
            f"sweep: conversation {conversation_id!r} of account {account_id!r} cannot be "
            f"closed and was quarantined (its deadline cleared): {reason}"
        )
        raw = json.dumps(
            {
                "quarantined_by": "sweep",
                "account_id": account_id,
                "conversation_id": conversation_id,
            }
        )
        outbox.add_dead_letter(
            connection,
            raw=storable(raw),
            error=storable(error),
            received_at=now,
            account_id=account_id,
            reason="quarantined",
        )
        log.error("%s", error)


def sweep(runtime: Runtime, clock: Callable[[], datetime]) -> int:
    """Close due conversations batch after batch, within the sweep's time budget.

    Each batch reads the clock once. Returns how many conversations were closed. The heartbeat
    is written after the work, so it proves a sweep succeeded; a sweep that raises is counted
    (`convlife health` and the `convlife_sweep_errors` metric show it) and re-raised.
    """
    try:
        closed = _sweep(runtime, clock)
    except Exception as error:
        _best_effort(partial(_record_failure, runtime, clock(), error))
        raise
    _best_effort(partial(_record_success, runtime, clock()))
    return closed


def _sweep(runtime: Runtime, clock: Callable[[], datetime]) -> int:
    started = time.monotonic()
    closed = 0
    while True:
        batch = close_due(runtime, clock())
        closed += len(batch.decisions)
        if batch.decisions or batch.quarantined:
            outbox.relay(
                runtime.engine,
                runtime.redis,
                clock(),
                only=[decision.decision_id for decision in batch.decisions],
                with_dead_letters=batch.quarantined > 0,
            )
            _best_effort(partial(counters.record, runtime.redis, made=batch.decisions))
            for decision in batch.decisions:
                logs.decision(decision)
        if batch.quarantined:
            _best_effort(
                partial(counters.record_sweep, runtime.redis, quarantined=batch.quarantined)
            )
        full = batch.claimed >= runtime.settings.sweep_batch_size
        if not full or time.monotonic() - started > runtime.settings.sweep_time_budget:
            return closed


def _record_success(runtime: Runtime, now: datetime) -> None:
    pipeline = runtime.redis.pipeline(transaction=False)
    pipeline.set(HEARTBEAT_KEY, now.isoformat())
    pipeline.delete(SWEEP_FAILURES_KEY)
    pipeline.execute()


def _record_failure(runtime: Runtime, now: datetime, error: BaseException) -> None:
    lines = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0] if lines else ''}"[:500]
    pipeline = runtime.redis.pipeline(transaction=False)
    pipeline.hincrby(SWEEP_FAILURES_KEY, "count", 1)
    pipeline.hsetnx(SWEEP_FAILURES_KEY, "since", now.isoformat())
    pipeline.hset(SWEEP_FAILURES_KEY, "error", storable(text))
    pipeline.execute()
    counters.record_sweep(runtime.redis, errors=1)


def _best_effort(action: Callable[[], object]) -> None:
    """Heartbeat and metrics must never stop closes: a Redis error here is only logged."""
    try:
        action()
    except RedisError as error:
        log.warning("sweep bookkeeping skipped: %s", error)
