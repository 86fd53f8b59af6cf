"""Webhook delivery rules as pure functions: when to retry, when to give up, when an endpoint
rests. Time is an argument and randomness (the jitter) is an argument: the dispatcher reads the
clock and draws the jitter once, at the edge.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

JITTER_SPREAD = 0.5
"""A retry waits between 1x and 1.5x its backoff: never earlier than configured, and spread
so that deliveries that failed together do not all come back in the same instant."""


@dataclass(frozen=True)
class RetryPolicy:
    """The retry schedule of one delivery (seconds, except `give_up_after`)."""

    base: float = 5.0
    """Backoff before the first retry; each later retry waits twice the one before."""
    cap: float = 3600.0
    """No single wait is longer than this."""
    give_up_after: timedelta = timedelta(hours=24)
    """Measured from the delivery's creation; the last attempt is made at the horizon."""


@dataclass(frozen=True)
class CircuitPolicy:
    """When an endpoint is rested, and how many requests it may have in flight."""

    failures_to_open: int = 5
    """Consecutive failed attempts after which the endpoint is paused."""
    cool_down: timedelta = timedelta(seconds=60)
    """How long it is paused; then one trial request (half-open) decides."""
    max_in_flight: int = 4
    """Concurrent requests to one endpoint when it is healthy."""


def backoff(attempts: int, policy: RetryPolicy, jitter: float) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (attempts >= 1).

    `jitter` in [0, 1) stretches the wait by up to JITTER_SPREAD of itself.
    """
    if attempts < 1:
        raise ValueError("backoff is for a delivery that failed at least once")
    if not 0.0 <= jitter < 1.0:
        raise ValueError("jitter must be in [0, 1)")
    exponent = min(attempts - 1, 62)  # 2**62 s is past any cap; bounded so it never overflows
    plain = min(policy.base * float(2**exponent), policy.cap)
    return plain * (1.0 + JITTER_SPREAD * jitter)


def next_attempt_after_failure(
    attempts: int, created_at: datetime, now: datetime, policy: RetryPolicy, jitter: float
) -> datetime | None:
    """When to try again after the `attempts`-th failure at `now`, or None: give up.

    A delivery gives up once `now` reached `created_at + give_up_after`; the retry before that
    is pulled in to the horizon, so the last attempt happens at the horizon, not before it.
    """
    horizon = created_at + policy.give_up_after
    if now >= horizon:
        return None
    return min(now + timedelta(seconds=backoff(attempts, policy, jitter)), horizon)


def paused_until_after_failure(
    consecutive_failures: int, now: datetime, policy: CircuitPolicy
) -> datetime | None:
    """The endpoint's pause after its `consecutive_failures`-th failure in a row (None: not
    paused). A failed trial after a pause pauses it again for the whole cool-down."""
    if consecutive_failures >= policy.failures_to_open:
        return now + policy.cool_down
    return None


def free_slots(
    consecutive_failures: int,
    paused_until: datetime | None,
    in_flight: int,
    now: datetime,
    policy: CircuitPolicy,
) -> int:
    """How many more requests the endpoint may be sent now.

    Paused: none. Just after a pause (half-open: still as many failures as open it): one trial
    at a time. Healthy: up to max_in_flight.
    """
    if paused_until is not None and now < paused_until:
        return 0
    limit = 1 if consecutive_failures >= policy.failures_to_open else policy.max_in_flight
    return max(0, limit - in_flight)


def wants(account_id: str | None, types: Collection[str] | None, decision: tuple[str, str]) -> bool:
    """Whether a subscription (None = every account / every type) wants a decision
    given as (account_id, type)."""
    decision_account, decision_type = decision
    if account_id is not None and account_id != decision_account:
        return False
    return types is None or decision_type in types


def delivered(status_code: int | None) -> bool:
    """A 2xx answer means delivered; anything else (or no answer) is retried."""
    return status_code is not None and 200 <= status_code < 300


@dataclass(frozen=True)
class DeliveryConfig:
    """Everything a webhook dispatcher needs to know (seconds)."""

    timeout: float = 10.0
    """Per request: connecting, sending, and waiting for the answer."""
    retry: RetryPolicy = RetryPolicy()
    circuit: CircuitPolicy = CircuitPolicy()
    max_in_flight: int = 32
    """Requests one dispatcher process has in flight at once, all endpoints together."""
    budget: float = 10.0
    """How long one dispatch run keeps claiming new work before it returns."""
    poll: float = 0.2
    """While requests are in flight, how often the run looks for more due work."""

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery stays with its dispatcher: longer than any request can
        take (connect, write, read: each bounded by `timeout`), so a live request is never
        handed to a second dispatcher; a dead dispatcher's claim comes back after it."""
        return timedelta(seconds=4 * self.timeout + 5)
