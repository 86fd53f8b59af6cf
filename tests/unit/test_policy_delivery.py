"""The webhook delivery rules: backoff, give-up horizon, circuit breaker, matching."""

from __future__ import annotations

from datetime import timedelta

import pytest

from policies.delivery import (
    CircuitPolicy,
    RetryPolicy,
    backoff,
    delivered,
    free_slots,
    next_attempt_after_failure,
    paused_until_after_failure,
    wants,
)
from tests.support import utc

T0 = utc("2026-03-01T10:00:00")
RETRY = RetryPolicy(base=5, cap=3600, give_up_after=timedelta(hours=24))
CIRCUIT = CircuitPolicy(failures_to_open=5, cool_down=timedelta(seconds=60), max_in_flight=4)


@pytest.mark.parametrize(
    ("attempts", "jitter", "seconds"),
    [
        (1, 0.0, 5),  # the first retry waits exactly the base without jitter
        (2, 0.0, 10),
        (3, 0.0, 20),
        (1, 0.999999, 7.499995),  # jitter stretches by at most half
        (1, 0.5, 6.25),
        (10, 0.0, 2560),
        (11, 0.0, 3600),  # 5120 s is capped
        (11, 0.5, 4500),  # jitter applies after the cap: spread even at the cap
        (1000, 0.0, 3600),  # no overflow for absurd counts
    ],
)
def test_the_backoff_doubles_from_the_base_up_to_the_cap_and_jitter_only_lengthens_it(
    attempts: int, jitter: float, seconds: float
) -> None:
    assert backoff(attempts, RETRY, jitter) == pytest.approx(seconds)


@pytest.mark.parametrize(("attempts", "jitter"), [(0, 0.0), (-1, 0.0), (1, 1.0), (1, -0.1)])
def test_the_backoff_refuses_arguments_outside_its_domain(attempts: int, jitter: float) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        backoff(attempts, RETRY, jitter)


@pytest.mark.parametrize(
    ("attempts", "failed_after", "expected_after"),
    [
        (1, timedelta(0), timedelta(seconds=5)),
        (3, timedelta(minutes=10), timedelta(minutes=10, seconds=20)),
        # the retry that would pass the horizon is pulled in to it: the last try is at 24 h
        (20, timedelta(hours=23, minutes=59), timedelta(hours=24)),
        (1, timedelta(hours=24) - timedelta(seconds=1), timedelta(hours=24)),
        # at or past the horizon: give up
        (7, timedelta(hours=24), None),
        (7, timedelta(hours=30), None),
    ],
)
def test_a_failed_delivery_is_retried_until_the_horizon_and_then_given_up(
    attempts: int, failed_after: timedelta, expected_after: timedelta | None
) -> None:
    when = next_attempt_after_failure(attempts, T0, T0 + failed_after, RETRY, jitter=0.0)
    assert when == (None if expected_after is None else T0 + expected_after)


@pytest.mark.parametrize(
    ("failures", "paused"),
    [(0, False), (1, False), (4, False), (5, True), (6, True), (50, True)],
)
def test_an_endpoint_is_paused_for_the_cool_down_after_n_failures_in_a_row(
    failures: int, paused: bool
) -> None:
    until = paused_until_after_failure(failures, T0, CIRCUIT)
    assert until == (T0 + timedelta(seconds=60) if paused else None)


@pytest.mark.parametrize(
    ("failures", "paused_until", "in_flight", "slots"),
    [
        (0, None, 0, 4),  # healthy: up to the per-endpoint limit
        (0, None, 3, 1),
        (0, None, 4, 0),
        (0, None, 9, 0),  # never negative
        (4, None, 0, 4),  # failing but not yet open
        (5, T0 + timedelta(seconds=1), 0, 0),  # paused
        (5, T0, 0, 1),  # cool-down over at this very instant: one trial (half-open)
        (5, T0 - timedelta(seconds=1), 1, 0),  # the trial is in flight: nothing more
        (0, T0 + timedelta(seconds=30), 0, 0),  # paused wins over the count
    ],
)
def test_an_endpoint_gets_slots_by_its_circuit_state(
    failures: int, paused_until: object, in_flight: int, slots: int
) -> None:
    assert free_slots(failures, paused_until, in_flight, T0, CIRCUIT) == slots  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("account", "types", "decision", "wanted"),
    [
        (None, None, ("a", "contact.routed"), True),
        ("a", None, ("a", "contact.routed"), True),
        ("a", None, ("b", "contact.routed"), False),
        (None, ("conversation.auto_closed",), ("a", "contact.routed"), False),
        ("a", ("contact.routed", "conversation.auto_closed"), ("a", "contact.routed"), True),
    ],
)
def test_a_subscription_wants_its_account_and_types_or_all(
    account: str | None, types: tuple[str, ...] | None, decision: tuple[str, str], wanted: bool
) -> None:
    assert wants(account, types, decision) is wanted


@pytest.mark.parametrize(
    ("status", "ok"),
    [
        (200, True),
        (204, True),
        (299, True),
        (199, False),
        (300, False),
        (404, False),
        (500, False),
        (None, False),
    ],
)
def test_only_a_2xx_counts_as_delivered(status: int | None, ok: bool) -> None:
    assert delivered(status) is ok
