"""Conversations: created on first sight, locked in bulk, saved in bulk, claimed when due."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Interval,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Result, Row
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

from events.models import LATEST, ConversationEvent
from policies.conversation import new_conversation
from policies.inactivity import IdleConversation
from policies.state import (
    INACTIVITY,
    AccountSettings,
    ClosedBy,
    Conversation,
    Status,
    conversation_of,
)
from store import sqlite_writes
from store.db import UTCDateTime, bulk_insert, each_key, keys_json, rows_json, rows_param
from store.tables import conversations as table
from store.tables import due_scans

ConversationKey = tuple[str, str]
"""(account_id, conversation_id)"""
ContactLineKey = tuple[str, str, str]
"""(account_id, contact_id, line_id)"""

_LATEST = literal(LATEST, UTCDateTime)
"""No deadline at or after this instant (policies.inactivity.deadline_after)."""
_KEY = ("account_id", "conversation_id")


def key_of(conversation: Conversation) -> ConversationKey:
    return (conversation.account_id, conversation.conversation_id)


def create_missing(connection: Connection, events: Iterable[ConversationEvent]) -> None:
    """Insert conversations never seen before, as `new_conversation` builds them.

    Done before locking so that two workers seeing the same new conversation both end up
    locking the one row instead of racing to insert it.
    """
    first: dict[ConversationKey, ConversationEvent] = {}
    for event in events:
        key = (event.account_id, event.conversation_id)
        if key not in first or event.occurred_at < first[key].occurred_at:
            first[key] = event
    rows = [_to_row(new_conversation(first[key]), None) for key in sorted(first)]
    bulk_insert(connection, table, rows, key=list(_KEY), on_conflict="nothing")


def lock(
    connection: Connection,
    keys: Collection[ConversationKey],
    contact_lines: Collection[ContactLineKey] = (),
) -> dict[ConversationKey, Conversation]:
    """Load the conversations with these keys, and all conversations of these contacts on these
    lines; on PostgreSQL lock them, in key order, so concurrent batches cannot deadlock.

    Two lookups (on SQLite one statement, on PostgreSQL two) whatever the batch, the keys given
    as JSON and each looked up through its index: the contacts' conversations through
    ix_conversations_contact_line, every conversation by its primary key.
    """
    if connection.dialect.name == "postgresql":
        return _lock_postgresql(connection, keys, contact_lines)
    # SQLite has no row locks: the transaction's BEGIN IMMEDIATE holds the database's one
    # write lock already. A row named by both lists comes twice and is kept once.
    result = connection.execute(
        _SQLITE_BY_KEY_OR_CONTACT,
        {"keys": keys_json(keys), "pairs": keys_json(contact_lines)},
    )
    return {key_of(conversation): conversation for conversation in _whole_rows(result)}


def lock_or_create(
    connection: Connection,
    events: Collection[ConversationEvent],
    contact_lines: Collection[ContactLineKey] = (),
) -> tuple[dict[ConversationKey, Conversation], set[ConversationKey]]:
    """`lock` the conversations these events name and those of these contacts on these lines,
    creating (as `new_conversation` builds them) the ones never seen before; and the keys of
    those it created (or found created by a racing worker meanwhile).

    Insert-if-absent, then lock: a worker racing on the same new conversation ends up waiting
    on the same row instead of overwriting it.
    """
    found = lock(connection, {(e.account_id, e.conversation_id) for e in events}, contact_lines)
    new = [e for e in events if (e.account_id, e.conversation_id) not in found]
    created = {(e.account_id, e.conversation_id) for e in new}
    if new:
        create_missing(connection, new)
        found.update(lock(connection, created))
    return found, created


def _lock_postgresql(
    connection: Connection,
    keys: Collection[ConversationKey],
    contact_lines: Collection[ContactLineKey],
) -> dict[ConversationKey, Conversation]:
    # Two statements whatever the batch: the keys travel as one JSON parameter, and PostgreSQL
    # looks each pair up in the contact index, then locks each key through the primary key.
    wanted = set(keys)
    if contact_lines:
        rows = connection.execute(
            _OF_CONTACTS_ON_LINES, {"pairs": _json_keys(_PAIR_COLUMNS, contact_lines)}
        )
        wanted.update((account_id, conversation_id) for account_id, conversation_id in rows.all())
    if not wanted:
        return {}
    result = connection.execute(_LOCKED_BY_KEY, {"keys": _json_keys(_KEY_COLUMNS, sorted(wanted))})
    return {key_of(conversation): conversation for conversation in _whole_rows(result)}


_PAIR_COLUMNS = [table.c.account_id, table.c.contact_id, table.c.line_id]
_KEY_COLUMNS = [table.c.account_id, table.c.conversation_id]


# Both statements are built once, here, and kept: a statement built per batch costs its
# construction and SQLAlchemy's cache key of it, more CPU than the round trip itself for a
# message of one event (a kept statement's cache key is memoized). Each looks its keys up one by
# one (store.db.each_key).
_PAIRS = rows_param("pairs", _PAIR_COLUMNS)
_OF_CONTACTS_ON_LINES = each_key(
    _PAIRS,
    select(table.c.account_id, table.c.conversation_id).where(
        table.c.account_id == _PAIRS.c.account_id,
        table.c.contact_id == _PAIRS.c.contact_id,
        table.c.line_id == _PAIRS.c.line_id,
    ),
    "of_contact",
)
_WANTED_KEYS = rows_param("keys", _KEY_COLUMNS)
# Locked key by key, in the order of the keys given (`_lock_postgresql` sorts them).
_LOCKED_BY_KEY = each_key(
    _WANTED_KEYS,
    select(table)
    .where(
        table.c.account_id == _WANTED_KEYS.c.account_id,
        table.c.conversation_id == _WANTED_KEYS.c.conversation_id,
    )
    .with_for_update(),
    "locked",
)


# SQLite: the same two lookups as one statement, the keys as JSON arrays read by json_each,
# each probing its index (CROSS JOIN keeps the keys the outer loop). A statement per account and
# page of keys, built and compiled per batch, cost ~29 µs of Python per routed inbound (the
# database's own part of it ~3 µs) inside the writer's turn, which every SQLite writer waits for.
_COLUMNS_OF_C = ", ".join(f"c.{column.name}" for column in table.columns)
# Named, not c.*: a column a migration added sits last in the database's own order.
_SQLITE_BY_KEY_OR_CONTACT = text(
    f"SELECT {_COLUMNS_OF_C} FROM json_each(:keys) AS k CROSS JOIN conversations AS c"
    " ON c.account_id = k.value ->> 0 AND c.conversation_id = k.value ->> 1"
    f" UNION ALL SELECT {_COLUMNS_OF_C} FROM json_each(:pairs) AS p"
    " CROSS JOIN conversations AS c ON c.account_id = p.value ->> 0"
    " AND c.contact_id = p.value ->> 1 AND c.line_id = p.value ->> 2"
).columns(*table.c)


def _json_keys(columns: list[Any], keys: Iterable[tuple[str, ...]]) -> str:
    # str(): a column's name is a `quoted_name`, a str subclass that orjson refuses as a key
    # (rows_json would then fall back to the 4x slower `json` on every batch).
    names = [str(column.name) for column in columns]
    return rows_json(dict(zip(names, key, strict=True)) for key in keys)


def save(
    connection: Connection, changed: Mapping[ConversationKey, tuple[Conversation, datetime | None]]
) -> None:
    """Write conversations (each with its close deadline), in bulk.

    One `INSERT … ON CONFLICT DO UPDATE` (see `bulk_insert`): the rows exist (they were
    created and locked before), and one statement is far cheaper than an UPDATE per row.
    """
    rows = [_to_row(conv, due) for conv, due in (changed[key] for key in sorted(changed))]
    bulk_insert(connection, table, rows, key=list(_KEY), on_conflict="update")


@dataclass(frozen=True)
class Claimed:
    """What `claim_due` claimed: the conversations it could read, oldest deadline first, and
    the keys of those it could not, each with the reason."""

    conversations: list[Conversation]
    unreadable: dict[ConversationKey, str]

    def __len__(self) -> int:
        return len(self.conversations) + len(self.unreadable)


def claim_due(connection: Connection, now: datetime, limit: int) -> Claimed:
    """Up to `limit` conversations whose deadline has come, oldest first, locked.

    On PostgreSQL, rows another sweep holds are skipped (SKIP LOCKED), so sweeps running at
    once share the work instead of queueing on it; SQLite has one writer at a time anyway.

    One statement claims and reads the rows. If some row cannot be read (a value outside what
    the driver can represent), the keys are claimed alone (text, always readable) and the rows
    read one by one: those that fail are returned in `unreadable` instead of failing the claim,
    so one bad row never stops the sweep of every other.
    """
    _walk_deadlines_in_order(connection)
    return _claim(connection, [table.c.close_due_at <= now], table.c.close_due_at, limit)


def _claim(
    connection: Connection,
    where: list[ColumnElement[bool]],
    order: ColumnElement[Any],
    limit: int,
) -> Claimed:
    """Up to `limit` rows matching `where`, in `order`, locked (SKIP LOCKED), read; see
    `claim_due` for the rows that cannot be read."""
    claim_and_read = (
        select(table).where(*where).order_by(order).limit(limit).with_for_update(skip_locked=True)
    )
    try:
        with connection.begin_nested():
            return Claimed([_from_row(row) for row in connection.execute(claim_and_read)], {})
    except Exception as error:
        if not is_row_fault(error):
            raise
    # Some row is unreadable (the savepoint's rollback let go of the locks it took): claim
    # the keys, then read the rows one by one to find which.
    claim = (
        select(table.c.account_id, table.c.conversation_id)
        .where(*where)
        .order_by(order)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    keys: list[ConversationKey] = [
        (row.account_id, row.conversation_id) for row in connection.execute(claim)
    ]
    readable: list[Conversation] = []
    unreadable: dict[ConversationKey, str] = {}
    for key in keys:
        try:
            with connection.begin_nested():
                readable.extend(lock(connection, [key]).values())
        except Exception as error:
            if not is_row_fault(error):
                raise
            unreadable[key] = describe_fault(error)
    return Claimed(readable, unreadable)


def _walk_deadlines_in_order(connection: Connection) -> None:
    """On PostgreSQL, plan this transaction's claim as a walk of the deadline index in order,
    whatever the statistics say. A settings change that makes many conversations due at once
    leaves statistics that say none is (until autovacuum's ANALYZE, seconds later); the planner
    then fetches every due row and sorts them all (100,000 wide rows: an external sort on disk,
    48 ms per claim of 500), where the index walk stops at the 500th row it locks (0.7 ms).
    FOR UPDATE SKIP LOCKED keeps it from a top-N sort: rows may be skipped after the sort.
    With sorts disabled the planner takes the index's order; nothing else the sweep's
    transaction sends sorts."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_sort = off")


def save_auto_closes(
    connection: Connection, keys: Collection[ConversationKey], at: datetime
) -> None:
    """Store the sweep's close at `at` (UTC) of these locked conversations, as `save` would
    store `policies.inactivity.auto_close`'s result (no next check): one UPDATE of the columns
    a close changes (`policies.conversation.closed`), instead of rewriting every column.

    tests/store/test_auto_close_write.py holds the two writes to the same rows.
    """
    if not keys:
        return
    values = _auto_closed_at(at)
    key_columns = [table.c.account_id, table.c.conversation_id]
    if connection.dialect.name == "postgresql":
        wanted = rows_param("keys", key_columns)
        connection.execute(
            update(table)
            .where(
                table.c.account_id == wanted.c.account_id,
                table.c.conversation_id == wanted.c.conversation_id,
            )
            .values(values),
            {"keys": _json_keys(key_columns, sorted(keys))},
        )
        return
    sqlite_writes.update_by_keys(connection, table, values, ["account_id", "conversation_id"], keys)


def _auto_closed_at(at: datetime) -> dict[str, Any]:
    """The columns the sweep's close at `at` sets (`policies.inactivity.auto_closed`)."""
    return {
        "status": Status.CLOSED.value,
        "closed_at": at,
        "closed_by": ClosedBy.SYSTEM.value,
        "closing_agent_id": None,
        "close_reason": INACTIVITY,
        "auto_closed": True,
        "close_due_at": None,
    }


def is_row_fault(error: BaseException) -> bool:
    """True when `error` comes from the values of the rows at hand (a value the driver cannot
    represent or convert, bad arithmetic), not from the database being away or busy: such a
    row is set aside and the others go on; anything else is raised for the task to retry."""
    if isinstance(error, DataError | IntegrityError):
        return True  # a value out of range or unconvertible; a constraint the row breaks
    if isinstance(error, DBAPIError):
        return False  # connection, lock, read-only, internal: not the row's fault
    if isinstance(error, StatementError):  # a bind or result conversion raised in Python
        return error.orig is None or is_row_fault(error.orig)
    # Not TypeError: that is a bug in the code, and quarantining on it would set aside every row.
    return isinstance(error, ValueError | ArithmeticError)


def describe_fault(error: BaseException) -> str:
    """One bounded line for a row fault (for a dead letter and a log line)."""
    orig = getattr(error, "orig", None)
    shown = orig if isinstance(orig, BaseException) else error
    lines = str(shown).strip().splitlines()
    return f"{type(shown).__name__}: {lines[0] if lines else ''}"[:500]


def quarantine(connection: Connection, keys: Collection[ConversationKey]) -> None:
    """Take conversations out of the due set (deadline cleared) without reading their rows."""
    for account_id, conversation_id in sorted(keys):
        connection.execute(
            update(table)
            .where(table.c.account_id == account_id, table.c.conversation_id == conversation_id)
            .values(close_due_at=None)
        )


AgentKey = tuple[str, str]
"""(account_id, agent_id)"""

_IS_OPEN = table.c.status == literal_column("'open'")
"""`status = 'open'` as a literal, not a bound parameter: a plan made without the value (a
generic plan of a statement psycopg has prepared after repeated use) cannot prove a partial
index's predicate (`WHERE status = 'open'`) from `status = $1`, and would scan."""
assert Status.OPEN.value == "open"


def open_assigned(connection: Connection, keys: Collection[AgentKey]) -> dict[AgentKey, int]:
    """How many open conversations are assigned to each (account_id, agent_id), 0 included;
    one statement, served by ix_conversations_open_by_agent."""
    found = dict.fromkeys(keys, 0)
    if not found:
        return found
    agent_columns = [table.c.account_id, table.c.assignee_agent_id]
    if connection.dialect.name == "postgresql":
        # Keys as one JSON record set joined to the index (a row-value IN list would be a
        # filter over the account's rows; see `lock`).
        wanted = rows_param("agents", agent_columns)
        statement = select(*agent_columns, func.count()).join(
            wanted,
            and_(
                table.c.account_id == wanted.c.account_id,
                table.c.assignee_agent_id == wanted.c.assignee_agent_id,
            ),
        )
        params = {"agents": _json_keys(agent_columns, sorted(found))}
    else:
        statement = select(*agent_columns, func.count()).where(
            tuple_(*agent_columns).in_(sorted(found))
        )
        params = {}
    rows = connection.execute(statement.where(_IS_OPEN).group_by(*agent_columns), params)
    for row in rows:
        found[(row[0], row[1])] = int(row[2])
    return found


def open_of_account(
    connection: Connection,
    account_id: str,
    after: str | None,
    limit: int,
    *,
    line_id: str | None = None,
    except_lines: Collection[str] = (),
) -> list[Conversation]:
    """A page of the account's open conversations, in id order, after id `after`; only those
    on `line_id` when given, and none on the lines in `except_lines`."""
    statement = (
        select(table)
        .where(*_open_where(account_id, line_id, except_lines))
        .order_by(table.c.conversation_id)
        .limit(limit)
        .with_for_update()
    )
    if after is not None:
        statement = statement.where(table.c.conversation_id > after)
    return _whole_rows(connection.execute(statement))


def reschedule_open(
    connection: Connection,
    account_id: str,
    settings: AccountSettings,
    now: datetime,
    *,
    line_id: str | None = None,
    except_lines: Collection[str] = (),
) -> int | None:
    """Set the next check of every open conversation of the account (only those on `line_id`
    when given, none on `except_lines`) to the one the settings give
    (`policies.inactivity.next_check`: the warning time while one is due, else the deadline),
    in one statement. Returns how many were written, or None where the database cannot do it:
    SQLite keeps datetimes as text, and no SQL walks a business-hours calendar. The caller then
    pages through them with the rule itself.

    Those whose next check has come by `now` and that hold one (a setting made shorter) are not
    written: the scope gets a due scan (`due_scans`) instead, and the sweep claims them by last
    activity (`claim_due_at_once`) and closes or warns each in one write. A shorter setting can
    make every open conversation of an account due at once; writing each one's next check
    first (every index of it, before the first close) took longer than closing them.
    """
    if connection.dialect.name != "postgresql":
        return None
    due = next_check_sql(settings)
    if due is None:
        return None
    where = _open_where(account_id, line_id, except_lines)
    if settings.inactivity_close_after is not None:
        where.append(or_(table.c.close_due_at.is_(None), due.is_(None), due > now))
    result = connection.execute(update(table).where(*where).values(close_due_at=due))
    left = _due_at_once(account_id, line_id, settings, except_lines, now)
    if (
        left is not None
        and connection.execute(select(select(table.c.account_id).where(*left).exists())).scalar()
    ):
        scope = {"account_id": account_id, "line_id": line_id or ACCOUNT_SCOPE}
        connection.execute(
            postgresql.insert(due_scans)
            .values(**scope, since=now)
            .on_conflict_do_update(index_elements=list(scope), set_={"since": now})
        )
    return result.rowcount


ACCOUNT_SCOPE = ""
"""`due_scans.line_id` of an account's own scope (every line but those that override its
deadline settings)."""


@dataclass(frozen=True)
class DueScan:
    """A scope whose open conversations a settings change made due at once (`due_scans`)."""

    account_id: str
    line_id: str | None
    """None: the account's own scope."""
    since: datetime


def due_scans_pending(connection: Connection, limit: int = 100) -> list[DueScan]:
    """The oldest pending due scans (a settings change that left conversations makes one;
    there are few, and a sweep batch rarely gets past the first)."""
    rows = connection.execute(select(due_scans).order_by(due_scans.c.since).limit(limit))
    return [DueScan(r.account_id, r.line_id or None, r.since) for r in rows]


def due_scan_covers(
    connection: Connection, account_id: str, line_id: str, line_overrides_deadlines: bool
) -> bool:
    """Whether a pending due scan covers a conversation on this line: the line's own, or the
    account's unless the line overrides the account's deadline settings."""
    scopes = {
        row.line_id
        for row in connection.execute(
            select(due_scans.c.line_id).where(due_scans.c.account_id == account_id)
        )
    }
    return line_id in scopes or (ACCOUNT_SCOPE in scopes and not line_overrides_deadlines)


def claim_due_at_once(
    connection: Connection,
    scan: DueScan,
    settings: AccountSettings,
    except_lines: Collection[str],
    now: datetime,
    limit: int,
) -> Claimed:
    """Up to `limit` open conversations of the scan's scope (none on `except_lines`) that hold a
    next check, and that `settings` (those in force on the scope, without business hours) make
    due by `now`: oldest activity first, locked as `claim_due` locks. Their stored next check
    may be later (`reschedule_open` left it)."""
    # Only PostgreSQL makes due scans (SQLite's reschedule writes every conversation).
    where = _due_at_once(scan.account_id, scan.line_id, settings, except_lines, now)
    if where is None or connection.dialect.name != "postgresql":
        return Claimed([], {})
    return _claim(connection, where, table.c.last_activity_at, limit)


def closes_at_once(connection: Connection, settings: AccountSettings) -> bool:
    """Whether `close_due_at_once` can close a scope under `settings` (those in force on it):
    on PostgreSQL, with a close setting, no warning and no business hours. A caller that wraps
    the close in a savepoint asks first, so a scope it cannot close costs no round trip."""
    return (
        connection.dialect.name == "postgresql"
        and settings.inactivity_close_after is not None
        and settings.close_warning_before is None
        and settings.business_hours is None
    )


def close_due_at_once(
    connection: Connection,
    scan: DueScan,
    settings: AccountSettings,
    except_lines: Collection[str],
    now: datetime,
    limit: int,
    *,
    skip: Collection[str] = (),
) -> list[IdleConversation] | None:
    """Claim and close, in one statement, what `claim_due_at_once` would claim (none of the
    scan's account's conversations in `skip`, which this transaction holds already), as
    `save_auto_closes` closes: what each close's decision needs of them, oldest activity first.

    None, having done nothing, where a claimed conversation might not be a close: settings with
    a warning (one not yet warned about is warned first) or business hours, or Never, and on
    SQLite (which makes no due scans). Otherwise every row the claim finds is one the rule
    closes (`_due_at_once` is `policies.inactivity.is_due` in SQL;
    tests/store/test_close_at_once_rule.py holds the two together).

    Reading whole rows to decide each in Python, then writing each close, cost a burst of
    closes about a third more of the sweep's CPU per close (docs/performance.md). The claim
    locks rows as `claim_due` does (SKIP LOCKED) and hands them to the UPDATE by physical
    address: a TID scan; joined by key, PostgreSQL hashed a sequential scan of the table. A row
    another transaction changed after this statement's snapshot is locked but not visible to
    the UPDATE: not closed, not returned, claimed again by a later batch if still due.
    """
    if not closes_at_once(connection, settings):
        return None
    where = _due_at_once(scan.account_id, scan.line_id, settings, except_lines, now)
    if where is None:
        return None
    if skip:
        where.append(table.c.conversation_id.not_in(sorted(skip)))
    claimed = (
        select(literal_column("ctid").label("row_id"))
        .select_from(table)
        .where(*where)
        .order_by(table.c.last_activity_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("claimed")
    )
    closing = (
        update(table)
        .add_cte(claimed)
        .where(text("conversations.ctid = ANY(ARRAY(SELECT row_id FROM claimed))"))
        .values(_auto_closed_at(now))
        .returning(
            table.c.account_id,
            table.c.conversation_id,
            table.c.contact_id,
            table.c.line_id,
            table.c.last_activity_at,
        )
    )
    # RETURNING gives no order; the decisions go to the outbox in the claim's (their ids are
    # ordered by last activity, so the index takes them in order).
    closed = [IdleConversation(*row) for row in connection.execute(closing).all()]
    closed.sort(key=_by_last_activity)
    return closed


def _by_last_activity(idle: IdleConversation) -> datetime:
    return idle.last_activity_at


def end_due_scan(
    connection: Connection,
    scan: DueScan,
    settings: AccountSettings,
    except_lines: Collection[str],
    now: datetime,
) -> None:
    """Delete the scan unless a change made it again since (`since`), and unless an open
    conversation of its scope is still due by `settings`: one that another sweep's transaction
    claimed still reads as open here until that one commits, so the scan outlives a sweep that
    fails. Settings that give no deadline in SQL (business hours, Never) end it: the change
    that made them so wrote every conversation of the scope."""
    statement = delete(due_scans).where(
        due_scans.c.account_id == scan.account_id,
        due_scans.c.line_id == (scan.line_id or ACCOUNT_SCOPE),
        due_scans.c.since == scan.since,
    )
    where = _due_at_once(scan.account_id, scan.line_id, settings, except_lines, now)
    if where is not None and connection.dialect.name == "postgresql":
        statement = statement.where(~select(table.c.account_id).where(*where).exists())
    connection.execute(statement)


def _due_at_once(
    account_id: str,
    line_id: str | None,
    settings: AccountSettings,
    except_lines: Collection[str],
    now: datetime,
) -> list[ColumnElement[bool]] | None:
    """The open conversations of the scope that hold a next check and that `settings` make due
    by `now` (None: none can be, or SQL cannot say)."""
    due = next_check_sql(settings)
    close_after = settings.inactivity_close_after
    if due is None or close_after is None:
        return None
    # A bound the activity index can walk to: no next check comes sooner after the last
    # activity than the close setting less the warning (policies.inactivity.warning_at).
    soonest = close_after - min(settings.close_warning_before or timedelta(0), close_after)
    try:
        latest_activity = now - soonest
    except OverflowError:
        return None  # nothing can be due yet
    return [
        *_open_where(account_id, line_id, except_lines),
        table.c.last_activity_at <= latest_activity,
        table.c.close_due_at.is_not(None),
        due <= now,
    ]


def next_check_sql(settings: AccountSettings) -> ColumnElement[Any] | None:
    """`policies.inactivity.next_check` of a conversation row under `settings`, in SQL (NULL:
    no check, never closes); None where SQL cannot say (business hours).
    tests/store/test_deadline_rule.py holds the two to the same results."""
    close_after = settings.inactivity_close_after
    warning_before = settings.close_warning_before
    if close_after is None:
        return null()
    if settings.business_hours is not None:
        return None
    # policies.inactivity.deadline_after, in SQL: at or after events.models.LATEST there is
    # no deadline.
    total = table.c.last_activity_at + bindparam("close_after", close_after, type_=Interval())
    due: ColumnElement[Any] = case((total < _LATEST, total), else_=null())
    if warning_before is not None:
        # policies.inactivity.warning_at: the warning period ahead of the deadline, not
        # before the last activity, while this idle period is not warned about yet.
        early = total - bindparam("warning_before", warning_before, type_=Interval())
        warn_at = case((early < table.c.last_activity_at, table.c.last_activity_at), else_=early)
        due = case(
            (total >= _LATEST, null()),
            (table.c.close_warned_at.is_(None), warn_at),
            else_=total,
        )
    return due


def _open_where(
    account_id: str, line_id: str | None, except_lines: Collection[str]
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        table.c.account_id == account_id,
        table.c.status == Status.OPEN.value,
    ]
    if line_id is not None:
        where.append(table.c.line_id == line_id)
    if except_lines:
        where.append(table.c.line_id.not_in(sorted(except_lines)))
    return where


def get(
    connection: Connection, account_id: str, conversation_id: str
) -> tuple[Conversation, datetime | None] | None:
    """One conversation and its stored close deadline, without locking."""
    row = connection.execute(
        select(table).where(
            table.c.account_id == account_id, table.c.conversation_id == conversation_id
        )
    ).first()
    return None if row is None else (_from_row(row), row.close_due_at)


_FIELDS = [f.name for f in fields(Conversation)]
assert [c.name for c in table.columns][: len(_FIELDS)] == _FIELDS
"""`_from_row` reads a row of `select(table)` by position: the table's columns start with the
conversation's fields, in order."""
_STATUS = {s.value: s for s in Status}
_CLOSED_BY = {c.value: c for c in ClosedBy}


def _whole_rows(result: Result[Any]) -> list[Conversation]:
    """The conversations of a `select(table)` result, fetched at once (not row by row) and read
    by position (`_from_row`)."""
    return [_from_row(row) for row in result.all()]


def _from_row(row: Row[Any]) -> Conversation:
    # By position and with dict lookups for the enums: the sweep reads every row it closes,
    # and attribute access plus Enum() calls were a tenth of a close's Python time.
    (
        account_id,
        conversation_id,
        contact_id,
        line_id,
        status,
        last_activity_at,
        status_changed_at,
        assignee_agent_id,
        assignee_group_id,
        assignee_bot,
        assigned_at,
        closed_at,
        closed_by,
        closing_agent_id,
        close_reason,
        auto_closed,
        close_warned_at,
        previous_closed_at,
        previous_closed_by,
        previous_closing_agent_id,
        previous_close_reason,
        previous_opened_at,
    ) = cast("tuple[Any, ...]", row[:22])
    return conversation_of(
        account_id,
        conversation_id,
        contact_id,
        line_id,
        _STATUS.get(status) or Status(status),
        last_activity_at,
        status_changed_at,
        assignee_agent_id,
        assignee_group_id,
        assignee_bot,
        assigned_at,
        closed_at,
        None if closed_by is None else _CLOSED_BY.get(closed_by) or ClosedBy(closed_by),
        closing_agent_id,
        close_reason,
        auto_closed,
        close_warned_at,
        previous_closed_at,
        previous_closed_by
        if previous_closed_by is None
        else _CLOSED_BY.get(previous_closed_by) or ClosedBy(previous_closed_by),
        previous_closing_agent_id,
        previous_close_reason,
        previous_opened_at,
    )


def _to_row(conversation: Conversation, close_due_at: datetime | None) -> dict[str, Any]:
    return {
        "account_id": conversation.account_id,
        "conversation_id": conversation.conversation_id,
        "contact_id": conversation.contact_id,
        "line_id": conversation.line_id,
        "status": conversation.status.value,
        "last_activity_at": conversation.last_activity_at,
        "status_changed_at": conversation.status_changed_at,
        "assignee_agent_id": conversation.assignee_agent_id,
        "assignee_group_id": conversation.assignee_group_id,
        "assignee_bot": conversation.assignee_bot,
        "assigned_at": conversation.assigned_at,
        "closed_at": conversation.closed_at,
        "closed_by": None if conversation.closed_by is None else conversation.closed_by.value,
        "closing_agent_id": conversation.closing_agent_id,
        "close_reason": conversation.close_reason,
        "auto_closed": conversation.auto_closed,
        "close_warned_at": conversation.close_warned_at,
        "previous_closed_at": conversation.previous_closed_at,
        "previous_closed_by": None
        if conversation.previous_closed_by is None
        else conversation.previous_closed_by.value,
        "previous_closing_agent_id": conversation.previous_closing_agent_id,
        "previous_close_reason": conversation.previous_close_reason,
        "previous_opened_at": conversation.previous_opened_at,
        "close_due_at": close_due_at,
    }
