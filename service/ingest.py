"""The ingest handler: a batch of raw events in, state and decisions committed, decisions out.

parse → claim the fresh events → load (store/batch.py: one read phase) → decide
(policies/batch.py: pure) → save (one write phase) → relay, in one transaction. Per event, the
rules stay: a bad event is dead-lettered alone, a duplicate changes nothing, order does not
matter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from events.decisions import AutoClosed, ContactRouted
from events.models import Event
from events.parsing import InvalidEvent, ReasonCode, parse_event, refuse
from policies.batch import Decided, Loaded, decide
from policies.clock import from_the_future
from policies.conversation import apply_event
from service import logs
from service.deadlines import reschedule_account, reschedule_line
from service.runtime import Runtime
from store import batch, configuration, conversations, idempotency, outbox
from store.db import READ_ONLY, another_writer_holds_the_turn


@dataclass
class IngestResult:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    decisions: list[AutoClosed | ContactRouted] = field(default_factory=list)
    applied_types: list[str] = field(default_factory=list)
    dead_letter_reasons: list[ReasonCode] = field(default_factory=list)
    decided_ahead: bool = False
    """The decisions were made before the transaction (SQLite's `decide_ahead`) and held."""


def ingest(payload: object, runtime: Runtime, now: datetime) -> IngestResult:
    """Apply one task's payload in one transaction; `now` is convlife's clock (UTC).

    parse → claim the fresh events → load → decide → save → relay (the stored decisions).
    At most `max_events_per_message` events are applied; the rest are dead-lettered.
    """
    valid, invalid = parse(payload, runtime, now)
    guess = decide_ahead(valid, runtime, now)
    with runtime.engine.begin() as connection:
        fresh = claim_fresh(connection, valid, now)
        decided, guessed = apply_events(connection, fresh, runtime, now, guess)
        relayed = save_outcome(connection, invalid, decided, now)
    for error in invalid:
        logs.dead_letter(error.reason, error.account_id, error.event_id, error.code)
    logs.decisions(relayed)
    return IngestResult(
        applied=len(fresh),
        duplicates=len(valid) - len(fresh),
        dead_lettered=len(invalid),
        decisions=relayed,
        applied_types=[event.type for event in fresh],
        dead_letter_reasons=[error.code for error in invalid],
        decided_ahead=guessed,
    )


def apply_events(
    connection: Connection,
    events: list[Event],
    runtime: Runtime,
    now: datetime,
    guess: Guess | None = None,
) -> tuple[list[AutoClosed | ContactRouted], bool]:
    """Apply fresh (never applied) events: one read phase, pure decisions, one write phase.
    Returns the decisions they caused, and whether `guess` held (its decisions were used)."""
    loaded = batch.load(connection, events, runtime.settings.default_account_settings)
    if guess is not None and guess.holds(events, loaded):
        decided, held = guess.decided, True
    else:
        # apply_event is looked up here, at call time: tests/service/test_deliveries.py
        # replaces it in this module to play a bug that one event's content triggers.
        decided, held = decide(loaded, events, now, apply=apply_event), False
    save(connection, decided, now)
    return decided.decisions, held


@dataclass(frozen=True)
class Guess:
    """A batch decided from a snapshot, before its transaction: the events it took as fresh,
    what it loaded, and what it decided."""

    fresh: list[Event]
    loaded: Loaded
    decided: Decided

    def holds(self, fresh: list[Event], loaded: Loaded) -> bool:
        """Whether the transaction found the same fresh events and loaded the same state:
        `decide` is a pure function of both (and `now`, the same), so the guess's decisions
        are then exactly the ones it would make."""
        return (
            len(fresh) == len(self.fresh)
            and all(a is b for a, b in zip(fresh, self.fresh, strict=True))
            and loaded == self.loaded
        )


def decide_ahead(events: list[Event], runtime: Runtime, now: datetime) -> Guess | None:
    """SQLite: read and decide the batch in a snapshot, outside the write lock.

    SQLite writes one transaction at a time, and every worker waits for its turn: a batch's
    pure decisions, made inside it, were a fifth of the turn. Only when another writer holds
    the turn (this worker would wait anyway) they are made here, from a snapshot and without
    the lock, then checked inside the transaction (`Guess.holds`: its claim and its load find
    what the snapshot found) and used only if so; otherwise the transaction decides again, as
    without a guess. With the turn free a guess would only add a read: none is made. A batch
    whose load would write (a conversation seen for the first time) fails its read-only
    snapshot and gets no guess; so does one whose decisions fail (the transaction then meets
    the failure itself). PostgreSQL locks rows and writes batches side by side: no guess.
    """
    if not events or not another_writer_holds_the_turn(runtime.engine):
        return None
    first_of_key = _first_of_each_key(events)
    default = runtime.settings.default_account_settings
    try:
        snapshot = runtime.engine.connect().execution_options(**{READ_ONLY: True})
        with snapshot as connection, connection.begin():
            applied = idempotency.applied_already(
                connection, {key: e.occurred_at for key, e in first_of_key.items()}
            )
            fresh = [e for key, e in first_of_key.items() if key not in applied]
            loaded = batch.load(connection, fresh, default)
        decided = decide(loaded, fresh, now, apply=apply_event)
        for decision in decided.decisions:
            # Serialized here, outside the turn (cached on the decision): the transaction
            # writes this text into the decisions' rows, and the relay sends it.
            _ = decision.data
        return Guess(fresh, loaded, decided)
    except Exception:  # a guess that fails is no guess: the transaction decides, or fails
        return None


def parse(
    payload: object, runtime: Runtime, now: datetime
) -> tuple[list[Event], list[InvalidEvent]]:
    """The payload's events, and the refusals (unparsable, from the future, past the cap)."""
    items, beyond = capped(split_payload(payload), runtime.settings.max_events_per_message)
    valid, invalid = validate(items, runtime, now)
    return valid, invalid + beyond


def claim_fresh(connection: Connection, events: list[Event], now: datetime) -> list[Event]:
    """The events never applied before (the first of each event id), claimed as applied."""
    first_of_key = _first_of_each_key(events)
    occurred = {key: event.occurred_at for key, event in first_of_key.items()}
    fresh_keys = idempotency.claim(connection, occurred, now)
    return [event for key, event in first_of_key.items() if key in fresh_keys]


def _first_of_each_key(events: list[Event]) -> dict[tuple[str, str], Event]:
    first_of_key: dict[tuple[str, str], Event] = {}
    for event in events:
        first_of_key.setdefault((event.account_id, event.event_id), event)
    return first_of_key


def save(connection: Connection, decided: Decided, now: datetime) -> None:
    """The write phase: configuration rows, conversations with their deadlines, and the new
    deadlines of every open conversation of an account or a line whose deadline settings
    changed (after the line rows: an account's reschedule reads the lines' overrides)."""
    configuration.save_account_rows(connection, decided.accounts)
    configuration.save_line_rows(connection, decided.lines)
    configuration.save_agent_rows(connection, decided.agents)
    conversations.save(connection, decided.conversations)
    for account_id, account_settings in decided.rescheduled.items():
        reschedule_account(connection, account_id, account_settings, now)
    # A line changed in the same batch as its account is rescheduled twice: the same result,
    # and too rare to be worth telling apart.
    for (account_id, line_id), line_settings in sorted(decided.rescheduled_lines.items()):
        reschedule_line(connection, account_id, line_id, line_settings, now)


def save_outcome(
    connection: Connection,
    invalid: list[InvalidEvent],
    decisions: list[AutoClosed | ContactRouted],
    now: datetime,
) -> list[AutoClosed | ContactRouted]:
    """Dead letters and decisions into the outbox; returns the decisions to relay.

    A redelivery after its event ids were pruned decides again, with the same decision ids:
    the decision stored the first time stands, and only what is stored now is logged, counted
    and relayed.
    """
    for error in invalid:
        outbox.add_invalid(connection, error, now)
    stored = set(outbox.add_decisions(connection, decisions, now))
    return [decision for decision in decisions if decision.decision_id in stored]


def split_payload(payload: object) -> list[object]:
    """The items of a task's payload: a list of events, or one event (a JSON list as text too)."""
    if isinstance(payload, str | bytes):
        try:
            decoded = json.loads(payload)
        except (ValueError, RecursionError):
            return [payload]
        if isinstance(decoded, list):
            return list(decoded)
        return [payload]
    if isinstance(payload, list | tuple):
        return list(payload)
    return [payload]


def validate(
    items: list[object], runtime: Runtime, now: datetime
) -> tuple[list[Event], list[InvalidEvent]]:
    """Parse every item; what fails becomes an InvalidEvent (for a dead letter)."""
    settings = runtime.settings
    valid: list[Event] = []
    invalid: list[InvalidEvent] = []
    for item in items:
        try:
            event = parse_event(item, max_bytes=settings.max_event_bytes)
        except InvalidEvent as error:
            invalid.append(error)
            continue
        if from_the_future(event.occurred_at, now, settings.max_clock_skew):
            invalid.append(
                refuse(
                    item,
                    f"occurred_at {event.occurred_at.isoformat()} is more than "
                    f"{settings.max_clock_skew} ahead of convlife's clock",
                    "future",
                )
            )
            continue
        valid.append(event)
    return valid, invalid


def capped(items: list[object], cap: int) -> tuple[list[object], list[InvalidEvent]]:
    """The first `cap` items, and the rest as refusals (each dead-lettered, so it can be
    replayed): one huge message must not hold a worker's memory or come back forever."""
    beyond = [
        refuse(
            item,
            f"beyond the {cap} events one message may carry "
            f"(item {index + 1} of {len(items)}); replay it in another message",
            "too_many_events",
        )
        for index, item in enumerate(items[cap:], start=cap)
    ]
    return items[:cap], beyond
