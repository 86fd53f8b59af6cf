"""One delivered ingest message, handled: applied, retried later, split, or dead-lettered.

The Celery task only maps the outcome onto the broker (ack, retry with a countdown, publish
the parts); every decision about a failure is taken here, with no Celery in sight, so the
service tests drive it directly.

- An error of the surroundings (service/failures.py) retries the whole message with backoff,
  however many times it takes: those events are never the events' fault.
- Any other error in a batch of several events splits it into single events, so one event
  that breaks its batch cannot hold up the others.
- A single event whose own processing keeps failing (MAX_POISON_ATTEMPTS) is dead-lettered
  with the error, so it can be replayed after a fix. If even that write fails, the message is
  retried: nothing is acked away.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from events.decisions import Decision
from events.parsing import refuse
from service import counters, ingest, logs
from service.failures import (
    Fault,
    drop_pooled_connections_after,
    fault_of,
    first_line,
    retry_delay,
)
from service.runtime import Runtime
from store import outbox
from store.db import checkpoint_when_due, keeping_the_turn

log = logging.getLogger("convlife.worker")

MAX_POISON_ATTEMPTS = 3
"""How often a single event whose processing fails for its own reasons is tried."""


@dataclass(frozen=True)
class Applied:
    result: ingest.IngestResult


@dataclass(frozen=True)
class RetryLater:
    delay: float
    """Seconds; always far under the visibility timeout."""
    reason: str
    own_failures: int = 0
    """How often this single event has failed for its own reasons so far (carried with the
    retry: retries for the surroundings' sake do not count)."""


@dataclass(frozen=True)
class Split:
    parts: list[list[object]]
    """Each event alone, to be delivered as its own message."""
    reason: str


@dataclass(frozen=True)
class DeadLettered:
    reason: str


Outcome = Applied | RetryLater | Split | DeadLettered


def handle(
    payload: object,
    runtime: Runtime,
    now: datetime,
    attempt: int = 0,
    own_failures: int = 0,
    rng: random.Random | None = None,
) -> Outcome:
    """Apply one message's payload; `attempt` is how many times it was retried before (for
    the backoff), `own_failures` how many of those were for the event's own reasons."""
    with keeping_the_turn(runtime.engine):  # SQLite: the batch's turn, kept for its relay
        try:
            result = ingest.ingest(payload, runtime, now)
        except Exception as error:
            return _failed(payload, error, runtime, now, (attempt, own_failures), rng)
        _after_commit(runtime, result, now)
    _best_effort_checkpoint(runtime)
    runtime.first_statistics.after_ingest(runtime.engine)
    return Applied(result)


def _failed(
    payload: object,
    error: Exception,
    runtime: Runtime,
    now: datetime,
    tries: tuple[int, int],
    rng: random.Random | None,
) -> Outcome:
    attempt, own_failures = tries

    def later(reason: str, own: int = own_failures) -> RetryLater:
        delay = retry_delay(attempt, runtime.settings.visibility_timeout, rng)
        return RetryLater(delay, reason, own)

    reason = f"{type(error).__name__}: {first_line(error)}"
    if fault_of(error) is Fault.ENVIRONMENT:
        log.warning("ingest: %s; retrying", reason)
        drop_pooled_connections_after(error, runtime.engine)
        return later(reason)
    items = ingest.split_payload(payload)
    if len(items) > 1:
        # Find the poison: each event alone, so one bad event cannot hold up the rest.
        log.error("ingest batch failed (%s); splitting it", reason)
        return _split(items, runtime, now, reason) or later(reason)
    if own_failures + 1 < MAX_POISON_ATTEMPTS:
        log.warning("ingest of one event failed (%s); retrying", reason)
        return later(reason, own_failures + 1)
    dead = f"processing failed: {reason}"
    try:
        _dead_letter(runtime, items[0] if items else payload, dead, now)
    except Exception as second:
        log.warning("dead letter not written (%s); retrying", first_line(second))
        return later(dead)
    return DeadLettered(dead)


def _split(items: list[object], runtime: Runtime, now: datetime, reason: str) -> Split | None:
    """The message's events as single-event parts; those past the per-message cap are
    dead-lettered here (so a split never carries more events than one message may). None
    when that write fails: then the whole message is retried."""
    kept, beyond = ingest.capped(items, runtime.settings.max_events_per_message)
    if beyond:
        try:
            with runtime.engine.begin() as connection:
                for refused in beyond:
                    outbox.add_invalid(connection, refused, now)
        except Exception as error:
            log.warning("dead letters past the cap not written (%s)", first_line(error))
            return None
        _best_effort(runtime, dead_letter_reasons=[refused.code for refused in beyond])
    return Split(parts=[[item] for item in kept], reason=reason)


def _dead_letter(runtime: Runtime, item: object, reason: str, now: datetime) -> None:
    # As a refused event is kept: raw cut and storable, ids when the payload names them.
    poison = refuse(item, reason, "poison")
    with runtime.engine.begin() as connection:
        outbox.add_invalid(connection, poison, now)
    logs.dead_letter(poison.reason, poison.account_id, poison.event_id, poison.code)
    _relay(runtime, now, made=[], with_dead_letters=True)
    _best_effort(runtime, dead_letter_reasons=[poison.code])


def _after_commit(runtime: Runtime, result: ingest.IngestResult, now: datetime) -> None:
    """Relay what the batch stored and count it. The batch is committed: a failure here is only
    logged, and the periodic relay sends what this one could not."""
    if result.decisions or result.dead_lettered:
        _relay(
            runtime,
            now,
            made=result.decisions,
            with_dead_letters=result.dead_lettered > 0,
        )
    _best_effort(
        runtime,
        event_types=result.applied_types,
        dead_letter_reasons=result.dead_letter_reasons,
        made=result.decisions,
    )


def _relay(
    runtime: Runtime, now: datetime, *, made: Sequence[Decision], with_dead_letters: bool
) -> None:
    try:
        outbox.relay(
            runtime.engine, runtime.redis, now, made=made, with_dead_letters=with_dead_letters
        )
    except Exception as error:
        log.warning("relay left to the periodic relay: %s", first_line(error))


def _best_effort_checkpoint(runtime: Runtime) -> None:
    """The batch is committed: a checkpoint that fails is only logged (the next one, or
    SQLite's own at its backstop, copies the WAL)."""
    try:
        checkpoint_when_due(runtime.engine)
    except Exception as error:
        log.warning("checkpoint left for later: %s", first_line(error))


def _best_effort(
    runtime: Runtime,
    *,
    event_types: Iterable[str] = (),
    dead_letter_reasons: Iterable[str] = (),
    made: Iterable[Decision] = (),
) -> None:
    """Add to the shared metrics; a metrics failure never fails work already committed."""
    try:
        counters.record(
            runtime.redis,
            event_types=event_types,
            dead_letter_reasons=dead_letter_reasons,
            made=made,
        )
    except Exception as error:
        log.warning("metrics not recorded: %s", first_line(error))
