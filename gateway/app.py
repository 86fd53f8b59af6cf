"""The gateway's ASGI app: HTTP in, verified events onto the broker; no business rule here.

    app = create_app(Settings())            # uvicorn serves it (gateway/serve.py)

Routes live in `gateway/routes/*.py`; every module there that defines `router` is included.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import swagger_ui_bundle
from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from gateway import routes
from gateway.context import Gateway
from gateway.routes.docs import ASSETS
from service.settings import Settings

DESCRIPTION = """Any platform, in any language, drives convlife over HTTP.

Every `/v1` request is signed: `X-Convlife-Timestamp: <unix seconds>` and
`X-Convlife-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`
(a GET signs the empty body). See docs/integrations.md."""


def discover_routers() -> list[APIRouter]:
    """The `router` of every module in gateway/routes, in module-name order."""
    found = []
    for module in sorted(pkgutil.iter_modules(routes.__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{routes.__name__}.{module.name}")
        router = getattr(loaded, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def create_app(
    settings: Settings,
    *,
    insecure_no_auth: bool = False,
    routers: Iterable[APIRouter] | None = None,
) -> FastAPI:
    """The app; connections are made when it starts serving, not here. `routers` defaults to
    every router in gateway/routes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.gateway = Gateway.build(settings, insecure_no_auth=insecure_no_auth)
        try:
            yield
        finally:
            app.state.gateway.close()

    app = FastAPI(
        title="convlife gateway",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # our own /docs, with local assets (routes/docs.py)
        redoc_url=None,
    )
    for router in discover_routers() if routers is None else routers:
        app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")
    return app
