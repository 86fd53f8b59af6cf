"""Every `/v1` request: the body read within its limit, then its HMAC signature verified on the
raw bytes, before anything parses it (events/signing.py has the scheme)."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from starlette.requests import ClientDisconnect

from events.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify
from gateway.batches import MAX_BODY_BYTES
from gateway.context import Gateway, gateway_of

log = logging.getLogger("convlife.gateway")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `limit` bytes: from
    Content-Length before reading anything, else while it streams in (never buffered whole)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise HTTPException(413, f"body over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"body over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        # Gone before the body was complete: nothing to verify, nothing enqueued, no traceback.
        raise HTTPException(400, "the client disconnected before sending the whole body") from None
    return b"".join(chunks)


async def signed_body(request: Request, gateway: Annotated[Gateway, Depends(gateway_of)]) -> bytes:
    """The request's raw body, once its signature is verified (401 otherwise). A GET signs the
    empty body. Use as a dependency: `body: Annotated[bytes, Depends(signed_body)]`."""
    body = await read_body(request)
    if not gateway.secrets:  # --insecure-no-auth: logged loudly at start
        return body
    try:
        verify(
            gateway.secrets,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            time.time(),
        )
    except SignatureError as error:
        client = request.client.host if request.client else "?"
        log.warning("refused %s %s from %s: %s", request.method, request.url.path, client, error)
        raise HTTPException(401, f"unauthorized: {error}") from None
    return body


SignedBody = Annotated[bytes, Depends(signed_body)]
