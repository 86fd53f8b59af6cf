"""Chatwoot webhooks -> convlife events (docs/events.md), or a stated reason to ignore one.

Pure: the payload, the delivery headers' values and the record of our own recent calls come in as
arguments; nothing is read from a clock, a database or the network. The mapping, rule by rule, is
the table in docs/integrations/chatwoot.md.

Ids: convlife's `conversation_id` is Chatwoot's `display_id` (the `id` that
`Conversations::EventDataPresenter#push_data` writes, and the id Chatwoot's REST API paths take:
`conversations.find_by!(display_id: params[:conversation_id])`), so a decision can be sent back
as is. Account = Chatwoot account id, line = inbox id, group = team id, contact = contact id,
agent = user id; all as decimal strings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.chatwoot.echo import OutboundCall, find_echo
from connectors.chatwoot.payload import (
    Payload,
    PayloadError,
    changed_attributes,
    chatwoot_id,
    event_id,
    iso_time,
    mapping,
    optional_id,
    optional_mapping,
    rfc3339,
    time_key,
    unix_time,
)
from connectors.chatwoot.rules import DEFAULT_RULES, TranslationRules

Event = dict[str, Any]

INCOMING, OUTGOING, ACTIVITY, TEMPLATE = 0, 1, 2, 3
"""`Message.message_type` as push data writes it (`message_type_before_type_cast`)."""

_MESSAGE_TYPES = {"incoming": INCOMING, "outgoing": OUTGOING, "activity": ACTIVITY}
_MESSAGE_TYPES["template"] = TEMPLATE


@dataclass(frozen=True)
class Translated:
    """The events to publish, in this order and as one batch (convlife then applies a batch in
    `occurred_at` order, so a `contact.inbound` is routed before the reopen beside it)."""

    events: tuple[Event, ...]
    delivery_id: str | None = None


@dataclass(frozen=True)
class Ignored:
    """Nothing for convlife in this webhook, and why (for the gateway's log line)."""

    reason: str
    delivery_id: str | None = None


def translate_webhook(
    payload: Payload,
    *,
    delivery_id: str | None = None,
    account_id: str | None = None,
    rules: TranslationRules = DEFAULT_RULES,
    recent_calls: Iterable[OutboundCall] = (),
) -> Translated | Ignored:
    """Translate one Chatwoot webhook body (parsed JSON) into convlife events.

    `delivery_id`: the `X-Chatwoot-Delivery` header, if any; returned for the gateway's records.
    Event ids do not use it: Chatwoot sends the same change to every webhook (an account webhook
    and an API inbox's webhook each get their own delivery), so ids come from the change itself.
    `account_id`: the Chatwoot account, when the caller knows it (e.g. from the webhook URL); it
    must agree with the payload's own, when the payload names one. `recent_calls`: convlife's
    calls to this Chatwoot, to drop their echoes (see connectors.chatwoot.echo).

    Raises PayloadError when the payload lacks a field Chatwoot always sends.
    """
    event_name = payload.get("event")
    translate = _TRANSLATORS.get(str(event_name))
    if translate is None:
        return Ignored(f"event {event_name!r} does not concern the lifecycle", delivery_id)
    account = _account_of(payload)
    if account is not None and account_id is not None and account != account_id:
        raise PayloadError(f"the payload is of account {account}, not of account {account_id}")
    account = account or account_id
    if account is None:
        raise PayloadError("no account id in the payload and none given")
    echo = find_echo(payload, account, recent_calls)
    if echo is not None:
        return Ignored(
            f"echo of convlife's own {echo.action} call on conversation {echo.conversation_id} "
            f"at {rfc3339(echo.sent_at)}",
            delivery_id,
        )
    result = translate(payload, account, rules)
    if isinstance(result, str):
        return Ignored(result, delivery_id)
    return Translated(tuple(result), delivery_id)


def conversation_key(payload: Payload, account_id: str | None = None) -> tuple[str, str] | None:
    """(account id, conversation display_id) a webhook is about, or None when it names none:
    what the gateway needs to fetch the record of its own calls before translating.
    `account_id`: as for translate_webhook, when the payload does not name its account."""
    try:
        account = _account_of(payload) or account_id
        conversation = optional_mapping(payload.get("conversation"), "conversation") or payload
        conversation_id = optional_id(conversation.get("id"), "id")
    except PayloadError:
        return None
    if account is None or conversation_id is None:
        return None
    return account, conversation_id


def _account_of(payload: Payload) -> str | None:
    """Message webhooks carry `account`; conversation webhooks carry an `account_id` in some
    versions, and in the push data of their last message when they have one."""
    account = optional_mapping(payload.get("account"), "account")
    if account is not None and account.get("id") is not None:
        return chatwoot_id(account.get("id"), "account.id")
    if payload.get("account_id") is not None:
        return chatwoot_id(payload.get("account_id"), "account_id")
    conversation = optional_mapping(payload.get("conversation"), "conversation") or payload
    for message in conversation.get("messages") or []:
        found = optional_id(mapping(message, "messages[]").get("account_id"), "account_id")
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class _Conversation:
    """What every conversation event needs, read from `Conversation#webhook_data`."""

    raw: Payload
    account_id: str
    conversation_id: str
    contact_id: str
    line_id: str

    @classmethod
    def read(cls, raw: Payload, account_id: str) -> _Conversation:
        meta = mapping(raw.get("meta"), "meta")
        sender = mapping(meta.get("sender"), "meta.sender")
        return cls(
            raw=raw,
            account_id=account_id,
            conversation_id=chatwoot_id(raw.get("id"), "id"),
            contact_id=chatwoot_id(sender.get("id"), "meta.sender.id"),
            line_id=chatwoot_id(raw.get("inbox_id"), "inbox_id"),
        )

    def event(self, kind: str, event_id: str, at: datetime, **fields: Any) -> Event:
        return {
            "type": kind,
            "event_id": event_id,
            "account_id": self.account_id,
            "occurred_at": rfc3339(at),
            "conversation_id": self.conversation_id,
            "contact_id": self.contact_id,
            "line_id": self.line_id,
            **fields,
        }

    def inbound(self, message_id: str, at: datetime, *, opened_it: bool = False) -> Event:
        """The contact wrote: its id names the conversation and the message, so the copies made
        from `message_created` and from the reopen's `conversation_status_changed` are one event,
        and outbound.conversation_of_inbound can find the conversation again. `opened_it`: the
        message started or reopened this conversation; the inbound then names it
        (`conversation_id`), so convlife counts the conversation as it was before that open
        whatever the timestamps (conversation_created is dated in whole seconds, before the
        message)."""
        return {
            "type": "contact.inbound",
            "event_id": event_id(self.conversation_id, f"m{message_id}", "inbound"),
            "account_id": self.account_id,
            "occurred_at": rfc3339(at),
            "contact_id": self.contact_id,
            "line_id": self.line_id,
            **({"conversation_id": self.conversation_id} if opened_it else {}),
        }

    @property
    def assignee(self) -> dict[str, Any]:
        """The assignee as `conversation.opened` holds it: the agent, else the team, else the
        bot when Chatwoot has the conversation pending (its agent bot's) or assigned to a bot."""
        meta = mapping(self.raw.get("meta"), "meta")
        agent = _agent_of(optional_mapping(meta.get("assignee"), "meta.assignee"), meta)
        if agent is not None:
            return {"agent_id": agent}
        team = optional_mapping(meta.get("team"), "meta.team")
        if team is not None:
            return {"group_id": chatwoot_id(team.get("id"), "meta.team.id")}
        bot_assigned = meta.get("assignee_type") == "AgentBot"
        if self.raw.get("status") == "pending" or bot_assigned:
            return {"bot": True}
        return {}

    def last_incoming_message(self) -> tuple[str, datetime] | None:
        """The conversation's last chat message, if the contact wrote it (push data lists only
        `messages.chat.last`)."""
        messages = self.raw.get("messages") or []
        if not messages:
            return None
        last = mapping(messages[-1], "messages[-1]")
        if last.get("message_type") != INCOMING or last.get("private") is True:
            return None
        return (
            chatwoot_id(last.get("id"), "messages[-1].id"),
            unix_time(last.get("created_at"), "messages[-1].created_at"),
        )


def _agent_of(assignee: Payload | None, meta: Payload) -> str | None:
    """A person assigned (a Chatwoot user), not an agent bot."""
    if assignee is None or meta.get("assignee_type") == "AgentBot":
        return None
    if assignee.get("type") not in (None, "user"):
        return None
    return chatwoot_id(assignee.get("id"), "meta.assignee.id")


def _conversation_created(
    payload: Payload, account: str, rules: TranslationRules
) -> list[Event] | str:
    conversation = _Conversation.read(payload, account)
    if payload.get("status") == "resolved":
        return "created resolved (Chatwoot does so for a blocked contact): nothing opens"
    created = unix_time(payload.get("created_at"), "created_at")
    events = []
    started_by_contact = conversation.last_incoming_message()
    if started_by_contact is not None:
        events.append(conversation.inbound(*started_by_contact, opened_it=True))
    events.append(
        conversation.event(
            "conversation.opened",
            event_id(conversation.conversation_id, "created"),
            created,
            **conversation.assignee,
        )
    )
    return events


def _message_created(payload: Payload, account: str, rules: TranslationRules) -> list[Event] | str:
    message_id = chatwoot_id(payload.get("id"), "id")
    kind = payload.get("message_type")
    kind = _MESSAGE_TYPES.get(kind, kind) if isinstance(kind, str) else kind
    if kind in (ACTIVITY, TEMPLATE):
        return (
            f"message {message_id} is an {'activity' if kind == ACTIVITY else 'template'} message"
        )
    if kind not in (INCOMING, OUTGOING):
        return f"message {message_id} has an unknown message_type {payload.get('message_type')!r}"
    conversation = _Conversation.read(mapping(payload.get("conversation"), "conversation"), account)
    at = iso_time(payload.get("created_at"), "created_at")
    sender = optional_mapping(payload.get("sender"), "sender")
    sender_type = None if sender is None else sender.get("type")
    user = None if sender is None or sender_type != "user" else sender.get("id")
    agent = optional_id(user, "sender.id")
    own_id = event_id(conversation.conversation_id, f"m{message_id}")
    if payload.get("private") is True:
        return [
            conversation.event(
                "conversation.note", f"{own_id}:note", at, **({"agent_id": agent} if agent else {})
            )
        ]
    if kind == INCOMING:
        # Chatwoot serializes the conversation after the message has reopened it, so whether
        # this message reopened or started it cannot be told here and the inbound names no
        # conversation; convlife tells by the times (an open dated after the message does not
        # count), and the copy from conversation_created or the reopen names it.
        return [
            conversation.inbound(message_id, at),
            conversation.event("conversation.message", f"{own_id}:message", at, sender="contact"),
        ]
    if agent is not None:
        return [
            conversation.event(
                "conversation.message", f"{own_id}:message", at, sender="agent", agent_id=agent
            )
        ]
    # An agent bot, Captain, or no sender at all (automation, campaigns): not a person.
    return [conversation.event("conversation.message", f"{own_id}:message", at, sender="bot")]


def _conversation_updated(
    payload: Payload, account: str, rules: TranslationRules
) -> list[Event] | str:
    changes = changed_attributes(payload)
    if "assignee_id" not in changes and "team_id" not in changes:
        names = ", ".join(sorted(changes)) or "nothing"
        return f"no assignee or team change (changed: {names}); status changes come separately"
    conversation = _Conversation.read(payload, account)
    updated = time_key(payload.get("updated_at"), "updated_at")
    at = unix_time(payload.get("updated_at"), "updated_at")
    target = conversation.assignee
    if "agent_id" not in target and "group_id" not in target:
        return (
            f"conversation {conversation.conversation_id} was unassigned or given to a bot; "
            "a convlife transfer names an agent or a group"
        )
    if "assignee_id" not in changes and "agent_id" in target:
        return (
            f"the team of conversation {conversation.conversation_id} changed, but agent "
            f"{target['agent_id']} stays its assignee"
        )
    name, value = next(iter(target.items()))
    return [
        conversation.event(
            "conversation.transferred",
            event_id(conversation.conversation_id, "transferred", f"{name}{value}", updated),
            at,
            **target,
        )
    ]


def _conversation_status_changed(
    payload: Payload, account: str, rules: TranslationRules
) -> list[Event] | str:
    conversation = _Conversation.read(payload, account)
    status = payload.get("status")
    previous = changed_attributes(payload).get("status", (None, status))[0]
    at = unix_time(payload.get("updated_at"), "updated_at")
    own_id = event_id(
        conversation.conversation_id,
        "status",
        str(status),
        time_key(payload.get("updated_at"), "updated_at"),
    )
    if status == "resolved":
        return [_closed(conversation, own_id, at, rules)]
    if status not in ("open", "pending"):
        return f"status {status!r} leaves the conversation open in convlife's terms"
    if status == "open" and previous == "snoozed":
        return "a snooze ended: the conversation was open in convlife's terms all along"
    events = []
    if previous == "resolved":
        reopened_by_contact = conversation.last_incoming_message()
        if reopened_by_contact is not None:
            events.append(conversation.inbound(*reopened_by_contact, opened_it=True))
    events.append(conversation.event("conversation.opened", own_id, at, **conversation.assignee))
    return events


def _closed(
    conversation: _Conversation, own_id: str, at: datetime, rules: TranslationRules
) -> Event:
    """Chatwoot's webhook does not say who resolved; convlife takes the assigned agent, unless
    nobody (or a bot) is assigned or a system label is present: then the system closed it."""
    meta = mapping(conversation.raw.get("meta"), "meta")
    agent = _agent_of(optional_mapping(meta.get("assignee"), "meta.assignee"), meta)
    labels = {str(label) for label in conversation.raw.get("labels") or []}
    if agent is None or labels & rules.system_resolve_labels:
        return conversation.event(
            "conversation.closed", own_id, at, closed_by="system", close_reason=None
        )
    return conversation.event(
        "conversation.closed",
        own_id,
        at,
        closed_by="agent",
        agent_id=agent,
        close_reason=rules.close_reason.reason_for(conversation.raw),
    )


_Translator = Callable[[Payload, str, TranslationRules], list[Event] | str]

_TRANSLATORS: dict[str, _Translator] = {
    "conversation_created": _conversation_created,
    "message_created": _message_created,
    "conversation_updated": _conversation_updated,
    "conversation_status_changed": _conversation_status_changed,
}
