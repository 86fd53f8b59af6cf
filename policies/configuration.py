"""Account settings, line owners and agents: how an update changes what is stored.

Every stored value keeps the `Stamp` of the update that set it, so updates applied in any
order (or twice) leave the same value: the newest wins, and of two at the same instant the
greater event_id (arbitrary, but the same whatever the arrival order).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, NamedTuple, TypeVar

from events.models import AccountSettingsUpdated, AgentUpdated, LineUpdated
from policies.state import AccountSettings

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


def merge_settings(
    current: AccountSettings, stored: Stamp, event: AccountSettingsUpdated
) -> AccountSettings | None:
    """The settings after `event`, or None when a newer update is already applied.

    Fields the event leaves out keep their current value (`bot_enabled: null` too: only the
    durations have a Never).
    """
    if not newest_wins(event, stored):
        return None
    given = event.model_fields_set
    return AccountSettings(
        inactivity_close_after=event.inactivity_close_after
        if "inactivity_close_after" in given
        else current.inactivity_close_after,
        reassignment_window=event.reassignment_window
        if "reassignment_window" in given
        else current.reassignment_window,
        bot_enabled=(
            event.bot_enabled
            if "bot_enabled" in given and event.bot_enabled is not None
            else current.bot_enabled
        ),
    )


def moves_deadlines(before: AccountSettings, after: AccountSettings) -> bool:
    """True when a settings change gives the account's open conversations new close deadlines
    (the close setting changed; the other settings leave deadlines as they are)."""
    return before.inactivity_close_after != after.inactivity_close_after


@dataclass(frozen=True)
class Stamped(Generic[T]):
    """A stored value and the stamp of the update that set it."""

    value: T
    stamp: Stamp
