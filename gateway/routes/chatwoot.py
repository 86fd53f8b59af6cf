"""`POST /v1/chatwoot/webhook`: Chatwoot's own webhooks in, as Chatwoot sends them.

Verified with Chatwoot's signature (`X-Chatwoot-Signature` over `"<X-Chatwoot-Timestamp>.<raw
body>"`, `CONVLIFE_CHATWOOT_WEBHOOK_SECRET`) on the raw bytes before anything parses them, not
with the gateway's own: Chatwoot cannot sign the way convlife's clients do. Then translated
(connectors.chatwoot), echoes of convlife's own API calls dropped, and the events enqueued
exactly as `/v1/events` does: one ingest message, or 503 when the broker refuses.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis import Redis
from redis.exceptions import RedisError
from starlette.concurrency import run_in_threadpool

from connectors.chatwoot import (
    Ignored,
    PayloadError,
    SignatureError,
    conversation_key,
    translate_webhook,
    verify_signature,
)
from connectors.chatwoot.echo import OutboundCall
from gateway import batches
from gateway.auth import read_body
from gateway.context import Gateway, gateway_of
from gateway.enqueue import BrokerUnavailable
from webhooks import chatwoot_echo

log = logging.getLogger("convlife.gateway")

router = APIRouter(prefix="/v1/chatwoot", tags=["chatwoot"])

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"


class RejectedEvent(BaseModel):
    index: int
    event_id: str | None
    error: str


class ChatwootAnswer(BaseModel):
    delivery_id: str | None
    accepted: int
    event_ids: list[str]
    """The events enqueued (ids derived from the change: a re-sent webhook gives the same)."""
    rejected: list[RejectedEvent]
    ignored: str | None
    """Why nothing was enqueued (not a lifecycle event, an echo of convlife's own call...)."""


@router.post(
    "/webhook",
    summary="Chatwoot's webhooks (Settings → Integrations → Webhooks)",
    response_model=ChatwootAnswer,
    responses={
        400: {"description": "not JSON, or not shaped as Chatwoot sends it; nothing enqueued"},
        401: {"description": "missing, wrong or stale X-Chatwoot-Signature; nothing enqueued"},
        413: {"description": "body over 1 MiB; nothing enqueued"},
        503: {"description": "broker unreachable; nothing enqueued: Chatwoot may retry"},
    },
)
async def chatwoot_webhook(
    request: Request,
    gateway: Annotated[Gateway, Depends(gateway_of)],
    account_id: Annotated[
        str | None,
        Query(
            description="The Chatwoot account the webhook belongs to: conversation webhooks of "
            "a conversation with no message yet name none (put it in the webhook URL)."
        ),
    ] = None,
) -> Any:
    """200 with what was enqueued, or why the webhook was ignored."""
    body = await read_body(request)
    settings = gateway.settings
    try:
        verify_signature(
            body,
            signature=request.headers.get(SIGNATURE_HEADER),
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            secrets=settings.chatwoot_secret_list,
            now=datetime.now(UTC),
            allow_unsigned=settings.chatwoot_allow_unsigned,
        )
    except SignatureError as error:
        client = request.client.host if request.client else "?"
        log.warning("refused a Chatwoot webhook from %s: %s", client, error)
        raise HTTPException(401, f"unauthorized: {error}") from None
    delivery_id = request.headers.get(DELIVERY_HEADER)
    try:
        return await run_in_threadpool(_accept, body, delivery_id, account_id, request, gateway)
    except BrokerUnavailable as error:
        log.warning("broker unreachable, answered 503 to Chatwoot: %s", error)
        return JSONResponse(
            {"detail": "broker unreachable; nothing was accepted: send the webhook again"},
            status_code=503,
            headers={"Retry-After": str(settings.gateway_retry_after)},
        )


def _accept(
    body: bytes,
    delivery_id: str | None,
    account_id: str | None,
    request: Request,
    gateway: Gateway,
) -> ChatwootAnswer:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise HTTPException(400, f"the body is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise HTTPException(400, "a Chatwoot webhook is a JSON object")
    try:
        result = translate_webhook(
            payload,
            delivery_id=delivery_id,
            account_id=account_id,
            recent_calls=_recent_calls(request, gateway, payload, account_id),
        )
    except PayloadError as error:
        # Kept in the log for an operator: Chatwoot does not send it again for a 4xx.
        log.warning(
            "Chatwoot webhook %s refused (%s): %s",
            delivery_id,
            error,
            body[:2000].decode("utf-8", "replace"),
        )
        raise HTTPException(400, f"not a Chatwoot webhook as Chatwoot sends it: {error}") from None
    if isinstance(result, Ignored):
        log.info("Chatwoot webhook %s ignored: %s", delivery_id, result.reason)
        return ChatwootAnswer(
            delivery_id=delivery_id, accepted=0, event_ids=[], rejected=[], ignored=result.reason
        )
    items = list(result.events)
    checked = batches.check(
        items,
        datetime.now(UTC),
        max_event_bytes=gateway.settings.max_event_bytes,
        max_clock_skew=gateway.settings.max_clock_skew,
    )
    if items:
        gateway.enqueuer.send(items)
    return ChatwootAnswer(
        delivery_id=delivery_id,
        accepted=checked.accepted,
        event_ids=[str(item["event_id"]) for item in items],
        rejected=[
            RejectedEvent(index=r.index, event_id=r.event_id, error=r.error)
            for r in checked.rejected
        ],
        ignored=None,
    )


def _recent_calls(
    request: Request, gateway: Gateway, payload: dict[str, Any], account_id: str | None
) -> list[OutboundCall]:
    """convlife's recent calls on the webhook's conversation. If their record cannot be read the
    webhook is translated as is: an echo taken for a person's change restarts a timer, which is
    better than losing a real change."""
    found = conversation_key(payload, account_id)
    if found is None:
        return []
    try:
        return chatwoot_echo.recent(_streams(request, gateway), *found)
    except RedisError as error:
        log.warning("the record of convlife's Chatwoot calls is unreadable: %s", error)
        return []


def _streams(request: Request, gateway: Gateway) -> Redis:
    """The streams Redis (where the dispatcher records its calls), opened on first use."""
    streams: Redis | None = getattr(request.app.state, "chatwoot_streams", None)
    if streams is None:
        streams = Redis.from_url(
            gateway.settings.streams_redis_url, socket_connect_timeout=2, socket_timeout=2
        )
        request.app.state.chatwoot_streams = streams
    return streams
