"""Close deadlines: recomputed when an account's setting changes, and the sweep that closes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial

from redis.exceptions import RedisError
from sqlalchemy.engine import Connection

from events.decisions import AutoClosed
from events.names import HEARTBEAT_KEY
from policies.inactivity import auto_close, close_deadline
from policies.state import AccountSettings, Conversation
from store import configuration, conversations, outbox
from store.conversations import ConversationKey, key_of
from worker import logs, metrics
from worker.runtime import Runtime

log = logging.getLogger("convlife.sweep")

_PAGE = 1000


def reschedule_account(connection: Connection, account_id: str, settings: AccountSettings) -> int:
    """Give every open conversation of the account the deadline its new setting implies.

    A shorter setting can make many conversations due at once; the sweep then closes them in
    batches. Returns how many conversations were rescheduled.
    """
    in_one_statement = conversations.reschedule_open(
        connection, account_id, settings.inactivity_close_after
    )
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


def close_due(runtime: Runtime, now: datetime) -> tuple[int, list[AutoClosed]]:
    """Close one batch of due conversations in one transaction.

    Returns how many were claimed and the decisions (a claimed one whose setting has changed
    gets its new deadline instead of a close).
    """
    settings = runtime.settings
    with runtime.engine.begin() as connection:
        due = conversations.claim_due(connection, now, settings.sweep_batch_size)
        if not due:
            return 0, []
        by_account = configuration.account_settings(
            connection, {c.account_id for c in due}, settings.default_account_settings
        )
        changed: dict[ConversationKey, tuple[Conversation, datetime | None]] = {}
        decisions: list[AutoClosed] = []
        for conversation in due:
            account_settings = by_account[conversation.account_id]
            closing = auto_close(conversation, account_settings, now)
            if closing is None:
                # Not due after all (its setting changed): store the deadline it has now.
                changed[key_of(conversation)] = (
                    conversation,
                    close_deadline(conversation, account_settings),
                )
                continue
            closed, decision = closing
            changed[key_of(closed)] = (closed, None)
            decisions.append(decision)
        conversations.save(connection, changed)
        outbox.add_decisions(connection, decisions)
    return len(due), decisions


def sweep(runtime: Runtime, clock: Callable[[], datetime]) -> int:
    """Close due conversations batch after batch, within the sweep's time budget.

    Each batch reads the clock once. Returns how many conversations were closed.
    """
    started = time.monotonic()
    closed = 0
    _best_effort(lambda: runtime.redis.set(HEARTBEAT_KEY, clock().isoformat()))
    while True:
        claimed, decisions = close_due(runtime, clock())
        closed += len(decisions)
        if decisions:
            outbox.relay(
                runtime.engine,
                runtime.redis,
                clock(),
                only=[decision.decision_id for decision in decisions],
                with_dead_letters=False,
            )
            _best_effort(partial(metrics.record, runtime.redis, made=decisions))
            for decision in decisions:
                logs.decision(decision)
        full = claimed >= runtime.settings.sweep_batch_size
        if not full or time.monotonic() - started > runtime.settings.sweep_time_budget:
            return closed


def _best_effort(action: Callable[[], object]) -> None:
    """Heartbeat and metrics must never stop closes: a Redis error here is only logged."""
    try:
        action()
    except RedisError as error:
        log.warning("sweep bookkeeping skipped: %s", error)
