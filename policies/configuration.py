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


DEADLINE_SETTINGS = ("inactivity_close_after", "close_warning_before", "business_hours")
"""The settings an open conversation's close deadline (and warning time) depends on."""


def moves_deadlines(before: AccountSettings, after: AccountSettings) -> bool:
    """True when a settings change gives open conversations new close deadlines or warning
    times (the close, warning or business-hours setting changed)."""
    return any(getattr(before, name) != getattr(after, name) for name in DEADLINE_SETTINGS)


def overrides_deadlines(line: LineSettings) -> bool:
    """True when the line overrides a setting its conversations' deadlines depend on: an
    account's change then cannot reschedule them with the account's settings alone."""
    return any(name in line.values for name in DEADLINE_SETTINGS)


def ignores_account_deadlines(line: LineSettings) -> bool:
    """True when the line overrides every setting its deadlines depend on: no change of the
    account's settings moves them."""
    return all(name in line.values for name in DEADLINE_SETTINGS)


def set_by(name: str, line_id: str, line: LineSettings) -> str:
    """Who set the value of setting `name` that applies on a line, as a reason names it:
    "line L" when the line overrides it, else "the account"."""
    return f"line {line_id}" if name in line.values else "the account"


@dataclass(frozen=True)
class Stamped(Generic[T]):
    """A stored value and the stamp of the update that set it."""

    value: T
    stamp: Stamp
