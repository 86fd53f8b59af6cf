"""The decisions convlife makes, as frozen pydantic models (a discriminated union on `type`).

Each is appended to the Redis Stream `convlife:decisions` (field `data`, this JSON) and stored in
the database. `decision_id` is stable: a decision delivered twice carries the same id, so
consumers de-duplicate on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from events.business_hours import BusinessHours


class Route(StrEnum):
    OPEN_CONVERSATION = "open_conversation"
    PREVIOUS_AGENT = "previous_agent"
    BOT = "bot"
    LINE_OWNER = "line_owner"
    UNASSIGNED = "unassigned"


class _Decision(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    decision_id: str
    account_id: str
    decided_at: AwareDatetime
    reason: str = Field(description="Why, in words a person reads.")

    @cached_property
    def data(self) -> str:
        """This decision as the JSON its `decisions` row and its stream entry carry (the `data`
        field), serialized once: the row is written and the entry relayed from the same text."""
        return self.model_dump_json()

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; with `update`, its `data` is serialized from its own values, not copied."""
        copied = super().model_copy(update=update, deep=deep)
        copied.__dict__.pop("data", None)
        return copied


class AutoClosed(_Decision):
    """A conversation closed by convlife after `inactivity_close_after` with no action."""

    type: Literal["conversation.auto_closed"] = "conversation.auto_closed"
    conversation_id: str
    contact_id: str
    line_id: str
    last_activity_at: AwareDatetime
    closed_at: AwareDatetime
    inactivity_close_after: timedelta = Field(description="The setting that applied.")
    business_hours: BusinessHours | None = Field(
        default=None,
        description="The business hours the setting was counted in; null: every hour counted.",
    )


class CloseWarning(_Decision):
    """A warning that an idle conversation will be closed at `closes_at` (the account's or
    line's `close_warning_before` ahead of the close). At most one per idle period: any
    activity after it starts a new period (the close is off; the next period gets its own
    warning). A `conversation.message` with `sender: "system"` is not activity, so the
    platform may post the warning's text without keeping the conversation alive."""

    type: Literal["conversation.close_warning"] = "conversation.close_warning"
    conversation_id: str
    contact_id: str
    line_id: str
    last_activity_at: AwareDatetime = Field(description="The start of the idle period.")
    closes_at: AwareDatetime = Field(
        description="When convlife closes the conversation unless there is activity first."
    )


class ContactRouted(_Decision):
    """Where an inbound contact goes; exactly one per `contact.inbound` event."""

    type: Literal["contact.routed"] = "contact.routed"
    inbound_event_id: str
    contact_id: str
    line_id: str
    route: Route
    conversation_id: str | None = Field(
        default=None,
        description="The open conversation (route open_conversation); for the other routes, "
        "the conversation the inbound named (where the platform put the message), if it named "
        "one.",
    )
    agent_id: str | None = None
    group_id: str | None = None


Decision = Annotated[AutoClosed | CloseWarning | ContactRouted, Field(discriminator="type")]
"""Any decision convlife makes (the one name for the union; parsed by its `type`)."""

_decision_adapter: TypeAdapter[Decision] = TypeAdapter(Decision)


def parse_decision(data: str | bytes) -> Decision:
    """Parse one decision from its JSON (as read from the `data` field of the stream)."""
    return _decision_adapter.validate_json(data)
