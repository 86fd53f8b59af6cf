"""Account settings, line owners and agents: read with defaults, locked, written.

Each row keeps the `occurred_at` and `event_id` of the update that set it (its `Stamp`); which
update wins, and how settings merge, is policies.configuration's.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table, select, text, tuple_, update
from sqlalchemy.engine import Connection

from events.models import AccountSettingsUpdated, AgentUpdated, LineUpdated
from policies.configuration import (
    NEVER_UPDATED,
    Stamp,
    Stamped,
    merge_settings,
    newest_wins,
    stamp_of,
)
from policies.state import AccountSettings, LineOwner
from store.db import insert_ignoring_conflicts
from store.tables import accounts, agents, lines


def account_settings(
    connection: Connection, account_ids: Collection[str], default: AccountSettings
) -> dict[str, AccountSettings]:
    """Settings of each account; an account never configured gets `default`."""
    found = dict.fromkeys(account_ids, default)
    if account_ids:
        rows = connection.execute(
            select(accounts).where(accounts.c.account_id.in_(sorted(account_ids)))
        )
        for row in rows:
            found[row.account_id] = AccountSettings(
                inactivity_close_after=row.inactivity_close_after,
                reassignment_window=row.reassignment_window,
                bot_enabled=row.bot_enabled,
            )
    return found


def line_owners(
    connection: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], LineOwner]:
    """Owner of each (account_id, line_id); a line never configured has none."""
    found = dict.fromkeys(keys, LineOwner())
    if keys:
        rows = connection.execute(
            select(lines).where(tuple_(lines.c.account_id, lines.c.line_id).in_(sorted(keys)))
        )
        for row in rows:
            found[(row.account_id, row.line_id)] = LineOwner(
                agent_id=row.owner_agent_id, group_id=row.owner_group_id
            )
    return found


def agents_active(
    connection: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], bool]:
    """Whether each known (account_id, agent_id) is active; unknown agents are left out."""
    if not keys:
        return {}
    rows = connection.execute(
        select(agents).where(tuple_(agents.c.account_id, agents.c.agent_id).in_(sorted(keys)))
    )
    return {(row.account_id, row.agent_id): row.active for row in rows}


def lock_account_rows(
    connection: Connection, account_ids: Collection[str], default: AccountSettings
) -> dict[str, Stamped[AccountSettings]]:
    """Lock these accounts' settings rows, in order, creating with `default` those absent."""
    initial = {
        "inactivity_close_after": default.inactivity_close_after,
        "reassignment_window": default.reassignment_window,
        "bot_enabled": default.bot_enabled,
    }
    found: dict[str, Stamped[AccountSettings]] = {}
    for account_id in sorted(account_ids):
        row = _lock_or_create(connection, accounts, {"account_id": account_id}, initial)
        settings = AccountSettings(
            inactivity_close_after=row["inactivity_close_after"],
            reassignment_window=row["reassignment_window"],
            bot_enabled=row["bot_enabled"],
        )
        found[account_id] = Stamped(settings, _stamp(row))
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
            {"owner_agent_id": None, "owner_group_id": None},
        )
        owner = LineOwner(agent_id=row["owner_agent_id"], group_id=row["owner_group_id"])
        found[(account_id, line_id)] = Stamped(owner, _stamp(row))
    return found


def lock_agent_rows(
    connection: Connection, keys: Collection[tuple[str, str]]
) -> dict[tuple[str, str], Stamped[bool]]:
    """Lock these (account_id, agent_id) rows (active or not), in order, creating those absent
    as active."""
    found: dict[tuple[str, str], Stamped[bool]] = {}
    for account_id, agent_id in sorted(keys):
        row = _lock_or_create(
            connection, agents, {"account_id": account_id, "agent_id": agent_id}, {"active": True}
        )
        found[(account_id, agent_id)] = Stamped(bool(row["active"]), _stamp(row))
    return found


def save_account_rows(connection: Connection, rows: Mapping[str, Stamped[AccountSettings]]) -> None:
    """Write settings rows (locked before), each with the stamp of the update that set it."""
    for account_id, row in sorted(rows.items()):
        connection.execute(
            update(accounts)
            .where(accounts.c.account_id == account_id)
            .values(
                inactivity_close_after=row.value.inactivity_close_after,
                reassignment_window=row.value.reassignment_window,
                bot_enabled=row.value.bot_enabled,
                updated_at=row.stamp.occurred_at,
                updated_event_id=row.stamp.event_id,
            )
        )


def save_line_rows(
    connection: Connection, rows: Mapping[tuple[str, str], Stamped[LineOwner]]
) -> None:
    """Write line owners (rows locked before), each with its stamp."""
    for (account_id, line_id), row in sorted(rows.items()):
        connection.execute(
            update(lines)
            .where(lines.c.account_id == account_id, lines.c.line_id == line_id)
            .values(
                owner_agent_id=row.value.agent_id,
                owner_group_id=row.value.group_id,
                updated_at=row.stamp.occurred_at,
                updated_event_id=row.stamp.event_id,
            )
        )


def save_agent_rows(connection: Connection, rows: Mapping[tuple[str, str], Stamped[bool]]) -> None:
    """Write whether agents are active (rows locked before), each with its stamp."""
    for (account_id, agent_id), row in sorted(rows.items()):
        connection.execute(
            update(agents)
            .where(agents.c.account_id == account_id, agents.c.agent_id == agent_id)
            .values(
                active=row.value,
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
    """Set a line's owner unless a newer update is already applied; True if applied."""
    key = (event.account_id, event.line_id)
    row = lock_line_rows(connection, [key])[key]
    if not newest_wins(event, row.stamp):
        return False
    owner = LineOwner(agent_id=event.agent_id, group_id=event.group_id)
    save_line_rows(connection, {key: Stamped(owner, stamp_of(event))})
    return True


def apply_agent(connection: Connection, event: AgentUpdated) -> bool:
    """Set whether an agent is active unless a newer update is already applied."""
    key = (event.account_id, event.agent_id)
    row = lock_agent_rows(connection, [key])[key]
    if not newest_wins(event, row.stamp):
        return False
    save_agent_rows(connection, {key: Stamped(event.active, stamp_of(event))})
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
        text(
            "SELECT CASE WHEN a.exclusive "
            "THEN pg_advisory_xact_lock(:class, hashtext(a.account_id)) "
            "ELSE pg_advisory_xact_lock_shared(:class, hashtext(a.account_id)) END "
            "FROM json_to_recordset(CAST(:accounts AS json)) "
            "AS a(account_id text, exclusive boolean)"
        ),
        {
            "class": _ACCOUNT_LOCK_CLASS,
            "accounts": json.dumps(
                [{"account_id": a, "exclusive": a in exclusive} for a in accounts]
            ),
        },
    )
