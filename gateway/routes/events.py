"""`POST /v1/events`: events in, over HTTP, with the same contract as `convlife.ingest`."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from gateway import batches
from gateway.auth import SignedBody
from gateway.context import Gateway, gateway_of
from gateway.enqueue import BrokerUnavailable

log = logging.getLogger("convlife.gateway")

router = APIRouter(prefix="/v1", tags=["events"])


class RejectedEvent(BaseModel):
    index: int
    event_id: str | None
    error: str


class EventsAccepted(BaseModel):
    accepted: int
    rejected: list[RejectedEvent]


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "One event (a JSON object) or a JSON array of at most 1,000 events; "
        "at most 1 MiB. The events of docs/events.md (docs/schema/event.schema.json).",
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"type": "object"},
                        {"type": "array", "items": {"type": "object"}, "maxItems": 1000},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/events",
    status_code=202,
    summary="Send events (one, or an array of up to 1,000)",
    response_model=EventsAccepted,
    openapi_extra=_BODY_DOC,
    responses={
        400: {"description": "the body is not JSON"},
        401: {"description": "missing, wrong or stale signature; nothing enqueued"},
        413: {"description": "body over 1 MiB or over 1,000 events; nothing enqueued"},
        503: {"description": "broker unreachable; nothing enqueued: retry the whole request"},
    },
)
async def post_events(body: SignedBody, gateway: Annotated[Gateway, Depends(gateway_of)]) -> Any:
    """Valid events are on the broker when this answers 202, in one ingest message; each
    refused event is listed (by its index in the array) and dead-lettered by the worker.
    Retrying a request is harmless: the worker ignores event ids it has already applied."""
    try:
        return await run_in_threadpool(_accept, body, gateway)
    except BrokerUnavailable as error:
        log.warning("broker unreachable, answered 503: %s", error)
        return JSONResponse(
            {"detail": "broker unreachable; nothing was accepted: retry the whole request"},
            status_code=503,
            headers={"Retry-After": str(gateway.settings.gateway_retry_after)},
        )


def _accept(body: bytes, gateway: Gateway) -> EventsAccepted:
    """Decode, check, enqueue: runs in a worker thread (parsing 1,000 events takes a while)."""
    try:
        items = batches.decode(body)
    except batches.NotJSON as error:
        raise HTTPException(400, str(error)) from None
    except batches.TooManyEvents as error:
        raise HTTPException(413, str(error)) from None
    settings = gateway.settings
    checked = batches.check(
        items,
        datetime.now(UTC),
        max_event_bytes=settings.max_event_bytes,
        max_clock_skew=settings.max_clock_skew,
    )
    if items:
        gateway.enqueuer.send(items)
    return EventsAccepted(
        accepted=checked.accepted,
        rejected=[
            RejectedEvent(index=r.index, event_id=r.event_id, error=r.error)
            for r in checked.rejected
        ],
    )
