"""Builders for test data (random ids, raw events as upstream sends them, as dicts) and the
`Service` that drives the handlers directly."""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from redis import Redis
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from policies.state import Conversation
from service.deadlines import close_due
from service.ingest import IngestResult, ingest
from service.runtime import Runtime
from store import views
from store.tables import dead_letters, decisions

_counter = itertools.count()


def new_id(prefix: str) -> str:
    """A random id, so tests sharing a database or stream never see each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def utc(value: str) -> datetime:
    """`utc("2026-01-01T10:00:00")` -> an aware UTC datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def rfc3339(moment: datetime) -> str:
    """A time as the text an event carries (`2026-03-01T10:00:00+00:00`)."""
    return moment.isoformat()


def event(type_: str, account_id: str, occurred_at: datetime, **fields: Any) -> dict[str, Any]:
    """A raw event (a dict) with a fresh event_id unless one is given."""
    fields.setdefault("event_id", new_id(f"ev{next(_counter)}"))
    return {"type": type_, "account_id": account_id, "occurred_at": rfc3339(occurred_at), **fields}


def conversation_event(
    type_: str,
    account_id: str,
    conversation_id: str,
    occurred_at: datetime,
    *,
    contact_id: str = "contact-1",
    line_id: str = "line-1",
    **fields: Any,
) -> dict[str, Any]:
    return event(
        type_,
        account_id,
        occurred_at,
        conversation_id=conversation_id,
        contact_id=contact_id,
        line_id=line_id,
        **fields,
    )


def settings_event(
    account_id: str,
    occurred_at: datetime,
    *,
    close_after: str | float | None = None,
    window: str | float | None = None,
    bot: bool = False,
) -> dict[str, Any]:
    return event(
        "account.settings_updated",
        account_id,
        occurred_at,
        inactivity_close_after=close_after,
        reassignment_window=window,
        bot_enabled=bot,
    )


class Service:
    """Drives the handlers directly; `now` is always given, never read from a clock."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def ingest(self, payload: Any, now: datetime) -> IngestResult:
        return ingest(payload, self.runtime, now)

    def close_due(self, now: datetime, account: str) -> list[Any]:
        """Sweep everything due at `now`; the account's closes (tests share a database)."""
        closed = []
        while True:
            claimed, made, _ = close_due(self.runtime, now)
            closed += [d for d in made if d.account_id == account]
            if claimed < self.runtime.settings.sweep_batch_size:
                return closed

    def conversation(self, account: str, conversation_id: str) -> tuple[Conversation, Any]:
        """The conversation and its next check, as `convlife conversation show` reads them."""
        default = self.runtime.settings.default_account_settings
        with self.runtime.engine.connect() as connection:
            found = views.conversation_view(connection, account, conversation_id, default)
        assert found is not None, f"no conversation {conversation_id}"
        return found.state, found.close_due_at

    def decisions(self, account: str) -> list[dict[str, Any]]:
        with self.runtime.engine.connect() as connection:
            rows = connection.execute(
                select(decisions.c.data)
                .where(decisions.c.account_id == account)
                .order_by(decisions.c.decided_at, decisions.c.decision_id)
            ).all()
        return [json.loads(row.data) for row in rows]

    def dead_letters(self, marker: str) -> list[Any]:
        with self.runtime.engine.connect() as connection:
            return list(
                connection.execute(
                    select(dead_letters).where(dead_letters.c.raw.contains(marker))
                ).all()
            )

    def count_decisions(self, account: str) -> int:
        with self.runtime.engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).where(decisions.c.account_id == account)
                ).scalar_one()
            )


@contextmanager
def redis_user_denied(redis_url: str, *commands: str) -> Iterator[str]:
    """The URL of a Redis user of this test only, on `redis_url`'s server and database, whose ACL
    denies `commands` (everything else allowed); the user is deleted afterwards."""
    admin = Redis.from_url(redis_url)
    name, password = f"convlife-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin.acl_setuser(
        name,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        channels=["*"],
        commands=["+@all", *(f"-{command}" for command in commands)],
    )
    kwargs = admin.connection_pool.connection_kwargs
    try:
        yield f"redis://{name}:{password}@{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
    finally:
        admin.acl_deluser(name)
        admin.close()


@contextmanager
def close_refused(engine: Engine, conversation_id: str) -> Iterator[None]:
    """While inside: PostgreSQL refuses to close this conversation (a trigger raises a data
    exception, SQLSTATE 22000, as a CHECK or a bad value would); other writes of it go through,
    so the sweep's quarantine does."""
    name = f"refuse_{uuid.uuid4().hex[:8]}"
    with engine.begin() as connection:
        connection.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.conversation_id = '{conversation_id}' AND NEW.status = 'closed' THEN "
                "RAISE EXCEPTION 'refused by the test' USING ERRCODE = '22000'; END IF; "
                f"RETURN NEW; END $$ LANGUAGE plpgsql; "
                f"CREATE TRIGGER {name} BEFORE UPDATE ON conversations "
                f"FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(
                text(f"DROP TRIGGER {name} ON conversations; DROP FUNCTION {name}()")
            )


def turn_taken(path: str) -> bool:
    """Whether some SQLite writer holds the write turn of `path` (the `<database>-writer`
    file), tried from an open file of our own, as another process would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
