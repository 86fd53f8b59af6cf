"""The transactional outbox: decisions and dead letters are rows first, stream entries second.

A decision is written in the same transaction as the state change that caused it, with a row
of `decision_outbox` naming it (one row per transaction's batch of decisions); the relay sends
the batch to its Redis stream and deletes that row. A crash between the two re-sends it on the
next relay: at least once, with the same `decision_id`, never lost. The same row goes into
`webhook_outbox`, which the webhook fan-out consumes on its own (store/webhooks.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from redis import Redis
from sqlalchemy import (
    Column,
    Integer,
    Select,
    Table,
    Text,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine, Result

from events.decisions import Decision
from events.parsing import (
    MAX_ERROR_KEPT,
    MAX_RAW_KEPT,
    InvalidEvent,
    cut,
    kept_id,
    printable,
    storable,
)
from store.db import BinaryTexts, binary_texts, bulk_insert, rows_json, rows_param
from store.streams import DEAD_LETTERS_STREAM, DECISIONS_STREAM, append, append_data
from store.tables import dead_letters, decision_outbox, decisions, webhook_outbox

_OUTBOX_COLUMNS = ("first_decision_id", "decision_ids", "size", "made_at")


def add_decisions(
    connection: Connection, items: Iterable[Decision], now: datetime | None = None
) -> list[str]:
    """Store decisions (a decision id already stored is skipped) and put the ones stored in the
    outbox as one batch; returns the ids stored."""
    made = list(items)
    if not made:
        return []
    in_order = list(dict.fromkeys(d.decision_id for d in made))
    made_at = now or max(d.decided_at for d in made)
    if connection.dialect.name == "postgresql":
        # The decisions and, when every one of them is new, their batch's row in both outboxes,
        # in one round trip. Their JSON documents go apart, as one binary array
        # (store.db.BinaryTexts); each row names its own by its place in it (`n`, from 1).
        outbox_row = _outbox_row(in_order, made_at)
        inserted_ids = connection.execute(
            _DECISIONS_AND_OUTBOX_ROWS,
            {
                "rows": rows_json(_row_of(d, n=n) for n, d in enumerate(made, 1)),
                "data": BinaryTexts(d.data for d in made),
                **outbox_row,
            },
        ).scalar_one()
        if inserted_ids is None:  # all of them: the statement wrote the outbox rows
            return in_order
        # Some were stored before (a redelivery whose event ids were pruned): the outbox rows
        # name only the ones stored now.
        fresh = set(json.loads(inserted_ids))
        return _add_outbox_rows(connection, [i for i in in_order if i in fresh], made_at)
    inserted = bulk_insert(
        connection,
        decisions,
        [_row_of(d, data=d.data) for d in made],
        key=["decision_id"],
        on_conflict="nothing",
        returning=[decisions.c.decision_id],
    )
    fresh = {row.decision_id for row in inserted}
    return _add_outbox_rows(connection, [i for i in in_order if i in fresh], made_at)


def _outbox_row(stored: list[str], made_at: datetime) -> dict[str, object]:
    """The outbox row of a batch of stored decisions (ids in the order made): keyed by the
    least id (Python's `min`, which for ids of ASCII compares as the bytes do)."""
    return {
        "first_decision_id": min(stored),
        "decision_ids": json.dumps(stored),
        "size": len(stored),
        "made_at": made_at,
    }


def _add_outbox_rows(connection: Connection, stored: list[str], made_at: datetime) -> list[str]:
    """The batch's row in both outboxes (none for no decision); returns `stored`."""
    if stored:
        row = _outbox_row(stored, made_at)
        connection.execute(_OUTBOX_ROW, row)
        connection.execute(_WEBHOOK_OUTBOX_ROW, row)
    return stored


def _row_of(decision: Decision, **more: object) -> dict[str, object]:
    """The decision's `decisions` row but for its `data`, which each store takes its own way,
    with `more` columns."""
    return {
        "decision_id": decision.decision_id,
        "type": decision.type,
        "account_id": decision.account_id,
        "conversation_id": decision.conversation_id,
        "contact_id": decision.contact_id,
        "decided_at": decision.decided_at,
        **more,
    }


def _decisions_and_outbox_rows() -> Select[Any]:
    """On PostgreSQL, `add_decisions` as one statement: the INSERT of the decisions (an id
    already stored is skipped), then, if it stored every one (`count = :size`, as good as always:
    the events were claimed fresh), the batch's row in each outbox, whose values the caller
    computed (`_outbox_row`). It returns one value: NULL when every decision was stored, else
    the ids it stored, as a JSON array (the caller then writes the outbox rows of those).

    It was three statements, then two, then this one with the outbox row computed in SQL from
    the ids the INSERT returned; computing it in the caller and returning only a count cut the
    statement from 15.6-17.2 µs a decision to 14.5, and the caller's CPU from 3.6 to 2.5
    (scratch: 50 batches of 500 routed decisions, two runs)."""
    fields = rows_param(
        "rows",
        [decisions.c[name] for name in _DECISION_COLUMNS if name != "data"]
        + [Column("n", Integer)],
    )
    data = binary_texts("data")
    inserted = (
        postgresql.insert(decisions)
        .from_select(
            list(_DECISION_COLUMNS),
            select(
                *[data.c.value if name == "data" else fields.c[name] for name in _DECISION_COLUMNS]
            ).join_from(fields, data, data.c.n == fields.c.n),
        )
        .on_conflict_do_nothing(index_elements=["decision_id"])
        .returning(decisions.c.decision_id)
        .cte("inserted")
    )
    size = bindparam("size", type_=Integer)
    all_stored = select(func.count()).select_from(inserted).scalar_subquery() == size
    rows = [
        insert(outbox)
        .from_select(
            _OUTBOX_COLUMNS,
            select(*[bindparam(name, type_=outbox.c[name].type) for name in _OUTBOX_COLUMNS]).where(
                all_stored
            ),
        )
        .cte(f"{outbox.name}_row")
        for outbox in (decision_outbox, webhook_outbox)
    ]
    # None stored: json_agg of no rows is NULL, which must not read as "all of them".
    stored_ids = func.coalesce(
        cast(select(func.json_agg(inserted.c.decision_id)).scalar_subquery(), Text), "[]"
    )
    return select(case((all_stored, null()), else_=stored_ids)).add_cte(*rows)


_DECISION_COLUMNS = (
    "decision_id",
    "type",
    "account_id",
    "conversation_id",
    "contact_id",
    "decided_at",
    "data",
)
_DECISIONS_AND_OUTBOX_ROWS = _decisions_and_outbox_rows()


# Statements every ingest message sends, built once and kept: one built per message costs its
# construction and SQLAlchemy's cache key of it (a kept statement's is memoized), more CPU than
# the round trip itself for a message of one event.
_OUTBOX_ROW = insert(decision_outbox)
_WEBHOOK_OUTBOX_ROW = insert(webhook_outbox)
_CLAIM_OWN = (
    delete(decision_outbox)
    .where(
        decision_outbox.c.first_decision_id.in_(
            select(decision_outbox.c.first_decision_id)
            .where(decision_outbox.c.first_decision_id == bindparam("first"))
            .with_for_update(skip_locked=True)
        )
    )
    .returning(decision_outbox.c.decision_ids)
)
# On PostgreSQL the claim also turns off the commit's wait for the WAL flush
# (`_without_waiting_for_the_disk`, as `SET LOCAL` does) for the row it claims: one round trip
# less for every task's relay. A claim that finds no row deletes nothing, so its commit has
# nothing to wait for anyway.
_CLAIM_OWN_WITHOUT_WAITING = _CLAIM_OWN.returning(
    func.set_config("synchronous_commit", "off", True)
)


def _without_waiting_for_the_disk(connection: Connection) -> None:
    """The relay's commit only deletes outbox rows (and marks dead letters sent) of entries
    already on the stream: if a crash loses that commit, the next relay sends them again, which
    the stream's readers already allow for (at least once, ids stable). So on PostgreSQL it
    does not wait for the WAL to reach the disk (`synchronous_commit = off` for this transaction
    only): one flush wait less per batch, the second of the two each ingest message made. The
    decisions' own commit still waits for its flush."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


def unpublished_ids(connection: Connection) -> set[str]:
    """Every decision id the outbox still holds (tests and checks; not for a hot path)."""
    return {
        decision_id
        for (ids,) in connection.execute(select(decision_outbox.c.decision_ids))
        for decision_id in json.loads(ids)
    }


def add_dead_letter(
    connection: Connection,
    *,
    raw: str,
    error: str,
    received_at: datetime,
    account_id: str | None = None,
    event_id: str | None = None,
    reason: str | None = None,
) -> None:
    """Store a dead letter, every field cut to its bound whatever the caller passes: a row (and
    its stream entry) holds at most `events.parsing.MAX_DEAD_LETTER_BYTES`.

    `reason`: its `events.parsing.ReasonCode`; `error`: the same in words.
    """
    connection.execute(
        insert(dead_letters).values(
            raw=cut(storable(raw[: MAX_RAW_KEPT + 1]), MAX_RAW_KEPT),
            error=cut(printable(storable(error[: MAX_ERROR_KEPT + 1])), MAX_ERROR_KEPT),
            received_at=received_at,
            account_id=kept_id(account_id),
            event_id=kept_id(event_id),
            reason=None if reason is None else reason[:16],
        )
    )


def add_invalid(connection: Connection, invalid: InvalidEvent, received_at: datetime) -> None:
    """Store a refused event as a dead letter, with its code, account and event id."""
    add_dead_letter(
        connection,
        raw=invalid.raw,
        error=invalid.reason,
        received_at=received_at,
        account_id=invalid.account_id,
        event_id=invalid.event_id,
        reason=invalid.code,
    )


def _dead_letter_entry(row: Any) -> dict[str, str]:
    """A dead letter as its stream entry (Redis fields hold no null: absent is "")."""
    return {
        "raw": row.raw,
        "error": row.error,
        "reason": row.reason or "",
        "account_id": row.account_id or "",
        "event_id": row.event_id or "",
        "received_at": row.received_at.isoformat(),
        "dead_letter_id": str(row.id),
    }


def relay(
    engine: Engine,
    redis: Redis,
    now: datetime,
    batch_size: int = 1000,
    *,
    made: Sequence[Decision] | None = None,
    with_dead_letters: bool = True,
) -> int:
    """Publish what the outbox holds; returns how many entries were sent.

    `made`: of the decisions, just the batch these are, which the caller has just stored: a task
    relays what it made itself, so an account's burst of closes never queues another account's
    routing decision behind it; the periodic relay sends whatever is left over (after a crash
    between commit and relay). Their outbox row is claimed and deleted in one statement and
    they are sent from memory (`Decision.data`, the JSON their rows hold), not read back.

    Outbox rows are claimed under lock (SKIP LOCKED on PostgreSQL), sent, then committed as
    deleted, so two relays at once do not send the same batch twice; a failure before the
    commit leaves them for the next relay. `batch_size`: decisions per round of the periodic
    relay (whole outbox rows: at least one).
    """
    sent = 0
    while True:
        with engine.begin() as connection:
            if made is None or with_dead_letters:
                _without_waiting_for_the_disk(connection)
            if made is None:
                data, more_decisions = _claim_oldest(connection, batch_size)
            else:
                data, more_decisions = _claim_own(connection, made), False
            letters: Sequence[Any] = []
            if with_dead_letters:
                letters = connection.execute(
                    select(dead_letters)
                    .where(dead_letters.c.published_at.is_(None))
                    .order_by(dead_letters.c.id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                ).all()
            append_data(redis, DECISIONS_STREAM, data)
            append(redis, DEAD_LETTERS_STREAM, [_dead_letter_entry(row) for row in letters])
            if letters:
                connection.execute(
                    update(dead_letters)
                    .where(dead_letters.c.id.in_([row.id for row in letters]))
                    .values(published_at=now)
                )
            sent += len(data) + len(letters)
        if not more_decisions and len(letters) < batch_size:
            return sent


def _claim_own(connection: Connection, made: Sequence[Decision]) -> list[str]:
    """Claim and delete the outbox row of the batch `made` is (keyed by its least id), unless
    another relay holds it (that one sends it); returns the data to send: of `made`, the
    decisions the row names. (Decisions the row names that `made` lacks are read back: nothing
    claimed goes unsent.)"""
    if not made:
        return []
    first = min(d.decision_id for d in made)
    claim = _CLAIM_OWN_WITHOUT_WAITING if connection.dialect.name == "postgresql" else _CLAIM_OWN
    claimed = connection.execute(claim, {"first": first}).scalar_one_or_none()
    if claimed is None:
        return []
    ids = json.loads(claimed)  # in the order made
    known = {d.decision_id: d.data for d in made}
    missing = [i for i in ids if i not in known]
    if missing:
        known |= _data_of(connection, missing)
    return [known[i] for i in ids if i in known]


def _claim_oldest(connection: Connection, batch_size: int) -> tuple[list[str], bool]:
    """Claim and delete the oldest outbox rows (about `batch_size` decisions, whole rows);
    returns their decisions' data in decision order and whether more rows may wait."""
    ids, more = claim_oldest(connection, decision_outbox, batch_size)
    if not ids:
        return [], more
    data = _data_of(connection, ids)
    # An id whose decision is gone (deleted by hand) is dropped: there is nothing to send.
    return [data[i] for i in ids if i in data], more


def claim_oldest(connection: Connection, outbox: Table, batch_size: int) -> tuple[list[str], bool]:
    """Claim and delete the oldest rows of an outbox table (`decision_outbox` or
    `webhook_outbox`): whole rows, about `batch_size` decisions, one at least. Returns the
    decision ids they named, oldest row first, and whether more rows may wait. Rows another
    transaction holds are skipped (SKIP LOCKED on PostgreSQL), so two consumers share the work."""
    locked = connection.execute(
        select(outbox.c.first_decision_id, outbox.c.size)
        .order_by(outbox.c.made_at)
        .limit(batch_size)  # each row holds one decision at least
        .with_for_update(skip_locked=True)
    ).all()
    if not locked:
        return [], False
    keys: list[str] = []
    total = 0
    for key, size in locked:  # whole rows, oldest first, up to batch_size decisions (one row
        if keys and total + size > batch_size:  # at least); the rest stay locked until the
            break  # commit and go in the next round
        keys.append(key)
        total += size
    deleted = connection.execute(
        delete(outbox)
        .where(outbox.c.first_decision_id.in_(keys))
        .returning(outbox.c.first_decision_id, outbox.c.decision_ids)
    )
    claimed: dict[str, str] = {row.first_decision_id: row.decision_ids for row in deleted}
    return [i for key in keys if key in claimed for i in json.loads(claimed[key])], True


def _data_of(connection: Connection, ids: list[str]) -> dict[str, str]:
    """The stored JSON of these decisions, by id, in one statement."""
    return {
        row.decision_id: row.data
        for row in of_decisions(connection, ids, decisions.c.decision_id, decisions.c.data)
    }


def of_decisions(connection: Connection, ids: list[str], *columns: Column[Any]) -> Result[Any]:
    """These columns of the decisions `ids` names (those that exist), in decision order, in one
    statement: on PostgreSQL the ids travel as one JSON parameter (a fixed, cached statement;
    psycopg parses a statement of 500 placeholders anew each time, ~60 µs of CPU per id), on
    SQLite as the bound list."""
    where: Any = ids
    params: dict[str, str] = {}
    if connection.dialect.name == "postgresql":
        source = rows_param("ids", [decisions.c.decision_id])
        where = select(source.c.decision_id)
        params = {"ids": rows_json({"decision_id": i} for i in ids)}
    return connection.execute(
        select(*columns).where(decisions.c.decision_id.in_(where)).order_by(decisions.c.decided_at),
        params,
    )
