"""Account settings, line owners and agents: read with defaults, locked, written.

Each row keeps the `occurred_at` and `event_id` of the update that set it (its `Stamp`); which
update wins, and how settings merge, is policies.configuration's.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from sqlalchemy import Table, select, text, tuple_, update
from sqlalchemy.engine import Connection

from events.models import AccountSettingsUpdated, AgentUpdated, LineUpdated
from policies.configuration import NEVER_UPDATED, Stamp, merge_settings, newest_wins
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


def apply_settings(
    connection: Connection, event: AccountSettingsUpdated, default: AccountSettings
) -> tuple[AccountSettings, AccountSettings] | None:
    """Apply a settings update unless a newer one is already applied.

    Fields the event leaves out keep their current value (the default, for an account never
    configured). Returns (before, after), or None when the update is older than the stored one.
    """
    row = _lock_or_create(
        connection,
        accounts,
        {"account_id": event.account_id},
        {
            "inactivity_close_after": default.inactivity_close_after,
            "reassignment_window": default.reassignment_window,
            "bot_enabled": default.bot_enabled,
        },
    )
    before = AccountSettings(
        inactivity_close_after=row["inactivity_close_after"],
        reassignment_window=row["reassignment_window"],
        bot_enabled=row["bot_enabled"],
    )
    after = merge_settings(before, _stamp(row), event)
    if after is None:
        return None
    connection.execute(
        update(accounts)
        .where(accounts.c.account_id == event.account_id)
        .values(
            inactivity_close_after=after.inactivity_close_after,
            reassignment_window=after.reassignment_window,
            bot_enabled=after.bot_enabled,
            updated_at=event.occurred_at,
            updated_event_id=event.event_id,
        )
    )
    return before, after


def apply_line(connection: Connection, event: LineUpdated) -> bool:
    """Set a line's owner unless a newer update is already applied; True if applied."""
    key = {"account_id": event.account_id, "line_id": event.line_id}
    row = _lock_or_create(connection, lines, key, {"owner_agent_id": None, "owner_group_id": None})
    if not newest_wins(event, _stamp(row)):
        return False
    connection.execute(
        update(lines)
        .where(lines.c.account_id == event.account_id, lines.c.line_id == event.line_id)
        .values(
            owner_agent_id=event.agent_id,
            owner_group_id=event.group_id,
            updated_at=event.occurred_at,
            updated_event_id=event.event_id,
        )
    )
    return True


def apply_agent(connection: Connection, event: AgentUpdated) -> bool:
    """Set whether an agent is active unless a newer update is already applied."""
    key = {"account_id": event.account_id, "agent_id": event.agent_id}
    row = _lock_or_create(connection, agents, key, {"active": True})
    if not newest_wins(event, _stamp(row)):
        return False
    connection.execute(
        update(agents)
        .where(agents.c.account_id == event.account_id, agents.c.agent_id == event.agent_id)
        .values(active=event.active, updated_at=event.occurred_at, updated_event_id=event.event_id)
    )
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
