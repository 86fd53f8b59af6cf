"""convlife decisions -> the Chatwoot REST API calls that carry them out, as plain data.

The delivery machinery sends them (base `CONVLIFE_CHATWOOT_URL`, header `api_access_token`),
retries them, and records each sent call as an OutboundCall so its echo is recognised.
Bodies follow Chatwoot's swagger (swagger/paths/application/conversation/toggle_status.yml,
assignments.yml, messages/create.yml + definitions conversation_message_create_payload).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from connectors.chatwoot.echo import Action, OutboundCall
from events.decisions import AutoClosed, CloseWarning, ContactRouted, Decision, Route

_decisions: TypeAdapter[AutoClosed | CloseWarning | ContactRouted] = TypeAdapter(Decision)


class NotAChatwootId(ValueError):
    """A decision names an id Chatwoot cannot take (Chatwoot's ids are integers): the decision
    is about a conversation, agent or team that did not come from Chatwoot."""


@dataclass(frozen=True)
class ApiCall:
    """One request to Chatwoot. `call_id` is stable (the decision id and the call's place), for
    the delivery record; `action`/`target` describe it for echo recognition."""

    call_id: str
    method: str
    path: str
    json: Mapping[str, Any]
    account_id: str
    conversation_id: str
    action: Action
    target: str | None = None

    def sent(self, at: datetime) -> OutboundCall:
        """The record to keep once the call was made at `at` (UTC)."""
        return OutboundCall(self.account_id, self.conversation_id, self.action, self.target, at)


@dataclass(frozen=True)
class NoCall:
    """Nothing to send to Chatwoot for this decision, and why."""

    reason: str


@dataclass(frozen=True)
class OutboundOptions:
    private_note_on_auto_close: bool = False
    """Before resolving, leave a private note saying why (the decision's reason)."""


def api_calls_for(
    decision: Mapping[str, Any] | AutoClosed | CloseWarning | ContactRouted,
    options: OutboundOptions = OutboundOptions(),
) -> tuple[ApiCall, ...] | NoCall:
    """The calls that carry out one decision (its JSON as read from `convlife:decisions`).

    Raises pydantic.ValidationError for something that is not a decision, NotAChatwootId for
    ids that are not Chatwoot's.
    """
    parsed = (
        decision
        if isinstance(decision, AutoClosed | CloseWarning | ContactRouted)
        else _decisions.validate_python(decision)
    )
    if isinstance(parsed, AutoClosed):
        return _auto_closed(parsed, options)
    if isinstance(parsed, CloseWarning):
        # What to tell the contact (and in which language) is the platform's choice: convlife
        # only says when; a Chatwoot automation or bot may post the notice (as a system
        # message, which does not keep the conversation alive).
        return NoCall("close_warning: Chatwoot is not told; the close follows at closes_at")
    return _routed(parsed)


def _base(account_id: str, conversation_id: str) -> str:
    return (
        f"/api/v1/accounts/{_integer(account_id, 'account_id')}"
        f"/conversations/{_integer(conversation_id, 'conversation_id')}"
    )


def _integer(value: str, name: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise NotAChatwootId(f"{name} {value!r} is not a Chatwoot id")
    return int(value)


def _auto_closed(decision: AutoClosed, options: OutboundOptions) -> tuple[ApiCall, ...]:
    base = _base(decision.account_id, decision.conversation_id)
    calls = []
    if options.private_note_on_auto_close:
        note = f"convlife: {decision.reason}"
        calls.append(
            ApiCall(
                f"{decision.decision_id}:note",
                "POST",
                f"{base}/messages",
                {"content": note, "message_type": "outgoing", "private": True},
                decision.account_id,
                decision.conversation_id,
                Action.NOTE,
                note,
            )
        )
    calls.append(
        ApiCall(
            f"{decision.decision_id}:resolve",
            "POST",
            f"{base}/toggle_status",
            {"status": "resolved"},
            decision.account_id,
            decision.conversation_id,
            Action.RESOLVE,
        )
    )
    return tuple(calls)


def conversation_of_inbound(inbound_event_id: str) -> str | None:
    """The Chatwoot conversation (display_id) of a `contact.inbound` this connector made.

    `contact.routed` names a conversation for route open_conversation, and for the others when
    the inbound named the one its message started or reopened (made from conversation_created
    or a reopen). An inbound made from message_created names none, but in Chatwoot its message
    already sits in a conversation (new or reopened), and that is the one to assign. The
    inbound's id carries it: `cw:c<display_id>:m<message id>:inbound`.
    """
    parts = inbound_event_id.split(":")
    if len(parts) != 4 or parts[0] != "cw" or parts[3] != "inbound":
        return None
    conversation, message = parts[1], parts[2]
    if not (conversation.startswith("c") and conversation[1:].isdigit()):
        return None
    if not (message.startswith("m") and message[1:].isdigit()):
        return None
    return conversation[1:]


def _routed(decision: ContactRouted) -> tuple[ApiCall, ...] | NoCall:
    if decision.route in (Route.OPEN_CONVERSATION, Route.UNASSIGNED):
        return NoCall(f"route {decision.route}: the conversation stays as Chatwoot has it")
    conversation = decision.conversation_id or conversation_of_inbound(decision.inbound_event_id)
    if conversation is None:
        return NoCall(
            f"inbound {decision.inbound_event_id!r} did not come from Chatwoot: "
            "no Chatwoot conversation to act on"
        )
    base = _base(decision.account_id, conversation)
    call_id = f"{decision.decision_id}:{decision.route}"
    if decision.route is Route.BOT:
        return (
            ApiCall(
                call_id,
                "POST",
                f"{base}/toggle_status",
                {"status": "pending"},
                decision.account_id,
                conversation,
                Action.PENDING,
            ),
        )
    if decision.agent_id is not None:
        agent = _integer(decision.agent_id, "agent_id")
        return (
            ApiCall(
                call_id,
                "POST",
                f"{base}/assignments",
                {"assignee_id": agent},
                decision.account_id,
                conversation,
                Action.ASSIGN_AGENT,
                str(agent),
            ),
        )
    if decision.group_id is not None:
        team = _integer(decision.group_id, "group_id")
        return (
            ApiCall(
                call_id,
                "POST",
                f"{base}/assignments",
                {"team_id": team},
                decision.account_id,
                conversation,
                Action.ASSIGN_TEAM,
                str(team),
            ),
        )
    return NoCall(f"route {decision.route} names no agent or group")
