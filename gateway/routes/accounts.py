"""`/v1/accounts/{account}/…`: read a conversation, read and change an account's settings.

Reads are what `convlife conversation show` and `convlife settings show` print, from the same
store queries (store/views.py, store/configuration.py). A settings change goes through ingest,
like `convlife settings set`: it is an `account.settings_updated` event, so ordering and
idempotency rules apply to it as to any other.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from events.parsing import InvalidEvent, parse_event
from gateway.auth import SignedBody
from gateway.context import Gateway, gateway_of
from gateway.enqueue import BrokerUnavailable
from policies.state import AccountSettings
from service.ops import overrides_shown, parse_duration
from store import configuration
from store.views import ConversationView, conversation_view

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, wrong or stale signature (a GET signs the empty body)"}
}


class Assignee(BaseModel):
    agent_id: str | None
    group_id: str | None
    bot: bool


class Closed(BaseModel):
    at: datetime
    by: str
    agent_id: str | None
    reason: str | None


class SettingsOut(BaseModel):
    account_id: str
    inactivity_close_after_seconds: float | None = Field(description="null: Never")
    reassignment_window_seconds: float | None = Field(description="null: no window")
    bot_enabled: bool
    close_warning_before_seconds: float | None = Field(
        default=None, description="null: no close warning"
    )
    business_hours: dict[str, Any] | None = Field(
        default=None, description="null: every hour counts (docs/events.md, business hours)"
    )
    route_to_away_agents: bool = True
    window_counts_business_hours: bool = False


class AccountSettingsOut(SettingsOut):
    lines: dict[str, dict[str, Any]] = Field(
        description="each line that overrides settings, by line id: the settings it overrides, "
        "as line.updated carries them (null: Never / off for the line); every other setting "
        "of the line is the account's"
    )


class ConversationOut(BaseModel):
    account_id: str
    conversation_id: str
    contact_id: str
    line_id: str
    status: str
    last_activity_at: datetime
    assignee: Assignee | None
    closed: Closed | None
    close_due_at: datetime | None = Field(description="when it closes (UTC); null: it will not")
    close_warning_due_at: datetime | None = Field(
        default=None,
        description="when convlife warns of the close (conversation.close_warning; UTC); "
        "null: no warning pending",
    )
    close_warned_at: datetime | None = Field(
        default=None, description="when this idle period's close warning went out (UTC)"
    )
    account_settings: SettingsOut
    line_overrides: dict[str, Any] = Field(
        description="the settings the conversation's line overrides, as line.updated carries "
        "them (null: Never / off); the other settings that apply are account_settings"
    )
    decisions: list[dict[str, Any]] = Field(
        description="every decision about it, oldest first, as published (with its reason)"
    )


@router.get(
    "/{account_id}/conversations/{conversation_id}",
    summary="A conversation: state, deadline, assignee, decisions and why",
    response_model=ConversationOut,
    responses={**_UNAUTHORIZED, 404: {"description": "convlife has never seen it"}},
)
def get_conversation(
    account_id: str,
    conversation_id: str,
    _body: SignedBody,
    gateway: Annotated[Gateway, Depends(gateway_of)],
) -> ConversationOut:
    with gateway.engine.connect() as connection:
        view = conversation_view(
            connection, account_id, conversation_id, gateway.settings.default_account_settings
        )
    if view is None:
        raise HTTPException(404, f"no conversation {conversation_id} in account {account_id}")
    return _conversation_out(view)


@router.get(
    "/{account_id}/settings",
    summary="An account's settings (the defaults if never configured) and its lines' overrides",
    response_model=AccountSettingsOut,
    responses=_UNAUTHORIZED,
)
def get_settings(
    account_id: str, _body: SignedBody, gateway: Annotated[Gateway, Depends(gateway_of)]
) -> AccountSettingsOut:
    with gateway.engine.connect() as connection:
        account = configuration.account_settings(
            connection, [account_id], gateway.settings.default_account_settings
        )[account_id]
        lines = configuration.line_overrides(connection, account_id)
    return AccountSettingsOut(
        **_settings_out(account_id, account).model_dump(),
        lines={line_id: overrides_shown(lines[line_id]) for line_id in sorted(lines)},
    )


class SettingsChange(BaseModel):
    """The fields to change; a field left out keeps its value. Durations: ISO 8601 (`P7D`,
    `PT24H`), seconds, or null / "never"."""

    model_config = ConfigDict(extra="forbid")

    inactivity_close_after: str | float | None = None
    reassignment_window: str | float | None = None
    bot_enabled: bool | None = None
    close_warning_before: str | float | None = None
    business_hours: dict[str, Any] | None = Field(
        default=None, description="docs/events.md, business hours; null: every hour counts"
    )
    route_to_away_agents: bool | None = None
    window_counts_business_hours: bool | None = None
    event_id: str | None = Field(
        default=None,
        description="idempotency key of the change (default: a new one); send the same one "
        "when retrying",
    )


class SettingsPublished(BaseModel):
    event: dict[str, Any]


@router.put(
    "/{account_id}/settings",
    status_code=202,
    summary="Change an account's settings (through ingest, as an account.settings_updated)",
    response_model=SettingsPublished,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SettingsChange.model_json_schema()}},
        }
    },
    responses={
        **_UNAUTHORIZED,
        422: {"description": "not a valid change; nothing enqueued"},
        503: {"description": "broker unreachable; nothing enqueued: retry"},
    },
)
async def put_settings(
    account_id: str, body: SignedBody, gateway: Annotated[Gateway, Depends(gateway_of)]
) -> Any:
    """Enqueued when this answers 202; applied by a worker within moments, to open
    conversations too (their deadlines move)."""
    try:
        change = SettingsChange.model_validate_json(body or b"{}")
    except ValidationError as error:
        raise HTTPException(422, _first_error(error)) from None
    event = _settings_event(account_id, change)
    try:
        await run_in_threadpool(gateway.enqueuer.send, [event])
    except BrokerUnavailable:
        return JSONResponse(
            {"detail": "broker unreachable; nothing was accepted: retry"},
            status_code=503,
            headers={"Retry-After": str(gateway.settings.gateway_retry_after)},
        )
    return SettingsPublished(event=event)


def _settings_event(account_id: str, change: SettingsChange) -> dict[str, Any]:
    """The `account.settings_updated` event for `change` (422 if the worker would refuse it)."""
    given = change.model_fields_set - {"event_id"}
    if not given:
        raise HTTPException(422, "nothing to change: give at least one setting")
    event: dict[str, Any] = {
        "event_id": change.event_id or f"gateway-{uuid.uuid4()}",
        "type": "account.settings_updated",
        "account_id": account_id,
        "occurred_at": datetime.now(UTC).isoformat(),
    }
    try:
        for name in ("inactivity_close_after", "reassignment_window", "close_warning_before"):
            if name in given:
                event[name] = _seconds(getattr(change, name))
        for flag in ("bot_enabled", "route_to_away_agents", "window_counts_business_hours"):
            if flag in given:
                if getattr(change, flag) is None:
                    raise ValueError(f"{flag}: true or false")
                event[flag] = getattr(change, flag)
        if "business_hours" in given:
            event["business_hours"] = change.business_hours
        parse_event(event)  # refuse here what the worker would dead-letter
    except InvalidEvent as error:
        raise HTTPException(422, error.reason) from None
    except ValueError as error:
        raise HTTPException(422, str(error).splitlines()[0]) from None
    return event


def _seconds(value: str | float | None) -> float | None:
    if value is None:
        return None
    duration = parse_duration(str(value))
    return None if duration is None else duration.total_seconds()


def _first_error(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _seconds_of(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _settings_out(account_id: str, account: AccountSettings) -> SettingsOut:
    return SettingsOut(
        account_id=account_id,
        inactivity_close_after_seconds=_seconds_of(account.inactivity_close_after),
        reassignment_window_seconds=_seconds_of(account.reassignment_window),
        bot_enabled=account.bot_enabled,
        close_warning_before_seconds=_seconds_of(account.close_warning_before),
        business_hours=None
        if account.business_hours is None
        else account.business_hours.model_dump(mode="json"),
        route_to_away_agents=account.route_to_away_agents,
        window_counts_business_hours=account.window_counts_business_hours,
    )


def _conversation_out(view: ConversationView) -> ConversationOut:
    state = view.state
    assigned = state.assignee_agent_id or state.assignee_group_id or state.assignee_bot
    return ConversationOut(
        account_id=state.account_id,
        conversation_id=state.conversation_id,
        contact_id=state.contact_id,
        line_id=state.line_id,
        status=state.status.value,
        last_activity_at=state.last_activity_at,
        assignee=Assignee(
            agent_id=state.assignee_agent_id,
            group_id=state.assignee_group_id,
            bot=state.assignee_bot,
        )
        if assigned
        else None,
        closed=Closed(
            at=state.closed_at,
            by=state.closed_by.value if state.closed_by else "?",
            agent_id=state.closing_agent_id,
            reason=state.close_reason,
        )
        if state.closed_at is not None
        else None,
        close_due_at=view.closes_at,
        close_warning_due_at=view.close_due_at if view.warning_pending else None,
        close_warned_at=state.close_warned_at,
        account_settings=_settings_out(state.account_id, view.account),
        line_overrides=overrides_shown(view.line),
        decisions=view.decisions,
    )
