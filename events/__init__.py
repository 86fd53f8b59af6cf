"""What comes in (events) and what goes out (decisions): frozen models, parsing, the publisher.

Imports only the standard library and pydantic (kombu in the publisher), so upstream code can
publish events without importing the worker.
"""

from events.decisions import (
    AutoClosed,
    CloseWarning,
    ContactRouted,
    Decision,
    Route,
    parse_decision,
)
from events.models import (
    AccountSettingsUpdated,
    AgentUpdated,
    ContactInbound,
    ConversationClosed,
    ConversationEvent,
    ConversationMessage,
    ConversationNote,
    ConversationOpened,
    ConversationTransferred,
    Event,
    LineUpdated,
)
from events.parsing import InvalidEvent, parse_event
from events.publish import Publisher, PublisherFull, PublishError, publish

__all__ = [
    "AccountSettingsUpdated",
    "AgentUpdated",
    "AutoClosed",
    "CloseWarning",
    "ContactInbound",
    "ContactRouted",
    "ConversationClosed",
    "ConversationEvent",
    "ConversationMessage",
    "ConversationNote",
    "ConversationOpened",
    "ConversationTransferred",
    "Decision",
    "Event",
    "InvalidEvent",
    "LineUpdated",
    "PublishError",
    "Publisher",
    "PublisherFull",
    "Route",
    "parse_decision",
    "parse_event",
    "publish",
]
