"""`/v1/webhooks`: subscribe a URL to decisions, list and remove subscriptions, read deliveries.

The same operations as `convlife webhooks add|list|remove|deliveries` (webhooks/manage.py), so a
platform that only speaks HTTP can register where its signed decisions go. Every route is
signed like any other; a subscription's secret is accepted here and never shown again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from gateway.auth import SignedBody
from gateway.context import Gateway, gateway_of
from webhooks import manage

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_UNAUTHORIZED: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing, wrong or stale signature (a GET or DELETE signs the empty body)"}
}


class SubscriptionIn(BaseModel):
    """Where to POST decisions, signed with `secret`; `account_id` null: every account's;
    `types` null: every decision type."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http(s) URL the decisions are POSTed to")
    secret: str = Field(description="HMAC secret the deliveries are signed with; never shown")
    account_id: str | None = None
    types: list[str] | None = Field(
        default=None,
        description=(
            'e.g. ["conversation.auto_closed", "conversation.close_warning", "contact.routed"]'
        ),
    )


@router.post(
    "",
    status_code=201,
    summary="Subscribe a URL to decisions",
    responses={**_UNAUTHORIZED, 422: {"description": "not a subscription (the reason says why)"}},
)
async def add_subscription(
    body: SignedBody, gateway: Annotated[Gateway, Depends(gateway_of)]
) -> dict[str, Any]:
    try:
        wanted = SubscriptionIn.model_validate_json(body)
    except ValidationError as error:
        raise HTTPException(422, error.errors(include_url=False, include_input=False)) from None
    try:
        return await run_in_threadpool(
            manage.add,
            gateway.engine,
            url=wanted.url,
            secret=wanted.secret,
            now=datetime.now(UTC),
            account_id=wanted.account_id,
            types=wanted.types,
        )
    except manage.InvalidSubscription as error:
        raise HTTPException(422, str(error)) from None


@router.get("", summary="Every subscription (without its secret)", responses=_UNAUTHORIZED)
def list_subscriptions(
    _body: SignedBody, gateway: Annotated[Gateway, Depends(gateway_of)]
) -> list[dict[str, Any]]:
    return manage.list_all(gateway.engine)


@router.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Remove a subscription, its deliveries and their attempts",
    responses={**_UNAUTHORIZED, 404: {"description": "no such subscription"}},
)
def remove_subscription(
    subscription_id: int, _body: SignedBody, gateway: Annotated[Gateway, Depends(gateway_of)]
) -> None:
    try:
        manage.remove(gateway.engine, subscription_id)
    except LookupError as error:
        raise HTTPException(404, str(error)) from None


@router.get(
    "/deliveries",
    summary="Deliveries, newest first: attempts, next attempt, last status and error",
    responses={**_UNAUTHORIZED, 422: {"description": "unknown status"}},
)
def list_deliveries(
    _body: SignedBody,
    gateway: Annotated[Gateway, Depends(gateway_of)],
    subscription_id: Annotated[int | None, Query()] = None,
    status: Annotated[str | None, Query(description="pending, failed, delivered, given_up")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict[str, Any]]:
    try:
        return manage.deliveries(
            gateway.engine, subscription_id=subscription_id, status=status, limit=limit
        )
    except manage.InvalidSubscription as error:
        raise HTTPException(422, str(error)) from None
