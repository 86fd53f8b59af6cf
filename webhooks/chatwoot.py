"""Delivering a decision to Chatwoot: the calls connectors.chatwoot.outbound builds, each
recorded for echo recognition just before it is sent, each logged as its own attempt.

Outcomes (the delivery machinery of webhooks otherwise: backoff, horizon, circuit):
- every call answered 2xx, or the decision asks nothing of Chatwoot: delivered;
- 404 (the conversation is gone in Chatwoot), or a decision Chatwoot cannot take: dropped
  (given up at once, not retried);
- 401 (the token is refused): retried, and the subscription is paused as `unauthorized`, which
  `convlife health` reports until a call succeeds again;
- anything else: retried as a webhook is.
A decision of several calls (a note, then the resolve) is sent again whole on a retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from pydantic import ValidationError
from redis import Redis
from redis.exceptions import RedisError

from connectors.chatwoot import ApiCall, NoCall, NotAChatwootId, api_calls_for
from store import webhooks as store
from webhooks import chatwoot_echo

TOKEN_HEADER = "api_access_token"
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class CallResult:
    status_code: int | None
    error: str | None
    outcome: str | None
    """None: the status code decides; else one of store.DROPPED, store.UNAUTHORIZED."""


def outcome_of(status_code: int | None) -> str | None:
    """How a Chatwoot answer is recorded (see the module's docstring)."""
    if status_code == 404:
        return store.DROPPED
    if status_code == 401:
        return store.UNAUTHORIZED
    return None


def plan(claim: store.Claim) -> tuple[ApiCall, ...] | NoCall | CallResult:
    """The calls of a claimed decision; a CallResult (dropped) when Chatwoot cannot take it."""
    try:
        calls = api_calls_for(json.loads(claim.data))
    except (ValidationError, NotAChatwootId, ValueError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return CallResult(None, f"not a decision Chatwoot can take: {first}", store.DROPPED)
    return calls


def send_call(
    client: httpx.Client,
    echoes: Redis | None,
    claim: store.Claim,
    call: ApiCall,
    started_at: datetime,
    timeout: float,
) -> CallResult:
    """Record the call for echo recognition, then make it."""
    if echoes is None:
        return CallResult(None, "no Redis to record the call in for echo recognition", None)
    try:
        chatwoot_echo.record(echoes, call.sent(started_at))
    except RedisError as error:
        # Sent unrecorded, its echo would count as an agent's doing: wait for Redis instead.
        return CallResult(None, f"echo record unavailable: {type(error).__name__}: {error}", None)
    url = claim.url.rstrip("/") + call.path
    try:
        with client.stream(
            call.method,
            url,
            json=dict(call.json),
            headers={TOKEN_HEADER: claim.secret},
            timeout=timeout,
        ) as response:
            # Only the status counts: read a little of the answer (the conversation Chatwoot
            # returns) so the connection is reused, never an unbounded body.
            read = 0
            for chunk in response.iter_raw():
                read += len(chunk)
                if read > MAX_RESPONSE_BYTES:
                    break
            status = response.status_code
    except httpx.TimeoutException as error:
        return CallResult(None, f"timeout ({type(error).__name__}) after {timeout:g} s", None)
    except Exception as error:
        return CallResult(None, f"{type(error).__name__}: {error}", None)
    if 200 <= status < 300:
        return CallResult(status, None, None)
    what = f"HTTP {status} for {call.method} {call.path}"
    if status == 404:
        what += ": the conversation is gone in Chatwoot; dropped, not retried"
    elif status == 401:
        what += ": Chatwoot refused the API token; subscription paused"
    return CallResult(status, what, outcome_of(status))


def deliver(
    claim: store.Claim,
    *,
    client: httpx.Client,
    echoes: Redis | None,
    clock: Callable[[], datetime],
    timeout: float,
    record: Callable[[store.Claim, datetime, CallResult], str | None],
    log_success: Callable[[store.Claim, datetime, int | None], None],
) -> str | None:
    """Send a claimed decision's calls in order; `record` writes the delivery's outcome (the last
    call's, or the first failure's), `log_success` an intermediate call's attempt."""
    calls = plan(claim)
    if isinstance(calls, CallResult):
        return record(claim, clock(), calls)
    if isinstance(calls, NoCall):
        return record(claim, clock(), CallResult(None, None, store.NOTHING_TO_SEND))
    for index, call in enumerate(calls):
        started_at = clock()
        result = send_call(client, echoes, claim, call, started_at, timeout)
        last = index == len(calls) - 1
        if result.error is not None or last:
            return record(claim, started_at, result)
        log_success(claim, started_at, result.status_code)
    return None  # unreachable: a plan has at least one call
