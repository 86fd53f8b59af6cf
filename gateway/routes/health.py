"""Probes, without authentication (a load balancer or an orchestrator calls them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gateway.context import Gateway, gateway_of

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
    """200 while the process serves requests; says nothing about the broker or the database."""
    return {"status": "ok"}


@router.get("/readyz", summary="The broker and the database answer", response_model=None)
def readyz(gateway: Annotated[Gateway, Depends(gateway_of)]) -> Any:
    """200 when both answer, 503 (with what failed) when either does not: take this instance
    out of rotation until it recovers."""
    checks = {"broker": _probe(gateway.broker.ping), "database": _probe(lambda: _select_1(gateway))}
    ready = all(result == "ok" for result in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503
    )


def _select_1(gateway: Gateway) -> None:
    with gateway.engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def _probe(check: Any) -> str:
    try:
        check()
    except Exception as error:  # a probe reports what it saw, it does not crash
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return f"{type(error).__name__}: {first}"
    return "ok"
