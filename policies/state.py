"""The state the decisions read: plain frozen values, built by the store, changed only here."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from events.business_hours import BusinessHours
from events.models import LINE_SETTINGS


@dataclass(frozen=True)
class AccountSettings:
    """An account's settings (or a line's, once its overrides are applied: the settings that
    apply to a conversation). `None` durations mean Never (no auto-close, no window, no
    warning); `business_hours` None means every hour counts."""

    inactivity_close_after: timedelta | None = None
    reassignment_window: timedelta | None = None
    bot_enabled: bool = False
    close_warning_before: timedelta | None = None
    business_hours: BusinessHours | None = None
    route_to_away_agents: bool = True
    window_counts_business_hours: bool = False


@dataclass(frozen=True)
class LineSettings:
    """The settings a line overrides: each name in `values` replaces the account's value
    (None there means Never / disabled for the line); a name absent inherits it."""

    values: dict[str, Any] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.values.items())))

    def __post_init__(self) -> None:
        unknown = set(self.values) - LINE_OVERRIDABLE
        if unknown:
            raise ValueError(f"a line cannot override {sorted(unknown)}")


LINE_OVERRIDABLE = frozenset(LINE_SETTINGS)
"""The settings a line may override (the rest are the account's only)."""
assert {f.name for f in fields(AccountSettings)} >= LINE_OVERRIDABLE


@dataclass(frozen=True)
class LineOwner:
    """A line: who gets a new contact on it when the bot is off (an agent, a group, or
    nobody), and the settings it overrides."""

    agent_id: str | None = None
    group_id: str | None = None
    overrides: LineSettings = field(default_factory=LineSettings)


class Presence(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True)
class Agent:
    """What routing knows of an agent. An agent never configured is active, online, and has
    no capacity limit (None)."""

    active: bool = True
    presence: Presence = Presence.ONLINE
    capacity: int | None = None


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class ClosedBy(StrEnum):
    AGENT = "agent"
    SYSTEM = "system"


INACTIVITY = "inactivity"
"""The close reason convlife writes when it closes a conversation."""


@dataclass(frozen=True)
class Conversation:
    """One conversation of an account, as convlife knows it. All datetimes are aware UTC.

    `status_changed_at` is the `occurred_at` of the open or close that set `status`; None when
    the conversation is open only because activity was seen before any `opened` event. It is
    what makes the result independent of the order events arrive in.

    `auto_closed` is True while the status is an automatic close by the sweep. Such a close
    keeps `status_changed_at` at the open that started the idle period it ended (None: the
    period began without an `opened` event), so that an open or close dated within that period
    but delivered after the sweep still takes its place (see policies.conversation).

    The `previous_*` fields say what the current open replaced, so that a contact is routed as
    its conversations stood when it wrote even if an open dated after that arrived first (see
    policies.routing). `previous_closed_*` and `previous_close_reason` are the newest close
    dated before the current open; `previous_opened_at` is the newest open dated after that
    close and before the current open (None if none: the conversation was closed until the
    current open). Both are None while the status is a close other than the sweep's.
    """

    account_id: str
    conversation_id: str
    contact_id: str
    line_id: str
    status: Status
    last_activity_at: datetime
    status_changed_at: datetime | None = None
    assignee_agent_id: str | None = None
    assignee_group_id: str | None = None
    assignee_bot: bool = False
    assigned_at: datetime | None = None
    closed_at: datetime | None = None
    closed_by: ClosedBy | None = None
    closing_agent_id: str | None = None
    close_reason: str | None = None
    auto_closed: bool = False
    close_warned_at: datetime | None = None
    """When convlife warned that this idle period will end in a close (None: not warned).
    Activity that moves `last_activity_at` starts a new period and clears it."""
    previous_closed_at: datetime | None = None
    previous_closed_by: ClosedBy | None = None
    previous_closing_agent_id: str | None = None
    previous_close_reason: str | None = None
    previous_opened_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status is Status.OPEN


CONVERSATION_FIELDS = tuple(f.name for f in fields(Conversation))
_CONVERSATION_FIELD_SET = frozenset(CONVERSATION_FIELDS)


def conversation_of(*values: Any) -> Conversation:
    """A Conversation from every one of its fields, in the order they are declared.

    The same value as `Conversation(*values)`, built without the frozen dataclass's `__init__`,
    which sets each of the 22 fields through `object.__setattr__` (6.9 µs a conversation, against
    3 here): the store builds one for every conversation a batch reads, a SQLite batch twice
    (its guess, then its check)."""
    if len(values) != len(CONVERSATION_FIELDS):
        raise TypeError(f"a Conversation has {len(CONVERSATION_FIELDS)} fields, not {len(values)}")
    conversation = object.__new__(Conversation)
    # Lengths checked above: strict=True would check them again, per call.
    conversation.__dict__.update(zip(CONVERSATION_FIELDS, values, strict=False))
    return conversation


def changed(conversation: Conversation, **changes: Any) -> Conversation:
    """`dataclasses.replace(conversation, **changes)` in a fifth of its time (15 µs: it lists
    the fields and goes through `__init__`); every event that touches a conversation makes one.
    An unknown field is refused, as `replace` refuses it."""
    if unknown := changes.keys() - _CONVERSATION_FIELD_SET:
        raise TypeError(f"a Conversation has no field {', '.join(sorted(unknown))}")
    copy = object.__new__(Conversation)
    fields_of_copy = copy.__dict__
    fields_of_copy.update(conversation.__dict__)
    fields_of_copy.update(changes)
    return copy
