"""Recognising our own calls when Chatwoot reports them back as webhooks.

When convlife resolves a conversation, assigns it or hands it to the bot, Chatwoot sends the
change back like any other (`conversation_status_changed`, `conversation_updated`,
`message_created` for a note). Taken at face value, the resolve would be a close by whoever owns
the API token (making them the contact's sticky agent) and every echo would restart the close
timer. So the gateway keeps a record of the calls convlife made (see OutboundCall) and the
translation drops a webhook that is the echo of one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from connectors.chatwoot.payload import (
    Payload,
    changed_attributes,
    chatwoot_id,
    iso_time,
    mapping,
    unix_time,
)


class Action(StrEnum):
    RESOLVE = "resolve"
    PENDING = "pending"
    ASSIGN_AGENT = "assign_agent"
    ASSIGN_TEAM = "assign_team"
    NOTE = "note"


@dataclass(frozen=True)
class OutboundCall:
    """One call convlife made to Chatwoot, as the delivery machinery records it.

    `target`: the agent (user id) or team id assigned, or the note's content; None for a status
    change. `sent_at`: when the call was made (UTC; the latest attempt's time). `ApiCall.sent`
    builds one."""

    account_id: str
    conversation_id: str
    action: Action
    target: str | None
    sent_at: datetime


ECHO_WINDOW = timedelta(minutes=2)
"""How long after a call its echo may be dated: Chatwoot applies an API call before it answers,
so the change's own timestamp is within seconds of the call; two minutes covers a slow answer."""

CLOCK_SKEW = timedelta(seconds=30)
"""The echo may be dated a little before `sent_at`: Chatwoot's clock is not ours."""


def find_echo(
    payload: Payload,
    account_id: str,
    calls: Iterable[OutboundCall],
    *,
    window: timedelta = ECHO_WINDOW,
) -> OutboundCall | None:
    """The call of ours this webhook reports back, or None if it is someone else's doing.

    A webhook is an echo when it is the very change a recorded call asked for (same account,
    conversation, action and target) and Chatwoot dated it within [sent_at - CLOCK_SKEW,
    sent_at + window]. A change by a person that differs from ours (another agent, another
    status) never matches; one identical to ours within the window does, which is harmless:
    Chatwoot sends no webhook for a change that changes nothing.
    """
    found = _what_changed(payload)
    if found is None:
        return None
    conversation_id, action, target, when = found
    for call in calls:
        if (call.account_id, call.conversation_id, call.action, call.target) != (
            account_id,
            conversation_id,
            action,
            target,
        ):
            continue
        if call.sent_at - CLOCK_SKEW <= when <= call.sent_at + window:
            return call
    return None


def _what_changed(payload: Payload) -> tuple[str, Action, str | None, datetime] | None:
    event = payload.get("event")
    if event == "conversation_status_changed":
        status = payload.get("status")
        action = {"resolved": Action.RESOLVE, "pending": Action.PENDING}.get(str(status))
        if action is None:
            return None
        when = unix_time(payload.get("updated_at"), "updated_at")
        return chatwoot_id(payload.get("id"), "id"), action, None, when
    if event == "conversation_updated":
        changes = changed_attributes(payload)
        when = unix_time(payload.get("updated_at"), "updated_at")
        conversation_id = chatwoot_id(payload.get("id"), "id")
        if "assignee_id" in changes and changes["assignee_id"][1] is not None:
            return conversation_id, Action.ASSIGN_AGENT, str(changes["assignee_id"][1]), when
        if "team_id" in changes and changes["team_id"][1] is not None:
            return conversation_id, Action.ASSIGN_TEAM, str(changes["team_id"][1]), when
        return None
    if event == "message_created" and payload.get("private") is True:
        conversation = mapping(payload.get("conversation"), "conversation")
        when = iso_time(payload.get("created_at"), "created_at")
        content = payload.get("content")
        return (
            chatwoot_id(conversation.get("id"), "conversation.id"),
            Action.NOTE,
            None if content is None else str(content),
            when,
        )
    return None
