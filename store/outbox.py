"""The transactional outbox: decisions and dead letters are rows first, stream entries second.

A decision is written in the same transaction as the state change that caused it, then relayed
to its Redis stream and marked published. A crash between the two re-sends it on the next
relay: at least once, with the same `decision_id`, never lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from redis import Redis
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

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
from store.db import bulk_insert, rows_json, rows_param
from store.streams import DEAD_LETTERS_STREAM, DECISIONS_STREAM, append, append_data
from store.tables import dead_letters, decisions


def add_decisions(connection: Connection, items: Iterable[Decision]) -> list[str]:
    """Store decisions (a decision id already stored is skipped); returns the ids stored."""
    rows = [
        {
            "decision_id": d.decision_id,
            "type": d.type,
            "account_id": d.account_id,
            "conversation_id": d.conversation_id,
            "contact_id": d.contact_id,
            "decided_at": d.decided_at,
            "data": d.data,
            "published_at": None,
        }
        for d in items
    ]
    inserted = bulk_insert(
        connection,
        decisions,
        rows,
        key=["decision_id"],
        on_conflict="nothing",
        returning=[decisions.c.decision_id],
    )
    return [row.decision_id for row in inserted]


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
    """Publish what the outbox holds unpublished; returns how many entries were sent.

    `made`: of the decisions, just these, which the caller has just stored: a task relays what
    it made itself, so an account's burst of closes never queues another account's routing
    decision behind it; the periodic relay sends whatever is left over (after a crash between
    commit and relay). They are claimed and marked published in one statement and sent from
    memory (`Decision.data`, the JSON their rows hold), not read back.

    Rows are claimed under lock (SKIP LOCKED on PostgreSQL), sent, then committed as
    published, so two relays at once do not send the same row twice; a failure before the
    commit leaves them unpublished for the next relay.
    """
    sent = 0
    pending = None if made is None else list(made)
    while True:
        with engine.begin() as connection:
            data: list[str] = []
            if pending is None:
                rows = connection.execute(
                    select(decisions.c.decision_id, decisions.c.data)
                    .where(decisions.c.published_at.is_(None))
                    .order_by(decisions.c.decided_at)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                ).all()
                data = [row.data for row in rows]
                _mark_published(connection, [row.decision_id for row in rows], now)
                more_decisions = len(rows) >= batch_size
            else:
                chunk, pending = pending[:batch_size], pending[batch_size:]
                claimed = _claim(connection, [d.decision_id for d in chunk], now)
                data = [d.data for d in chunk if d.decision_id in claimed]
                more_decisions = bool(pending)
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


def _ids_param(connection: Connection, ids: list[str]) -> tuple[Any, dict[str, str]]:
    """`ids` as the right side of an IN: on PostgreSQL one JSON parameter (a fixed, cached
    statement; psycopg parses a statement of 500 placeholders anew each time, ~60 µs of CPU
    per id), on SQLite the bound list."""
    if connection.dialect.name == "postgresql":
        source = rows_param("ids", [decisions.c.decision_id])
        return select(source.c.decision_id), {"ids": rows_json({"decision_id": i} for i in ids)}
    return ids, {}


def _mark_published(connection: Connection, ids: list[str], now: datetime) -> None:
    """Mark rows this transaction holds locked as published, in one statement."""
    if not ids:
        return
    where, params = _ids_param(connection, ids)
    connection.execute(
        update(decisions).where(decisions.c.decision_id.in_(where)).values(published_at=now),
        params,
    )


def _claim(connection: Connection, ids: list[str], now: datetime) -> set[str]:
    """Of `ids`, mark published those still unpublished and not locked by another relay (which
    sends them itself), in one statement; returns them."""
    if not ids:
        return set()
    where, params = _ids_param(connection, ids)
    unpublished = decisions.alias("unpublished")
    lockable = (
        select(unpublished.c.decision_id)
        .where(unpublished.c.decision_id.in_(where), unpublished.c.published_at.is_(None))
        .with_for_update(skip_locked=True)
    )
    claimed = connection.execute(
        update(decisions)
        .where(decisions.c.decision_id.in_(lockable))
        .values(published_at=now)
        .returning(decisions.c.decision_id),
        params,
    )
    return set(claimed.scalars())
