"""The handlers (ingest, sweep) with a real Runtime on SQLite and PostgreSQL, no Celery."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from policies.state import Conversation
from store import conversations
from store.tables import dead_letters, decisions
from worker.deadlines import close_due
from worker.ingest import IngestResult, ingest
from worker.runtime import Runtime
from worker.settings import Settings


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
        with self.runtime.engine.connect() as connection:
            found = conversations.get(connection, account, conversation_id)
        assert found is not None, f"no conversation {conversation_id}"
        return found

    def decisions(self, account: str) -> list[dict[str, Any]]:
        import json

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


@pytest.fixture
def service(engine: Engine, database_url: str, redis_url: str) -> Iterator[Service]:
    settings = Settings(database_url=database_url, broker_url=redis_url)  # type: ignore[arg-type]
    client = Redis.from_url(redis_url)
    yield Service(Runtime(settings=settings, engine=engine, redis=client))
    client.close()
