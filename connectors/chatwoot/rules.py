"""The choices Chatwoot leaves open: which resolve carries a close reason, which is the system's.

Chatwoot has no close reason, and its resolve webhook does not say who resolved (the dispatcher
knows `performed_by`, but `WebhookListener#conversation_status_changed` does not send it). These
rules fill both gaps; docs/integrations/chatwoot.md states the defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class CloseReasonSource(StrEnum):
    ANY_AGENT_RESOLVE = "any_agent_resolve"
    """Every resolve by an agent has the reason `resolved_reason`: the default."""
    LABEL = "label"
    """The reason is a label on the conversation (one of `labels`, or any label if empty)."""
    CUSTOM_ATTRIBUTE = "custom_attribute"
    """The reason is the conversation's custom attribute `attribute` (empty: no reason)."""


@dataclass(frozen=True)
class CloseReasonRule:
    """Where the close reason of a resolve by an agent comes from.

    Only a close by an agent *with* a reason gives the contact back to that agent within the
    reassignment window (docs/events.md); a close without one lets the contact be routed anew.
    """

    source: CloseReasonSource = CloseReasonSource.ANY_AGENT_RESOLVE
    resolved_reason: str = "resolved"
    labels: frozenset[str] = frozenset()
    attribute: str | None = None

    def __post_init__(self) -> None:
        if self.source is CloseReasonSource.CUSTOM_ATTRIBUTE and not self.attribute:
            raise ValueError("a custom_attribute close-reason rule names the attribute")

    def reason_for(self, conversation: Mapping[str, Any]) -> str | None:
        """The close reason of this conversation's resolve by an agent, or None."""
        if self.source is CloseReasonSource.ANY_AGENT_RESOLVE:
            return self.resolved_reason
        if self.source is CloseReasonSource.LABEL:
            present = [str(label) for label in conversation.get("labels") or []]
            chosen = [label for label in present if not self.labels or label in self.labels]
            return min(chosen, default=None)  # several: the first by name, whatever their order
        value = (conversation.get("custom_attributes") or {}).get(self.attribute)
        if value is None or isinstance(value, dict | list) or str(value).strip() == "":
            return None
        return str(value).strip()[:500]  # convlife holds at most 500 characters of reason


@dataclass(frozen=True)
class TranslationRules:
    """The connector's settings for one Chatwoot installation (the lead builds them from
    `CONVLIFE_CHATWOOT_*` settings)."""

    close_reason: CloseReasonRule = field(default_factory=CloseReasonRule)
    system_resolve_labels: frozenset[str] = frozenset()
    """A resolve of a conversation carrying one of these labels is the system's, not the
    assignee's: e.g. the label a Chatwoot automation rule adds before it resolves."""


DEFAULT_RULES = TranslationRules()
