"""The events upstream publishes, as frozen pydantic models (a discriminated union on `type`).

Unknown extra fields are ignored so upstream can add fields without breaking convlife; a missing
or mistyped field is an error that sends the event to the dead letters.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, Self, get_args

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from events.business_hours import BusinessHours
from events.durations import MAX_DURATION, parse_duration

MAX_SECONDS = MAX_DURATION.total_seconds()


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: refusing it here dead-letters one event instead of
    # failing the whole batch's transaction.
    if "\x00" in value:
        raise ValueError("contains a NUL character (U+0000), which cannot be stored")
    return value


Id = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, strip_whitespace=True),
    AfterValidator(_storable),
]
"""Every identifier: a non-empty string of at most 200 characters, without NUL."""

Text = Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable)]
"""Free text a person wrote (a close reason): at most 500 characters, without NUL."""

Flag = StrictBool
"""A boolean: JSON `true` or `false` only. `"yes"`, `"true"`, `1` are refused, not guessed at."""


def _duration_or_never(value: object) -> timedelta | None:
    return parse_duration(value, allow_never=True)


DurationOrNever = Annotated[
    timedelta | None,
    BeforeValidator(_duration_or_never),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "duration"},
                {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_SECONDS},
                {"type": "null"},
            ],
            "description": "ISO 8601 (P7D, PT24H) or a number of seconds, more than zero and "
            "at most 100 years (P36500D); null for Never",
        }
    ),
]
"""A duration of the one language (events/durations.py), or None for Never."""


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""The oldest instant an event may carry: nothing convlife decides predates it."""

LATEST = datetime(9000, 1, 1, tzinfo=UTC)
"""The first instant refused as too late. Far below year 9999, so that adding the longest
setting (MAX_DURATION, 100 years) to any accepted time still fits in every store and in Python."""

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def _rfc3339_text(value: object) -> object:
    # pydantic alone would take unix seconds (an integer, a float or a numeric string) and
    # shortened forms; the contract is one unambiguous text form with its offset.
    if isinstance(value, datetime):
        return value  # from Python code, already a datetime; it must still be aware
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "a time is RFC 3339 text with an offset, such as 2026-03-01T10:00:00Z or "
            "2026-03-01T11:00:00+01:00 (no unix seconds, no naive times)"
        )
    return value


def _utc_within_bounds(value: datetime) -> datetime:
    # Normalised to UTC here, once, so every layer below sees one time domain; an odd offset
    # on year 1 (0001-01-01T00:00:00+00:01 is year 0 in UTC) cannot even be converted.
    try:
        value = value.astimezone(UTC)
    except (OverflowError, ValueError):
        value = EARLIEST - timedelta(days=1)
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            f"a time must be from {EARLIEST:%Y-%m-%dT%H:%M:%SZ} up to (not including) "
            f"{LATEST:%Y-%m-%dT%H:%M:%SZ}"
        )
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_utc_within_bounds),
]
"""Every time an event carries: RFC 3339 text with an offset (`Z` or `±HH:MM`), seconds
required, at most 9 fraction digits (kept to the microsecond); normalised to UTC; from
EARLIEST up to LATEST. Integers, floats and numeric strings (unix seconds) and naive times are
refused."""


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: Id = Field(description="Idempotency key, unique within the account.")
    account_id: Id
    occurred_at: Timestamp = Field(
        description="RFC 3339 with an offset, from 2000-01-01 up to 9000-01-01 (UTC)."
    )


class _ConversationEvent(_Event):
    conversation_id: Id
    contact_id: Id
    line_id: Id


class ConversationOpened(_ConversationEvent):
    """A conversation opens (or reopens after a close), assigned to an agent, a group, the bot,
    or nobody: at most one of them (the rule `line.updated` follows for a line's owner)."""

    type: Literal["conversation.opened"]
    agent_id: Id | None = None
    group_id: Id | None = None
    bot: Flag = False

    @model_validator(mode="after")
    def _at_most_one_assignee(self) -> Self:
        if sum((self.agent_id is not None, self.group_id is not None, self.bot)) > 1:
            raise ValueError("a conversation is assigned to one of agent_id, group_id or bot")
        return self


class ConversationMessage(_ConversationEvent):
    """A message in the conversation. `system` is an automated notice the platform sent (a
    close warning's text, say): it is not activity and does not restart the close timer, so
    such notices cannot keep a conversation alive forever."""

    type: Literal["conversation.message"]
    sender: Literal["contact", "agent", "bot", "system"]
    agent_id: Id | None = None

    @model_validator(mode="after")
    def _agent_sender_names_the_agent(self) -> Self:
        if self.sender == "agent" and self.agent_id is None:
            raise ValueError("a message with sender 'agent' needs agent_id")
        return self


class ConversationNote(_ConversationEvent):
    type: Literal["conversation.note"]
    agent_id: Id | None = None


class ConversationTransferred(_ConversationEvent):
    type: Literal["conversation.transferred"]
    agent_id: Id | None = None
    group_id: Id | None = None

    @model_validator(mode="after")
    def _names_exactly_one_target(self) -> Self:
        if (self.agent_id is None) == (self.group_id is None):
            raise ValueError("a transfer names exactly one of agent_id or group_id")
        return self


class ConversationClosed(_ConversationEvent):
    type: Literal["conversation.closed"]
    closed_by: Literal["agent", "system"]
    agent_id: Id | None = None
    close_reason: Text | None = None

    @model_validator(mode="after")
    def _agent_close_names_the_agent(self) -> Self:
        if self.closed_by == "agent" and self.agent_id is None:
            raise ValueError("a close with closed_by 'agent' needs agent_id")
        return self


class ContactInbound(_Event):
    """A contact writes on a line: the trigger of the routing decision."""

    type: Literal["contact.inbound"]
    contact_id: Id
    line_id: Id
    conversation_id: Id | None = Field(
        default=None,
        description="The conversation the platform put this message in, when the message "
        "itself opened or reopened it (a platform that opens a conversation per inbound contact "
        "sends it): routing counts that conversation as it was before that open, whatever the "
        "timestamps. Left out: the message opened nothing, or the platform cannot tell.",
    )


class AccountSettingsUpdated(_Event):
    """New account settings. A field left out keeps its current value; `null` means Never (or,
    for `business_hours`, every hour counts)."""

    type: Literal["account.settings_updated"]
    inactivity_close_after: DurationOrNever = None
    reassignment_window: DurationOrNever = None
    bot_enabled: Flag | None = None
    close_warning_before: DurationOrNever = Field(
        default=None,
        description="Warn this long before an auto-close (conversation.close_warning); "
        "null: no warning.",
    )
    business_hours: BusinessHours | None = Field(
        default=None,
        description="Count inactivity only inside these hours; null: every hour counts.",
    )
    route_to_away_agents: Flag | None = Field(
        default=None, description="Whether an agent whose status is away gets contacts back."
    )
    window_counts_business_hours: Flag | None = Field(
        default=None,
        description="Whether the reassignment window counts business hours only.",
    )


LINE_SETTINGS = (
    "inactivity_close_after",
    "reassignment_window",
    "bot_enabled",
    "close_warning_before",
    "business_hours",
)
"""The settings a line may override (`line.updated`)."""


class LineUpdated(_Event):
    """A line: its owner (an agent, a group, or nobody: both null) and the settings it
    overrides. Each update is the whole line: a setting left out inherits the account's value,
    `null` means Never / disabled for this line, a value overrides."""

    type: Literal["line.updated"]
    line_id: Id
    agent_id: Id | None = None
    group_id: Id | None = None
    inactivity_close_after: DurationOrNever = None
    reassignment_window: DurationOrNever = None
    bot_enabled: Flag | None = None
    close_warning_before: DurationOrNever = None
    business_hours: BusinessHours | None = None

    @property
    def overridden(self) -> frozenset[str]:
        """The settings this update sets for the line (the others inherit)."""
        return frozenset(LINE_SETTINGS) & self.model_fields_set

    @model_validator(mode="after")
    def _at_most_one_owner(self) -> Self:
        if self.agent_id is not None and self.group_id is not None:
            raise ValueError("a line is owned by an agent or a group, not both")
        return self


Presence = Literal["online", "away", "offline"]


class AgentUpdated(_Event):
    """An agent: whether active, their presence, and how many open conversations they take.
    A field left out keeps its current value (an agent never configured: active, online, no
    limit)."""

    type: Literal["agent.updated"]
    agent_id: Id
    active: Flag | None = None
    status: Presence | None = Field(
        default=None, description="online, away or offline (left out: unchanged)."
    )
    capacity: Annotated[int, Field(ge=0, le=100_000)] | None = Field(
        default=None,
        description="The most open conversations the agent takes; null: no limit.",
    )


ConversationEvent = (
    ConversationOpened
    | ConversationMessage
    | ConversationNote
    | ConversationTransferred
    | ConversationClosed
)
"""Events that belong to one conversation; each is activity that restarts the close timer."""

ConfigEvent = AccountSettingsUpdated | LineUpdated | AgentUpdated
"""Events that change configuration rather than a conversation."""

Event = Annotated[
    ConversationOpened
    | ConversationMessage
    | ConversationNote
    | ConversationTransferred
    | ConversationClosed
    | ContactInbound
    | AccountSettingsUpdated
    | LineUpdated
    | AgentUpdated,
    Field(discriminator="type"),
]
"""Any event convlife accepts."""


def _type_names(union: object) -> tuple[str, ...]:
    """The `type` of each model of an Annotated union of events, in the union's order."""
    members, *_ = get_args(union)
    return tuple(
        name
        for model in get_args(members)
        for name in get_args(model.model_fields["type"].annotation)
    )


EVENT_TYPES: tuple[str, ...] = _type_names(Event)
"""Every event type, from the Event union: a new model there is a new type here."""
