"""Account settings, line owners and agents: read with defaults, locked, written.

Each row keeps the `occurred_at` and `event_id` of the update that set it (its `Stamp`); which
update wins, and how settings merge, is policies.configuration's.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table, bindparam, select, text, tuple_, update
from sqlalchemy.engine import Connection

from events.business_hours import BusinessHours
from events.durations import isoformat, parse_duration
from events.models import AccountSettingsUpdated, AgentUpdated, LineUpdated
from policies.configuration import (
    NEVER_UPDATED,
    Stamp,
    Stamped,
    line_of,
    merge_agent,
    merge_settings,
    newest_wins,
    stamp_of,
)
from policies.state import AccountSettings, Agent, LineOwner, LineSettings, Presence
from store.db import each_key, insert_ignoring_conflicts, rows_json, rows_param
from store.tables import accounts, agents, lines

# The reads every ingest batch makes, built once and kept: a statement built per batch costs
# its construction and SQLAlchemy's cache key of it (a kept statement's is memoized), more CPU
# than the round trip itself for a message of one event.
_ACCOUNTS_BY_ID = select(accounts).where(
    accounts.c.account_id.in_(bindparam("ids", expanding=True))
)
_LINES_BY_KEY = select(lines).where(
    tuple_(lines.c.account_id, lines.c.line_id).in_(bindparam("keys", expanding=True))
)
_AGENT_KEY_COLUMNS = [agents.c.account_id, agents.c.agent_id]
_AGENTS_BY_KEY = select(agents).where(
    tuple_(*_AGENT_KEY_COLUMNS).in_(bindparam("keys", expanding=True))
)
_AGENT_KEYS = rows_param("agent_keys", _AGENT_KEY_COLUMNS)
# Each key probes the primary key (store.db.each_key): joined, the planner hashed the keys and
# scanned every agent of every account per batch (or per one-event message).
_AGENTS_BY_KEYS = each_key(
    _AGENT_KEYS,
    select(agents).where(
        agents.c.account_id == _AGENT_KEYS.c.account_id,
        agents.c.agent_id == _AGENT_KEYS.c.agent_id,
    ),
    "agent",
)


def account_settings(
    connection: Connection, account_ids: Collection[str], default: AccountSettings
) -> dict[str, AccountSettings]:
    """Settings of each account; an account never configured gets `default`."""
    found = dict.fromkeys(account_ids, default)
    if account_ids:
        rows = connection.execute(_ACCOUNTS_BY_ID, {"ids": sorted(account_ids)})
        for row in rows:
            found[row.account_id] = _settings_of(dict(row._mapping))
    return found


def _settings_of(row: Mapping[str, Any]) -> AccountSettings:
    return AccountSettings(
        inactivity_close_after=row["inactivity_close_after"],
        reassignment_window=row["reassignment_window"],
        bot_enabled=row["bot_enabled"],
        close_warning_before=row["close_warning_before"],
        business_hours=_business_hours_of(row["business_hours"]),
        route_to_away_agents=row["route_to_away_agents"],
        window_counts_business_hours=row["window_counts_business_hours"],
    )


def _settings_row(settings: AccountSettings) -> dict[str, Any]:
    return {
        "inactivity_close_after": settings.inactivity_close_after,
        "reassignment_window": settings.reassignment_window,
        "bot_enabled": settings.bot_enabled,
        "close_warning_before": settings.close_warning_before,
        "business_hours": _business_hours_json(settings.business_hours),
        "route_to_away_agents": settings.route_to_away_agents,
        "window_counts_business_hours": settings.window_counts_business_hours,
    }


def _business_hours_of(stored: str | None) -> BusinessHours | None:
    return None if stored is None else BusinessHours.model_validate_json(stored)


def _business_hours_json(value: BusinessHours | None) -> str | None:
    return None if value is None else value.model_dump_json()


_DURATIONS = ("inactivity_close_after", "reassignment_window", "close_warning_before")


def overrides_json(overrides: LineSettings) -> str | None:
    """A line's overrides as stored: a JSON object of only the settings it sets (None: none).
    Durations as ISO 8601, business hours as their event shape."""
    if not overrides.values:
        return None
    encoded: dict[str, Any] = {}
    for name, value in sorted(overrides.values.items()):
        if value is None or isinstance(value, bool):
            encoded[name] = value
        elif name in _DURATIONS:
            encoded[name] = isoformat(value)
        else:
            encoded[name] = value.model_dump(mode="json")
    return json.dumps(encoded, sort_keys=True)


def overrides_of(stored: str | None) -> LineSettings:
    """The inverse of `overrides_json`."""
    if stored is None:
        return LineSettings()
    values: dict[str, Any] = {}
    for name, value in json.loads(stored).items():
        if value is None or name == "bot_enabled":
            values[name] = value
        elif name in _DURATIONS:
            values[name] = parse_duration(value)
        else:
            values[name] = BusinessHours.model_validate(value)
    return LineSettings(values)


def _line_of(row: Mapping[str, Any]) -> LineOwner:
    return LineOwner(
        agent_id=row["owner_agent_id"],
        group_id=row["owner_group_id"],
        overrides=overrides_of(row["overrides"]),
    )


def _agent_of(row: Mapping[str, Any]) -> Agent:
    return Agent(
        active=bool(row["active"]), presence=Presence(row["presence"]), capacity=row["capacity"]
    )


def line_owners(
    connection: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], LineOwner]:
    """Owner of each (account_id, line_id); a line never configured has none."""
    found = dict.fromkeys(keys, LineOwner())
    if keys:
        rows = connection.execute(_LINES_BY_KEY, {"keys": sorted(keys)})
        for row in rows:
            found[(row.account_id, row.line_id)] = _line_of(dict(row._mapping))
    return found


def line_overrides(connection: Connection, account_id: str) -> dict[str, LineSettings]:
    """The overrides of each line of the account that has any, by line id (an account has few
    lines: read whole)."""
    rows = connection.execute(
        select(lines.c.line_id, lines.c.overrides).where(
            lines.c.account_id == account_id, lines.c.overrides.is_not(None)
        )
    )
    found = {row.line_id: overrides_of(row.overrides) for row in rows}
    return {line_id: overrides for line_id, overrides in found.items() if overrides.values}


def agent_states(
    connection: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Agent]:
    """What is known of each (account_id, agent_id); unknown agents are left out."""
    if not keys:
        return {}
    if connection.dialect.name == "postgresql":
        # The keys as one JSON record set joined to the primary key: a row-value IN list of a
        # batch's agents is a new, long statement text every batch, which psycopg parses anew
        # (about as much CPU as the rest of the read phase) and PostgreSQL plans anew.
        statement: Any = _AGENTS_BY_KEYS
        rows = ({"account_id": a, "agent_id": g} for a, g in sorted(keys))
        params: dict[str, Any] = {"agent_keys": rows_json(rows)}
    else:
        statement, params = _AGENTS_BY_KEY, {"keys": sorted(keys)}
    return {
        (row.account_id, row.agent_id): _agent_of(dict(row._mapping))
        for row in connection.execute(statement, params)
    }


def lock_account_rows(
    connection: Connection, account_ids: Collection[str], default: AccountSettings
) -> dict[str, Stamped[AccountSettings]]:
    """Lock these accounts' settings rows, in order, creating with `default` those absent."""
    initial = _settings_row(default)
    found: dict[str, Stamped[AccountSettings]] = {}
    for account_id in sorted(account_ids):
        row = _lock_or_create(connection, accounts, {"account_id": account_id}, initial)
        found[account_id] = Stamped(_settings_of(row), _stamp(row))
    return found


def lock_line_rows(
    connection: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Stamped[LineOwner]]:
    """Lock these (account_id, line_id) rows, in order, creating ownerless those absent."""
    found: dict[tuple[str, str], Stamped[LineOwner]] = {}
    for account_id, line_id in sorted(keys):
        row = _lock_or_create(
            connection,
            lines,
            {"account_id": account_id, "line_id": line_id},
            {"owner_agent_id": None, "owner_group_id": None, "overrides": None},
        )
        found[(account_id, line_id)] = Stamped(_line_of(row), _stamp(row))
    return found


def lock_agent_rows(
    connection: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Stamped[Agent]]:
    """Lock these (account_id, agent_id) rows, in order, creating those absent as an agent
    never configured (active, online, no limit)."""
    found: dict[tuple[str, str], Stamped[Agent]] = {}
    unknown = Agent()
    initial = {"active": unknown.active, "presence": unknown.presence.value, "capacity": None}
    for account_id, agent_id in sorted(keys):
        row = _lock_or_create(
            connection, agents, {"account_id": account_id, "agent_id": agent_id}, initial
        )
        found[(account_id, agent_id)] = Stamped(_agent_of(row), _stamp(row))
    return found


def save_account_rows(connection: Connection, rows: Mapping[str, Stamped[AccountSettings]]) -> None:
    """Write settings rows (locked before), each with the stamp of the update that set it."""
    for account_id, row in sorted(rows.items()):
        connection.execute(
            update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(
                **_settings_row(row.value),
                updated_at=row.stamp.occurred_at,
                updated_event_id=row.stamp.event_id,
            )
        )


def save_line_rows(
    connection: Connection, rows: Mapping[tuple[str, str], Stamped[LineOwner]]
) -> None:
    """Write lines (owner and overrides; rows locked before), each with its stamp."""
    for (account_id, line_id), row in sorted(rows.items()):
        connection.execute(
            update(lines)
            .where(lines.c.account_id == account_id, lines.c.line_id == line_id)
            .values(
                owner_agent_id=row.value.agent_id,
                owner_group_id=row.value.group_id,
                overrides=overrides_json(row.value.overrides),
                updated_at=row.stamp.occurred_at,
                updated_event_id=row.stamp.event_id,
            )
        )


def save_agent_rows(connection: Connection, rows: Mapping[tuple[str, str], Stamped[Agent]]) -> None:
    """Write agents (rows locked before), each with its stamp."""
    for (account_id, agent_id), row in sorted(rows.items()):
        connection.execute(
            update(agents)
            .where(agents.c.account_id == account_id, agents.c.agent_id == agent_id)
            .values(
                active=row.value.active,
                presence=row.value.presence.value,
                capacity=row.value.capacity,
                updated_at=row.stamp.occurred_at,
                updated_event_id=row.stamp.event_id,
            )
        )


def apply_settings(
    connection: Connection, event: AccountSettingsUpdated, default: AccountSettings
) -> tuple[AccountSettings, AccountSettings] | None:
    """Apply one settings update (see policies.configuration.merge_settings).

    Returns (before, after), or None when the update is older than the stored one.
    """
    row = lock_account_rows(connection, [event.account_id], default)[event.account_id]
    after = merge_settings(row.value, row.stamp, event)
    if after is None:
        return None
    save_account_rows(connection, {event.account_id: Stamped(after, stamp_of(event))})
    return row.value, after


def apply_line(connection: Connection, event: LineUpdated) -> bool:
    """Set a line (owner, overrides) unless a newer update is already applied; True if
    applied."""
    key = (event.account_id, event.line_id)
    row = lock_line_rows(connection, [key])[key]
    if not newest_wins(event, row.stamp):
        return False
    save_line_rows(connection, {key: Stamped(line_of(event), stamp_of(event))})
    return True


def apply_agent(connection: Connection, event: AgentUpdated) -> bool:
    """Update an agent unless a newer update is already applied; True if applied."""
    key = (event.account_id, event.agent_id)
    row = lock_agent_rows(connection, [key])[key]
    merged = merge_agent(row.value, row.stamp, event)
    if merged is None:
        return False
    save_agent_rows(connection, {key: Stamped(merged, stamp_of(event))})
    return True


def _stamp(row: dict[str, Any]) -> Stamp:
    return Stamp(row["updated_at"], row["updated_event_id"])


def _lock_or_create(
    connection: Connection, table: Table, key: dict[str, str], initial: dict[str, Any]
) -> dict[str, Any]:
    connection.execute(
        insert_ignoring_conflicts(connection, table, list(key)),
        [
            {
                **key,
                **initial,
                "updated_at": NEVER_UPDATED.occurred_at,
                "updated_event_id": NEVER_UPDATED.event_id,
            }
        ],
    )
    statement = select(table).with_for_update()
    for name, value in key.items():
        statement = statement.where(table.c[name] == value)
    return dict(connection.execute(statement).one()._mapping)


_ACCOUNT_LOCK_CLASS = 0x636C  # "cl": keeps convlife's advisory locks apart from others'
_LOCK_ACCOUNTS = text(
    "SELECT CASE WHEN a.exclusive "
    "THEN pg_advisory_xact_lock(:class, hashtext(a.account_id)) "
    "ELSE pg_advisory_xact_lock_shared(:class, hashtext(a.account_id)) END "
    "FROM json_to_recordset(CAST(:accounts AS json)) "
    "AS a(account_id text, exclusive boolean)"
)


def lock_accounts(
    connection: Connection, changing: Collection[str], reading: Collection[str]
) -> None:
    """Order this transaction against settings changes of these accounts (PostgreSQL).

    A transaction that changes an account's settings (`changing`) takes the account's lock
    exclusively; one that writes the account's conversations from its settings (`reading`)
    takes it shared. Without it, a batch writing a new conversation with the old setting and a
    settings change rescheduling the open conversations (which cannot see the uncommitted new
    one) could both commit, leaving that conversation with the old deadline, or none.

    Advisory locks, because an account never configured has no row to lock. Taken in account
    order, before any conversation row, so two batches cannot deadlock on them.
    """
    if connection.dialect.name != "postgresql":
        return  # SQLite runs one writing transaction at a time
    exclusive = set(changing)
    accounts = sorted(exclusive | set(reading))
    if not accounts:
        return
    connection.execute(
        _LOCK_ACCOUNTS,
        {
            "class": _ACCOUNT_LOCK_CLASS,
            "accounts": json.dumps(
                [{"account_id": a, "exclusive": a in exclusive} for a in accounts]
            ),
        },
    )
