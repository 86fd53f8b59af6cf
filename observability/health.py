"""`convlife health`: one line per check, exit 1 if any fails (for container probes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis import Redis
from sqlalchemy import text

from events.names import HEARTBEAT_KEY, SWEEP_FAILURES_KEY
from service.ops import sqlite_path
from service.settings import Settings
from store.db import make_engine
from store.migrate import current_revision, head_revision
from store.webhooks import CHATWOOT, unauthorized

CHECKS = ("redis", "database", "migrations", "beat", "chatwoot")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def run_checks(settings: Settings, names: tuple[str, ...], now: datetime) -> list[Check]:
    """Run the named checks; each catches its own failure and says what it saw."""
    database_url = settings.database_url.get_secret_value()
    engine = make_engine(database_url)
    broker = Redis.from_url(settings.broker_url.get_secret_value(), socket_timeout=3)
    streams = Redis.from_url(settings.streams_redis_url, socket_timeout=3)

    def redis_check() -> str:
        broker.ping()
        streams.ping()
        return "broker and streams answer"

    def database_exists() -> None:
        # Connecting to SQLite creates the file: a probe must not leave an empty store behind.
        path = sqlite_path(database_url)
        if path is not None and not path.exists():
            raise RuntimeError(f"no database file at {path}: run convlife migrate")

    def database_check() -> str:
        database_exists()
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return "answers"

    def migrations_check() -> str:
        database_exists()
        current, head = current_revision(engine), head_revision()
        if current != head:
            raise RuntimeError(f"schema at {current}, code expects {head}: run convlife migrate")
        return f"at head ({head})"

    def beat_check() -> str:
        # The heartbeat is written after a sweep's work: its age is the time since the last
        # sweep that succeeded. A failure streak is reported with it.
        raw = streams.get(HEARTBEAT_KEY)
        failures = _failure_streak(streams.hgetall(SWEEP_FAILURES_KEY))
        if raw is None:
            raise RuntimeError(
                f"no sweep has succeeded yet{failures}: is beat running, and a worker on closes?"
            )
        last = datetime.fromisoformat(raw.decode() if isinstance(raw, bytes) else str(raw))
        age = max(now - last, timedelta(0))  # a heartbeat from a clock a hair ahead reads 0s
        limit = max(timedelta(seconds=settings.sweep_interval * 10), timedelta(seconds=30))
        if age > limit:
            raise RuntimeError(
                f"last successful sweep {age.total_seconds():.0f}s ago (limit {limit}){failures}"
            )
        return f"last successful sweep {age.total_seconds():.1f}s ago{failures}"

    def chatwoot_check() -> str:
        # A 401 stops every call to that Chatwoot: nothing is resolved or assigned until an
        # operator gives convlife a token Chatwoot accepts.
        database_exists()
        with engine.connect() as connection:
            refused = [s for s in unauthorized(connection) if s.kind == CHATWOOT]
        if refused:
            names = ", ".join(
                f"subscription {s.id} ({s.url}, account {s.account_id or 'all'})" for s in refused
            )
            raise RuntimeError(
                f"Chatwoot refused the API token (401) of {names}: delivery paused; "
                "convlife webhooks add --chatwoot --token NEW resumes it"
            )
        return "no Chatwoot subscription is refused"

    available: dict[str, Callable[[], str]] = {
        "redis": redis_check,
        "database": database_check,
        "migrations": migrations_check,
        "beat": beat_check,
        "chatwoot": chatwoot_check,
    }
    results = []
    try:
        for name in names:
            try:
                results.append(Check(name, True, available[name]()))
            except Exception as error:  # a probe reports, it does not crash
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                results.append(Check(name, False, f"{type(error).__name__}: {first}"))
    finally:
        engine.dispose()
        broker.close()
        streams.close()
    return results


def _failure_streak(raw: Any) -> str:
    """', then N sweeps failed in a row since T (last: error)', or '' when the last succeeded."""
    fields = {_text(k): _text(v) for k, v in raw.items()}
    if not fields.get("count"):
        return ""
    return (
        f"; {fields['count']} sweeps failed in a row since {fields.get('since', '?')} "
        f"(last: {fields.get('error', '?')})"
    )


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
