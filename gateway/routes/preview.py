"""`POST /v1/accounts/{account}/settings/preview`: what a change of the close settings would do
now, without doing it; the same figures as `convlife settings preview --json`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from events.business_hours import BusinessHours
from events.durations import DurationError, parse_duration
from gateway.auth import SignedBody
from gateway.context import Gateway, gateway_of
from service.preview import preview

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


class PreviewRequest(BaseModel):
    """The change to preview: at least one of the two settings. A field left out keeps its
    current value; `null` means Never (close) or every hour (business hours)."""

    model_config = ConfigDict(extra="forbid")

    line_id: str | None = Field(default=None, description="preview a change of this line")
    inactivity_close_after: str | float | None = Field(
        default=None, description="ISO 8601 (P1D), seconds, or null for Never"
    )
    business_hours: BusinessHours | None = None


class PreviewOut(BaseModel):
    account_id: str
    line_id: str | None
    now: datetime
    close_at_once: int
    more_within_1h: int
    more_within_24h: int
    more_within_7d: int
    sample: list[str] = Field(description="some of those that would close at once")
    lines_on_their_own: list[str] = Field(
        description="lines counted under their own overrides of the close settings"
    )
    exact: bool


@router.post(
    "/{account_id}/settings/preview",
    summary="What a change of the close settings would close, without changing anything",
    response_model=PreviewOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": PreviewRequest.model_json_schema()}},
        }
    },
    responses={
        401: {"description": "missing, wrong or stale signature"},
        422: {"description": "not a valid change"},
    },
)
async def post_preview(
    account_id: str, body: SignedBody, gateway: Annotated[Gateway, Depends(gateway_of)]
) -> Any:
    try:
        request = PreviewRequest.model_validate_json(body or b"{}")
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise HTTPException(422, f"{where}: {first['msg']}" if where else first["msg"]) from None
    change: dict[str, Any] = {}
    if "inactivity_close_after" in request.model_fields_set:
        try:
            change["inactivity_close_after"] = parse_duration(
                request.inactivity_close_after, allow_never=True
            )
        except DurationError as error:
            raise HTTPException(422, f"inactivity_close_after: {error}") from None
    if "business_hours" in request.model_fields_set:
        change["business_hours"] = request.business_hours
    if not change:
        raise HTTPException(422, "give inactivity_close_after and/or business_hours to preview")
    result = await run_in_threadpool(
        preview,
        gateway.engine,
        account_id,
        change,
        datetime.now(UTC),
        gateway.settings.default_account_settings,
        request.line_id,
    )
    return result.as_json()
