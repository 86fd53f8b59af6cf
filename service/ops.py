"""Ops commands: change settings, list and replay dead letters, recompute deadlines."""

from __future__ import annotations

import json
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.engine import Engine, make_url

from events import durations
from events.business_hours import BusinessHours
from events.names import WORKER_DEFAULTS_KEY
from events.parsing import InvalidEvent, parse_event
from events.publish import publish
from policies.state import AccountSettings, LineSettings
from service.deadlines import reschedule_account
from service.errors import NotMigrated, RedisUnreachable, mask
from service.preflight import check_broker_eviction
from service.settings import Settings
from store import configuration, history, views
from store.accounts import accounts_with_open_conversations
from store.db import make_engine
from store.migrate import current_revision, head_revision, upgrade
from store.views import ConversationView


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or an in-memory one)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def store_name(settings: Settings) -> str:
    """The store a command uses, as an operator reads it (password masked)."""
    return mask(settings.database_url.get_secret_value())


def store_engine(settings: Settings) -> Engine:
    """An engine on the configured store, which must exist: a command that reads it never
    creates an empty SQLite file (it would then say 'no such table', or nothing at all)."""
    url = settings.database_url.get_secret_value()
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise NotMigrated(url, "does not exist yet")
    return make_engine(url)


@contextmanager
def store_session(settings: Settings) -> Iterator[Engine]:
    """`with store_session(settings) as engine:` an engine on the configured store (see
    `store_engine`), disposed when the block ends: what a short command reads and writes with."""
    engine = store_engine(settings)
    try:
        yield engine
    finally:
        engine.dispose()


def reach_redis(url: str, attempts: int = 3, pause: float = 0.5) -> None:
    """Ping Redis a few times (a restart takes a moment), then give up with RedisUnreachable:
    seconds, where the publisher's own retries would wait and then trace."""
    for attempt in range(attempts):
        client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        try:
            client.ping()
            return
        except (RedisConnectionError, RedisTimeoutError) as error:
            if attempt == attempts - 1:
                raise RedisUnreachable(url, error) from None
            time.sleep(pause)
        finally:
            client.close()


def preflight(settings: Settings) -> None:
    """What a long-running process checks before it starts; each failure is one line, exit 2."""
    reach_redis(settings.broker_url.get_secret_value())
    reach_redis(settings.streams_redis_url)
    check_broker_eviction(settings.broker_url.get_secret_value())


def schema_at_head(settings: Settings) -> None:
    """Raise NotMigrated unless the store's schema is the one this code expects."""
    with store_session(settings) as engine:
        current = current_revision(engine)
    if current != head_revision():
        detail = "has no convlife schema" if current is None else f"is at revision {current}"
        url = settings.database_url.get_secret_value()
        raise NotMigrated(url, f"{detail} (this code expects {head_revision()})")


def migrate(settings: Settings) -> None:
    """Bring the store's schema to head; a SQLite store's directory is created if needed."""
    url = settings.database_url.get_secret_value()
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    upgrade(url)


@dataclass(frozen=True)
class AccountView:
    """An account's settings as the workers apply them, and where they come from; and the
    settings each of its lines overrides (only lines that override any), by line id."""

    settings: AccountSettings
    source: str
    lines: dict[str, LineSettings] = field(default_factory=dict)


def overrides_shown(overrides: LineSettings) -> dict[str, Any]:
    """A line's overrides as `line.updated` carries them (durations ISO 8601, null: Never or
    off); a setting left out inherits the account's value."""
    stored = configuration.overrides_json(overrides)
    shown: dict[str, Any] = {} if stored is None else json.loads(stored)
    return shown


def publish_worker_defaults(settings: Settings, now: datetime) -> None:
    """Write the account defaults this worker applies where `settings show` reads them."""
    defaults = settings.default_account_settings
    shown = {
        "inactivity_close_after": iso_duration(defaults.inactivity_close_after),
        "reassignment_window": iso_duration(defaults.reassignment_window),
        "bot_enabled": defaults.bot_enabled,
        "published_at": now.isoformat(),
        "host": socket.gethostname(),
    }
    client = Redis.from_url(settings.streams_redis_url)
    try:
        client.set(WORKER_DEFAULTS_KEY, json.dumps(shown))
    finally:
        client.close()


def worker_defaults(settings: Settings) -> AccountView:
    """The defaults the workers published at start; this process's own if none has."""
    client = Redis.from_url(settings.streams_redis_url, decode_responses=True)
    try:
        raw: Any = client.get(WORKER_DEFAULTS_KEY)
    finally:
        client.close()
    if raw is None:
        return AccountView(
            settings.default_account_settings,
            "never configured: this shell's CONVLIFE_DEFAULT_* apply (no worker has published "
            f"its defaults on {mask(settings.streams_redis_url)} yet)",
        )
    published = json.loads(raw)
    defaults = AccountSettings(
        inactivity_close_after=parse_duration_or_never(published["inactivity_close_after"]),
        reassignment_window=parse_duration_or_never(published["reassignment_window"]),
        bot_enabled=bool(published["bot_enabled"]),
    )
    return AccountView(
        defaults,
        "never configured: the workers' defaults apply (CONVLIFE_DEFAULT_* of the worker "
        f"started at {published['published_at']} on {published['host']})",
    )


def account_view(settings: Settings, account_id: str) -> AccountView:
    """The settings the workers apply to `account_id`, and where they come from."""
    unset = AccountSettings()
    with store_session(settings) as engine, engine.connect() as connection:
        found = configuration.account_settings(connection, [account_id], unset)[account_id]
        lines = configuration.line_overrides(connection, account_id)
    return replace(_applied(settings, found, unset), lines=dict(sorted(lines.items())))


def conversation_view(
    settings: Settings, account_id: str, conversation_id: str
) -> ConversationView | None:
    """What the gateway's `GET …/conversations/{id}` returns (store/views.py), with the account's
    settings as the workers apply them; None when convlife has never seen the conversation."""
    unset = AccountSettings()
    with store_session(settings) as engine, engine.connect() as connection:
        view = views.conversation_view(connection, account_id, conversation_id, unset)
    if view is None:
        return None
    return replace(view, account=_applied(settings, view.account, unset).settings)


def _applied(settings: Settings, found: AccountSettings, unset: AccountSettings) -> AccountView:
    """`found` when the account set it (it is not the `unset` placeholder), else the defaults
    the workers published."""
    if found is not unset:
        return AccountView(found, "set for this account (account.settings_updated)")
    return worker_defaults(settings)


def parse_duration_or_never(value: object) -> timedelta | None:
    return durations.parse_duration(value, allow_never=True)


def parse_duration(text: str) -> timedelta | None:
    """A CLI flag's duration: the one language of events/durations.py (`never` allowed)."""
    return durations.parse_duration(text, allow_never=True, text=True)


def iso_duration(duration: timedelta | None) -> str | None:
    """A duration as ISO 8601 text (`P1D`), or None (JSON null) for never."""
    return None if duration is None else durations.isoformat(duration)


def settings_set(
    settings: Settings,
    account_id: str,
    close_after: str | None,
    window: str | None,
    bot: str | None,
    *,
    route_to_away_agents: bool | None = None,
    warn_before: str | None = None,
    business_hours: BusinessHours | Literal["unchanged"] | None = "unchanged",
    window_counts_business_hours: bool | None = None,
) -> dict[str, Any]:
    """Publish an `account.settings_updated` with the given fields (the rest unchanged; for
    `business_hours`, None means every hour counts, "unchanged" leaves it out).

    It goes through ingest like any event, so ordering and idempotency rules apply.
    """
    event: dict[str, Any] = {
        "event_id": f"ops-{uuid.uuid4()}",
        "type": "account.settings_updated",
        "account_id": account_id,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    if close_after is not None:
        event["inactivity_close_after"] = iso_duration(parse_duration(close_after))
    if window is not None:
        event["reassignment_window"] = iso_duration(parse_duration(window))
    if bot is not None:
        event["bot_enabled"] = bot.lower() in {"on", "true", "yes", "1"}
    if route_to_away_agents is not None:
        event["route_to_away_agents"] = route_to_away_agents
    if warn_before is not None:
        event["close_warning_before"] = iso_duration(parse_duration(warn_before))
    if business_hours != "unchanged":
        event["business_hours"] = (
            None if business_hours is None else business_hours.model_dump(mode="json")
        )
    if window_counts_business_hours is not None:
        event["window_counts_business_hours"] = window_counts_business_hours
    parse_event(event)  # refuse here what the worker would dead-letter
    publish(event, broker_url=settings.broker_url.get_secret_value())
    return event


def dead_letters_replay(settings: Settings, dead_letter_id: int, fixed: str | None) -> str:
    """Send a dead letter back into ingest: its fixed payload (or the stored one, for a fault
    that was elsewhere), validated first; marks it replayed. Returns the event id sent.

    A fixed payload must be for the dead letter's account when the dead letter names one: a
    replay never moves an event into another account."""
    with store_session(settings) as engine, engine.begin() as connection:
        row = history.dead_letter(connection, dead_letter_id)
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
        history.mark_replayed(connection, dead_letter_id, datetime.now(UTC))
    return event.event_id


def reindex(settings: Settings, progress: TextIO = sys.stderr) -> int:
    """Recompute every open conversation's deadline from its current settings (its account's,
    with its line's overrides).

    Needed after changing CONVLIFE_DEFAULT_INACTIVITY_CLOSE_AFTER (accounts never configured
    follow the default). convlife keeps no Redis index: the database column is the index, so
    this is all there is to rebuild. One transaction per account; prints progress.
    """
    default = settings.default_account_settings
    total = 0
    with store_session(settings) as engine:
        with engine.connect() as connection:
            account_ids = accounts_with_open_conversations(connection)
        for done, account_id in enumerate(account_ids, start=1):
            with engine.begin() as connection:
                configuration.lock_accounts(connection, changing=[account_id], reading=[])
                account = configuration.account_settings(connection, [account_id], default)
                count = reschedule_account(
                    connection, account_id, account[account_id], datetime.now(UTC)
                )
            total += count
            _bar(progress, done, len(account_ids), total)
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
