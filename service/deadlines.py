"""Close deadlines: recomputed when an account's or a line's settings change, and the sweep
that warns and closes."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from redis.exceptions import RedisError
from sqlalchemy.engine import Connection

from events.decisions import AutoClosed, CloseWarning
from events.names import HEARTBEAT_KEY, SWEEP_FAILURES_KEY
from events.parsing import storable
from policies.configuration import (
    effective,
    ignores_account_deadlines,
    overrides_deadlines,
    set_by,
)
from policies.inactivity import auto_close_decision, closing, next_check, warn
from policies.state import AccountSettings, Conversation, LineSettings
from service import counters, logs
from service.runtime import Runtime
from store import configuration, conversations, outbox
from store.conversations import ConversationKey, key_of
from store.db import checkpoint_when_due, keeping_the_turn

log = logging.getLogger("convlife.sweep")

_PAGE = 1000


def reschedule_account(
    connection: Connection, account_id: str, settings: AccountSettings, now: datetime
) -> int:
    """Give every open conversation of the account the next check its new settings imply
    (`policies.inactivity.next_check`: the warning time or the close deadline).

    Conversations on a line that overrides a deadline setting get the next check of the line's
    effective settings (policies.configuration.effective), and none at all is rewritten on a
    line that overrides every one of them: the account's change does not move its deadlines.
    A shorter setting can make many conversations due at once; the sweep then warns and closes
    them in batches (on PostgreSQL without writing their next check first:
    `store.conversations.reschedule_open`). Returns how many conversations were rescheduled.
    """
    overriding = _lines_overriding_deadlines(connection, account_id)
    total = _reschedule(connection, account_id, settings, now, except_lines=overriding)
    for line_id, overrides in sorted(overriding.items()):
        if not ignores_account_deadlines(overrides):
            line_settings = effective(settings, overrides)
            total += reschedule_line(connection, account_id, line_id, line_settings, now)
    return total


def _lines_overriding_deadlines(connection: Connection, account_id: str) -> dict[str, LineSettings]:
    """The account's lines that override a deadline setting, with their overrides: an
    account's change leaves their conversations to each line's effective settings."""
    return {
        line_id: overrides
        for line_id, overrides in configuration.line_overrides(connection, account_id).items()
        if overrides_deadlines(overrides)
    }


def reschedule_line(
    connection: Connection, account_id: str, line_id: str, settings: AccountSettings, now: datetime
) -> int:
    """Give every open conversation on one line the deadline `settings` imply (the line's
    effective settings); returns how many were rescheduled."""
    return _reschedule(connection, account_id, settings, now, line_id=line_id)


def _reschedule(
    connection: Connection,
    account_id: str,
    settings: AccountSettings,
    now: datetime,
    *,
    line_id: str | None = None,
    except_lines: Collection[str] = (),
) -> int:
    where: dict[str, Any] = {"line_id": line_id, "except_lines": except_lines}
    in_one_statement = conversations.reschedule_open(connection, account_id, settings, now, **where)
    if in_one_statement is not None:
        return in_one_statement
    after: str | None = None
    total = 0
    while True:
        page = conversations.open_of_account(connection, account_id, after, _PAGE, **where)
        if not page:
            return total
        conversations.save(connection, {key_of(c): (c, next_check(c, settings)) for c in page})
        total += len(page)
        after = page[-1].conversation_id


class SweepBatch(NamedTuple):
    claimed: int
    """Rows claimed (closed, warned, rescheduled or quarantined)."""
    decisions: list[AutoClosed | CloseWarning]
    """The auto_closed and close_warning decisions stored by this batch (one already stored is
    not repeated)."""
    quarantined: int
    """Rows set aside because they could not be read or closed."""


def close_due(runtime: Runtime, now: datetime, limit: int | None = None) -> SweepBatch:
    """Close (or warn about) one batch of due conversations in one transaction: at most
    `limit` of them (by default `sweep_batch_size`).

    A claimed conversation past its deadline is closed; one whose warning time has come is
    warned about and then waits for its deadline; one whose setting has changed gets its new
    next check instead. A row
    that cannot be read or closed is quarantined (deadline cleared, dead letter naming it) in
    the same transaction, and the rest of the batch is closed as usual.
    """
    settings = runtime.settings
    limit = limit or settings.sweep_batch_size
    with runtime.engine.begin() as connection:
        claimed = conversations.claim_due(connection, now, limit)
        at_once = _AtOnce(claimed)
        if len(claimed) < limit:
            at_once = _claim_due_at_once(connection, claimed, runtime, now, limit)
            claimed = at_once.claimed
        taken = len(claimed) + at_once.closed_in_sql
        if not len(claimed):
            _end_scans(connection, at_once.exhausted, now)
            return SweepBatch(taken, list(at_once.closed), 0)
        faulty = dict(claimed.unreadable)
        by_account = configuration.account_settings(
            connection,
            {c.account_id for c in claimed.conversations},
            settings.default_account_settings,
        )
        by_line = configuration.line_owners(
            connection, {(c.account_id, c.line_id) for c in claimed.conversations}
        )
        # The settings that apply on each line, worked out once per line, not once per row.
        applying: dict[tuple[str, str], tuple[AccountSettings, LineSettings]] = {}
        batch = _Batch()
        for conversation in claimed.conversations:
            key = key_of(conversation)
            line_key = (conversation.account_id, conversation.line_id)
            try:
                if line_key not in applying:
                    overrides = by_line[line_key].overrides
                    applying[line_key] = (effective(by_account[key[0]], overrides), overrides)
                _decide(batch, key, conversation, *applying[line_key], now)
            except Exception as error:
                if not conversations.is_row_fault(error):
                    raise
                faulty[key] = conversations.describe_fault(error)
        stored = _write(connection, batch, now, faulty)
        _quarantine(connection, faulty, now)
        _end_scans(connection, at_once.exhausted, now)
    made: list[AutoClosed | CloseWarning] = [*at_once.closed]
    made += [d for d in batch.decisions.values() if d.decision_id in stored]
    return SweepBatch(taken, made, len(faulty))


class _ScanScope(NamedTuple):
    scan: conversations.DueScan
    settings: AccountSettings
    """Those in force on the scope now."""
    except_lines: frozenset[str]
    line: LineSettings
    """A line scope's overrides (none for an account's scope: its lines override no deadline
    setting)."""


class _AtOnce(NamedTuple):
    """What a batch took from the pending due scans."""

    claimed: conversations.Claimed
    """The batch's claimed rows (those claimed by their deadline first), to decide one by one."""
    closed: tuple[AutoClosed, ...] = ()
    """The decisions of the closes made in SQL (`_close_at_once`), stored."""
    closed_in_sql: int = 0
    """How many rows those closes took (a decision stored before is not stored again)."""
    exhausted: tuple[_ScanScope, ...] = ()
    """The scans this batch found exhausted (to end once its closes are written)."""


def _claim_due_at_once(
    connection: Connection,
    claimed: conversations.Claimed,
    runtime: Runtime,
    now: datetime,
    limit: int,
) -> _AtOnce:
    """Fill the batch (up to `limit` rows) from the pending due scans (conversations a
    settings change made due at once, left with their old next check): closed at once in SQL
    where the scope's settings make every due row a close, else claimed beside `claimed`."""
    rows = list(claimed.conversations)
    unreadable = dict(claimed.unreadable)
    seen = {key_of(c) for c in rows} | set(unreadable)
    closed: list[AutoClosed] = []
    closed_in_sql = 0
    exhausted: list[_ScanScope] = []
    for scan in conversations.due_scans_pending(connection):
        wanted = limit - len(rows) - len(unreadable) - closed_in_sql
        if wanted <= 0:
            break
        scope = _scan_scope(connection, scan, runtime.settings.default_account_settings)
        in_sql = _close_at_once(connection, scope, now, wanted, seen)
        if in_sql is not None:
            count, made = in_sql
            closed += made
            closed_in_sql += count
            if count < wanted:
                exhausted.append(scope)
            continue
        # Settings that give no deadline in SQL (business hours, Never) claim nothing: the
        # change that made them so wrote every conversation of the scope, so the scan ends.
        more = conversations.claim_due_at_once(
            connection, scan, scope.settings, scope.except_lines, now, wanted
        )
        # A row already claimed by its deadline is locked by this transaction, which SKIP
        # LOCKED does not skip: taken once.
        rows.extend(c for c in more.conversations if key_of(c) not in seen)
        unreadable |= {k: why for k, why in more.unreadable.items() if k not in seen}
        seen |= {key_of(c) for c in more.conversations} | set(more.unreadable)
        if len(more) < wanted:
            exhausted.append(scope)
    claimed = conversations.Claimed(rows, unreadable)
    return _AtOnce(claimed, tuple(closed), closed_in_sql, tuple(exhausted))


def _close_at_once(
    connection: Connection,
    scope: _ScanScope,
    now: datetime,
    limit: int,
    seen: Collection[ConversationKey],
) -> tuple[int, list[AutoClosed]] | None:
    """Close up to `limit` due conversations of the scope in SQL and store their decisions
    (`store.conversations.close_due_at_once`, which says when it can): how many it closed, and
    the decisions stored (one stored before, the same idle period closed already, is not
    repeated). None, having written nothing, where it cannot, or where a row's values make
    the closes or their decisions fail: the batch then claims the scope's rows to decide one by
    one, and quarantines that row."""
    scan = scope.scan
    if not conversations.closes_at_once(connection, scope.settings):
        return None
    skip = {conversation for account, conversation in seen if account == scan.account_id}
    try:
        with connection.begin_nested():
            idle = conversations.close_due_at_once(
                connection, scan, scope.settings, scope.except_lines, now, limit, skip=skip
            )
            if idle is None:
                return None
            who = set_by("inactivity_close_after", scan.line_id or "", scope.line)
            decisions = [closing(row, scope.settings, now, who=who) for row in idle]
            stored = set(outbox.add_decisions(connection, decisions, now))
    except Exception as error:
        if not conversations.is_row_fault(error):
            raise
        return None
    return len(idle), [d for d in decisions if d.decision_id in stored]


def _scan_scope(
    connection: Connection, scan: conversations.DueScan, default: AccountSettings
) -> _ScanScope:
    """The settings in force on a scan's scope now, and the lines it leaves out: an account's
    own scope leaves out the lines that override its deadline settings (as
    `reschedule_account` does); a line's takes the line's effective settings."""
    account = configuration.account_settings(connection, {scan.account_id}, default)
    if scan.line_id is None:
        overriding = _lines_overriding_deadlines(connection, scan.account_id)
        return _ScanScope(scan, account[scan.account_id], frozenset(overriding), LineSettings())
    lines = configuration.line_overrides(connection, scan.account_id)
    overrides = lines.get(scan.line_id, LineSettings())
    return _ScanScope(scan, effective(account[scan.account_id], overrides), frozenset(), overrides)


def _end_scans(connection: Connection, ended: Iterable[_ScanScope], now: datetime) -> None:
    for scope in ended:
        conversations.end_due_scan(connection, scope.scan, scope.settings, scope.except_lines, now)


class _Batch:
    """What the sweep decided for a batch: the closes (stored by one statement), the other
    conversations it changed (each with its next check), and the decisions."""

    def __init__(self) -> None:
        self.closes: list[ConversationKey] = []
        self.changed: dict[ConversationKey, tuple[Conversation, datetime | None]] = {}
        self.decisions: dict[ConversationKey, AutoClosed | CloseWarning] = {}


def _decide(
    batch: _Batch,
    key: ConversationKey,
    conversation: Conversation,
    settings: AccountSettings,
    line: LineSettings,
    now: datetime,
) -> None:
    # The close first: past the deadline a warning would come too late to act on (a sweep
    # that was down, a setting that moved the deadline into the past), so it closes unwarned.
    # The closed conversation is `auto_closed(conversation, now)`, which
    # conversations.save_auto_closes stores without building it.
    closing = auto_close_decision(conversation, settings, now, line=line)
    if closing is not None:
        batch.closes.append(key)
        batch.decisions[key] = closing
        return
    warning = warn(conversation, settings, now)
    if warning is not None:
        warned, notice = warning
        batch.changed[key] = (warned, next_check(warned, settings))
        batch.decisions[key] = notice
        return
    # Not due after all (its setting changed): store the next check it has now.
    batch.changed[key] = (conversation, next_check(conversation, settings))


def _write(
    connection: Connection, batch: _Batch, now: datetime, faulty: dict[ConversationKey, str]
) -> set[str]:
    """Save the batch in one go; if a row's values make that fail, save row by row and add the
    ones that fail to `faulty`. Returns the decision ids stored."""
    try:
        with connection.begin_nested():
            conversations.save_auto_closes(connection, batch.closes, now)
            conversations.save(connection, batch.changed)
            return set(outbox.add_decisions(connection, batch.decisions.values(), now))
    except Exception as error:
        if not conversations.is_row_fault(error):
            raise
    stored: set[str] = set()
    closes = set(batch.closes)
    for key in [*batch.closes, *batch.changed]:
        try:
            with connection.begin_nested():
                if key in closes:
                    conversations.save_auto_closes(connection, [key], now)
                else:
                    conversations.save(connection, {key: batch.changed[key]})
                decision = batch.decisions.get(key)
                made = [decision] if decision else []
                stored.update(outbox.add_decisions(connection, made, now))
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


def sweep(
    runtime: Runtime,
    clock: Callable[[], datetime],
    events_waiting: Callable[[], int | None] | None = None,
    *,
    shares_with_ingest: bool = True,
) -> int:
    """Warn about and close due conversations batch after batch, within the sweep's time budget.

    Each batch reads the clock once. Returns how many conversations were closed. The heartbeat
    is written after the work, so it proves a sweep succeeded; a sweep that raises is counted
    (`convlife health` and the `convlife_sweep_errors` metric show it) and re-raised.

    Closes give way to events. `events_waiting` says how many event messages wait for ingest
    (the worker asks the broker; None: it could not say, and is not asked again in this sweep);
    when `settings.sweep_gives_way_at` or more wait after a batch, ingest is behind, and a burst
    of closes (a settings change made thousands due at once) must not make other accounts'
    contacts wait for their routing. A sweep that `shares_with_ingest` (its worker also consumes
    events, as `convlife run` does) then ends, handing its process to ingest; a dedicated closer
    pauses instead, looking again every `GIVE_WAY_NAP` seconds, and goes on once ingest has
    caught up (or ends at its time budget).
    Either way every sweep closes at least one batch: closes are delayed, never starved.
    """
    try:
        closed = _sweep(runtime, clock, events_waiting, shares_with_ingest)
    except Exception as error:
        _best_effort(partial(_record_failure, runtime, clock(), error))
        raise
    _best_effort(partial(_record_success, runtime, clock()))
    return closed


GIVE_WAY_NAP = 0.02
"""Seconds a dedicated closer sleeps between two looks at the events queue while ingest is
behind."""


def _sweep(
    runtime: Runtime,
    clock: Callable[[], datetime],
    events_waiting: Callable[[], int | None] | None,
    shares_with_ingest: bool,
) -> int:
    settings = runtime.settings
    started = time.monotonic()
    backlog = _Backlog(settings.sweep_gives_way_at, events_waiting)

    def time_left() -> bool:
        return time.monotonic() - started <= settings.sweep_time_budget

    closed = 0
    size = settings.sweep_batch_size
    while True:
        with keeping_the_turn(runtime.engine):  # SQLite: the batch's turn, kept for its relay
            batch = close_due(runtime, clock(), size)
            if batch.decisions or batch.quarantined:
                outbox.relay(
                    runtime.engine,
                    runtime.redis,
                    clock(),
                    made=batch.decisions,
                    with_dead_letters=batch.quarantined > 0,
                )
        closed += sum(isinstance(decision, AutoClosed) for decision in batch.decisions)
        if batch.decisions or batch.quarantined:
            _best_effort(partial(counters.record, runtime.redis, made=batch.decisions))
            logs.decisions(batch.decisions)
        if batch.quarantined:
            _best_effort(
                partial(counters.record_sweep, runtime.redis, quarantined=batch.quarantined)
            )
        checkpoint_when_due(runtime.engine)
        if batch.claimed < size or not time_left():
            return closed
        size = next_batch_size(size, settings.sweep_batch_size, settings.sweep_batch_growth)
        if backlog.behind():
            if shares_with_ingest:
                return closed
            # Ingest is behind: when closes go on, they go on in small batches again.
            size = settings.sweep_batch_size
            while backlog.behind():
                if not time_left():
                    return closed
                time.sleep(GIVE_WAY_NAP)


def next_batch_size(size: int, first: int, growth: int) -> int:
    """The size of a sweep's next batch after one of `size` came back full (more are due): twice
    as many, up to `growth` times the sweep's `first` batch.

    A backlog (a settings change made thousands due at once) drains in fewer, larger
    transactions, each paying once for its claim, settings, commit and relay: batches of 2,000
    closed a burst of 100,000 about 10% faster per close than batches of 500 (bench.profile_close
    with CONVLIFE_SWEEP_BATCH_SIZE). Every sweep starts at `first`, so the closes of a few due
    conversations, and the first closes of a burst, are on the stream as soon as before."""
    return min(size * 2, first * growth)


class _Backlog:
    """Whether ingest is behind, as one sweep asks it after each batch."""

    def __init__(self, gives_way_at: int, events_waiting: Callable[[], int | None] | None) -> None:
        self.gives_way_at = gives_way_at
        self.events_waiting = events_waiting if gives_way_at else None

    def behind(self) -> bool:
        if self.events_waiting is None:
            return False
        waiting = self.events_waiting()
        if waiting is None:
            # The broker could not say (it is away): sweep on, as without the check, and do
            # not ask again in this sweep, since a look at an unreachable broker takes seconds.
            self.events_waiting = None
            return False
        return waiting >= self.gives_way_at


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
