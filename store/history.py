"""Reading back what the database keeps: decisions by time, dead letters by account.

The Redis streams are trimmed; the database keeps every decision and every dead letter, so a
consumer that fell behind the trim reads them from here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection, Engine

from store.tables import dead_letters, decisions


def decisions_between(
    engine: Engine,
    since: datetime,
    until: datetime | None = None,
    *,
    account_id: str | None = None,
    page_size: int = 1000,
) -> Iterator[str]:
    """Every decision with `since <= decided_at < until` (aware datetimes), oldest first, as its
    JSON (what the stream carries). Read page by page, each page in its own short transaction
    (keyset on `(decided_at, decision_id)`): memory stays flat however many there are."""
    after: tuple[datetime, str] | None = None
    while True:
        query = select(decisions.c.decided_at, decisions.c.decision_id, decisions.c.data).where(
            decisions.c.decided_at >= since
        )
        if until is not None:
            query = query.where(decisions.c.decided_at < until)
        if account_id is not None:
            query = query.where(decisions.c.account_id == account_id)
        if after is not None:
            at, decision_id = after
            query = query.where(
                decisions.c.decided_at >= at,
                or_(
                    decisions.c.decided_at > at,
                    and_(decisions.c.decided_at == at, decisions.c.decision_id > decision_id),
                ),
            )
        query = query.order_by(decisions.c.decided_at, decisions.c.decision_id).limit(page_size)
        with engine.connect() as connection:
            page = connection.execute(query).all()
        for row in page:
            yield row.data
        if len(page) < page_size:
            return
        after = (page[-1].decided_at, page[-1].decision_id)


def newest_dead_letters(engine: Engine, limit: int, *, account_id: str | None = None) -> list[Any]:
    """The `limit` newest dead letters (of one account, or of all), oldest first."""
    query = select(dead_letters)
    if account_id is not None:
        query = query.where(dead_letters.c.account_id == account_id)
    with engine.connect() as connection:
        rows = connection.execute(query.order_by(dead_letters.c.id.desc()).limit(limit)).all()
    return list(reversed(rows))


def dead_letter(connection: Connection, dead_letter_id: int) -> Any | None:
    """One dead letter's row, or None."""
    query = select(dead_letters).where(dead_letters.c.id == dead_letter_id)
    return connection.execute(query).first()


def mark_replayed(connection: Connection, dead_letter_id: int, at: datetime) -> None:
    """Record that a dead letter was sent back into ingest at `at` (aware UTC)."""
    connection.execute(
        update(dead_letters).where(dead_letters.c.id == dead_letter_id).values(replayed_at=at)
    )
