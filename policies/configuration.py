"""Account settings, line owners and agents: how an update changes what is stored.

Every stored value keeps the `Stamp` of the update that set it, so updates applied in any
order (or twice) leave the same value: the newest wins, and of two at the same instant the
greater event_id (arbitrary, but the same whatever the arrival order).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Generic, NamedTuple, TypeVar

from events.models import AccountSettingsUpdated, AgentUpdated, LineUpdated
from policies.state import AccountSettings, Agent, LineOwner, LineSettings, Presence

ConfigurationUpdate = AccountSettingsUpdated | LineUpdated | AgentUpdated
T = TypeVar("T")


class Stamp(NamedTuple):
    """The update that set a stored value: its `occurred_at` (UTC) and event id."""

    occurred_at: datetime
    event_id: str


NEVER_UPDATED = Stamp(datetime(1970, 1, 1, tzinfo=UTC), "")
"""The stamp of a value no update has set yet (the first update always wins over it)."""


def stamp_of(event: ConfigurationUpdate) -> Stamp:
    return Stamp(event.occurred_at, event.event_id)


def newest_wins(event: ConfigurationUpdate, stored: Stamp) -> bool:
    """True when `event` replaces the value stamped `stored`: it is newer, or as new with the
    greater event_id."""
    return stamp_of(event) > stored


_ACCOUNT_FLAGS = ("bot_enabled", "route_to_away_agents", "window_counts_business_hours")
"""Account settings that are booleans: `null` for them keeps the current value (only the
durations have a Never, and business hours an "every hour")."""


def merge_settings(
    current: AccountSettings, stored: Stamp, event: AccountSettingsUpdated
) -> AccountSettings | None:
    """The settings after `event`, or None when a newer update is already applied.

    Fields the event leaves out keep their current value (a boolean's `null` too).
    """
    if not newest_wins(event, stored):
        return None
    changes = {
        name: getattr(event, name)
        for name in event.model_fields_set
        if name in _SETTING_NAMES and not (name in _ACCOUNT_FLAGS and getattr(event, name) is None)
    }
    return replace(current, **changes)


_SETTING_NAMES = frozenset(AccountSettings.__dataclass_fields__)


def line_of(event: LineUpdated) -> LineOwner:
    """The line an update describes: owner and overrides, the whole line (what it leaves out
    inherits the account's value; a boolean's `null` is false for the line)."""
    values = {name: getattr(event, name) for name in event.overridden}
    if "bot_enabled" in values:
        values["bot_enabled"] = bool(values["bot_enabled"])
    return LineOwner(
        agent_id=event.agent_id, group_id=event.group_id, overrides=LineSettings(values)
    )


def merge_agent(current: Agent, stored: Stamp, event: AgentUpdated) -> Agent | None:
    """The agent after `event`, or None when a newer update is already applied. Fields left
    out keep their value; `capacity: null` removes the limit."""
    if not newest_wins(event, stored):
        return None
    given = event.model_fields_set
    return Agent(
        active=current.active if event.active is None else event.active,
        presence=current.presence if event.status is None else Presence(event.status),
        capacity=event.capacity if "capacity" in given else current.capacity,
    )


def effective(account: AccountSettings, line: LineSettings) -> AccountSettings:
    """The settings that apply on a line: the account's, with the line's overrides."""
    if not line.values:
        return account
    return replace(account, **line.values)


def moves_deadlines(before: AccountSettings, after: AccountSettings) -> bool:
    """True when a settings change gives open conversations new close deadlines or warning
    times (the close, warning or business-hours setting changed)."""
    return (
        before.inactivity_close_after,
        before.close_warning_before,
        before.business_hours,
    ) != (after.inactivity_close_after, after.close_warning_before, after.business_hours)


@dataclass(frozen=True)
class Stamped(Generic[T]):
    """A stored value and the stamp of the update that set it."""

    value: T
    stamp: Stamp
