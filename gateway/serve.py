"""`convlife gateway`: serve the app with uvicorn (one process; scale with more instances)."""

from __future__ import annotations

import logging

import uvicorn

from gateway.app import create_app
from service.settings import Settings

log = logging.getLogger("convlife.gateway")


def serve(settings: Settings, host: str, port: int, *, insecure_no_auth: bool = False) -> int:
    """Run until stopped; 2 (with one line logged) when no secret is configured."""
    if not settings.gateway_secret_list and not insecure_no_auth:
        log.critical(
            "refusing to start: no CONVLIFE_GATEWAY_SECRETS (comma-separated HMAC secrets); "
            "--insecure-no-auth runs without authentication, for local use only"
        )
        return 2
    if insecure_no_auth:
        log.warning(
            "!!! INSECURE: --insecure-no-auth: /v1 requests are NOT authenticated; anyone who "
            "reaches %s:%s can send events. For local use only. !!!",
            host,
            port,
        )
    app = create_app(settings, insecure_no_auth=insecure_no_auth)
    log.info("gateway listening on http://%s:%s (docs at /docs)", host, port)
    # log_config=None: uvicorn logs through convlife's logging (text or JSON, one format).
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    return 0
