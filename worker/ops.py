"""Ops commands: change settings, list and replay dead letters, recompute deadlines."""

from __future__ import annotations

import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from pydantic import TypeAdapter
from sqlalchemy import select, update

from events.parsing import InvalidEvent, parse_event, printable_json
from events.publish import publish
from store import configuration, history
from store.db import make_engine
from store.tables import conversations, dead_letters
from worker.deadlines import reschedule_account
from worker.settings import Settings

_duration = TypeAdapter(timedelta)


def parse_duration(text: str) -> timedelta | None:
    """`P7D`, `PT24H`, a number of seconds, or `never`."""
    if text.strip().lower() in {"never", "null", "none", "off"}:
        return None
    value = float(text) if text.replace(".", "", 1).isdigit() else text
    duration: timedelta = _duration.validate_python(value)
    if duration <= timedelta(0):
        raise ValueError("a duration must be positive (or 'never')")
    return duration


def settings_set(
    settings: Settings,
    account_id: str,
    close_after: str | None,
    window: str | None,
    bot: str | None,
) -> dict[str, Any]:
    """Publish an `account.settings_updated` with the given fields (the rest unchanged).

    It goes through ingest like any event, so ordering and idempotency rules apply.
    """
    event: dict[str, Any] = {
        "event_id": f"ops-{uuid.uuid4()}",
        "type": "account.settings_updated",
        "account_id": account_id,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    if close_after is not None:
        duration = parse_duration(close_after)
        event["inactivity_close_after"] = None if duration is None else duration.total_seconds()
    if window is not None:
        duration = parse_duration(window)
        event["reassignment_window"] = None if duration is None else duration.total_seconds()
    if bot is not None:
        event["bot_enabled"] = bot.lower() in {"on", "true", "yes", "1"}
    parse_event(event)  # refuse here what the worker would dead-letter
    publish(event, broker_url=settings.broker_url.get_secret_value())
    return event


def dead_letters_list(
    settings: Settings, limit: int, account_id: str | None = None, out: TextIO | None = None
) -> None:
    """The newest dead letters (of one account, or of all), one JSON line each, oldest first
    (raw payload cut to 500 characters). Control characters are escaped: the text came from
    upstream and goes to an operator's terminal."""
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        rows = history.newest_dead_letters(engine, limit, account_id=account_id)
    finally:
        engine.dispose()
    for row in rows:
        line = {
            "id": row.id,
            "received_at": row.received_at.isoformat(),
            "reason": row.reason,
            "account_id": row.account_id,
            "event_id": row.event_id,
            "error": row.error,
            "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None,
            "raw": row.raw[:500],
        }
        print(printable_json(json.dumps(line, ensure_ascii=False)), file=out or sys.stdout)


def dead_letters_replay(settings: Settings, dead_letter_id: int, fixed: str | None) -> str:
    """Send a dead letter back into ingest: its fixed payload (or the stored one, for a fault
    that was elsewhere), validated first; marks it replayed. Returns the event id sent.

    A fixed payload must be for the dead letter's account when the dead letter names one: a
    replay never moves an event into another account."""
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        with engine.begin() as connection:
            row = connection.execute(
                select(dead_letters).where(dead_letters.c.id == dead_letter_id)
            ).first()
            if row is None:
                raise LookupError(f"no dead letter {dead_letter_id}")
            payload = fixed if fixed is not None else row.raw
            try:
                event = parse_event(payload, max_bytes=settings.max_event_bytes)
            except InvalidEvent as error:
                raise ValueError(f"still not a valid event: {error.reason}") from None
            if row.account_id is not None and event.account_id != row.account_id.strip():
                raise ValueError(
                    f"the fixed event is for account {event.account_id!r}, the dead letter "
                    f"for account {row.account_id!r}: a replay stays in its account"
                )
            publish(json.loads(payload), broker_url=settings.broker_url.get_secret_value())
            connection.execute(
                update(dead_letters)
                .where(dead_letters.c.id == dead_letter_id)
                .values(replayed_at=datetime.now(UTC))
            )
        return event.event_id
    finally:
        engine.dispose()


def reindex(settings: Settings, progress: TextIO = sys.stderr) -> int:
    """Recompute every open conversation's deadline from its account's current settings.

    Needed after changing CONVLIFE_DEFAULT_INACTIVITY_CLOSE_AFTER (accounts never configured
    follow the default). convlife keeps no Redis index: the database column is the index, so
    this is all there is to rebuild. One transaction per account; prints progress.
    """
    engine = make_engine(settings.database_url.get_secret_value())
    default = settings.default_account_settings
    total = 0
    try:
        with engine.connect() as connection:
            account_ids = [
                row[0]
                for row in connection.execute(
                    select(conversations.c.account_id)
                    .where(conversations.c.status == "open")
                    .group_by(conversations.c.account_id)
                    .order_by(conversations.c.account_id)
                )
            ]
        for done, account_id in enumerate(account_ids, start=1):
            with engine.begin() as connection:
                configuration.lock_accounts(connection, changing=[account_id], reading=[])
                account = configuration.account_settings(connection, [account_id], default)
                count = reschedule_account(connection, account_id, account[account_id])
            total += count
            _bar(progress, done, len(account_ids), total)
    finally:
        engine.dispose()
    if account_ids:
        progress.write("\n")
    return total


def _bar(out: TextIO, done: int, of: int, conversations_done: int) -> None:
    width = 30
    filled = width * done // of
    out.write(
        f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{of} accounts, "
        f"{conversations_done} open conversations rescheduled"
    )
    out.flush()
