"""Webhook subscriptions and deliveries: the rows, and the three steps of a delivery's life.

1. `fan_out`: the decisions `webhook_outbox` names (a row per batch, written with the decisions)
   get one delivery row per subscription that wants them, and the outbox rows are deleted, in
   one transaction. So a decision committed just before a crash is fanned out by the next run.
2. `claim_due`: due deliveries are leased (`leased_until`, and `next_attempt_at` moved to the
   lease's end, so a dispatcher that dies mid-request hands them back when the lease ends),
   at most as many per endpoint as its circuit allows, under the subscription's row lock.
3. `record_attempt`: the answer is written only if the delivery is still the one claimed
   (same status family, same attempt count): a late answer after the lease passed to another
   dispatcher changes nothing, and a delivered row is final, never claimed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from policies.delivery import (
    CircuitPolicy,
    RetryPolicy,
    delivered,
    free_slots,
    next_attempt_after_failure,
    paused_until_after_failure,
    wants,
)
from store.db import insert_ignoring_conflicts
from store.outbox import claim_oldest, of_decisions
from store.tables import (
    decisions,
    webhook_attempts,
    webhook_deliveries,
    webhook_outbox,
    webhook_subscriptions,
)

PENDING = "pending"
FAILED = "failed"
DELIVERED = "delivered"
GIVEN_UP = "given_up"
STATUSES = (PENDING, FAILED, DELIVERED, GIVEN_UP)
WAITING = (PENDING, FAILED)
"""Statuses a dispatcher may still send."""

ERROR_TEXT_LIMIT = 500

WEBHOOK = "webhook"
CHATWOOT = "chatwoot"
KINDS = (WEBHOOK, CHATWOOT)
"""What a subscription does with a decision: POST it signed (`webhook`), or make the Chatwoot
API calls that carry it out (`chatwoot`: `url` is Chatwoot's base URL, `secret` the token)."""

UNAUTHORIZED = "unauthorized"
"""`paused_reason` of a subscription whose receiver refused our credentials (Chatwoot's 401)."""

# What an attempt's outcome is, when the dispatcher knows better than the status code alone.
DROPPED = "dropped"
"""Nothing will ever make it succeed (a Chatwoot 404: the conversation is gone; a decision
Chatwoot cannot take): given up now, not retried, the endpoint's circuit untouched."""
NOTHING_TO_SEND = "nothing_to_send"
"""The decision asks nothing of this receiver: delivered at once, with no request."""


@dataclass(frozen=True)
class Subscription:
    id: int
    url: str
    account_id: str | None
    types: tuple[str, ...] | None
    created_at: datetime
    consecutive_failures: int
    paused_until: datetime | None
    kind: str = WEBHOOK
    paused_reason: str | None = None


@dataclass(frozen=True)
class Claim:
    """A delivery leased to one dispatcher: everything needed to send it and record the answer."""

    delivery_id: int
    subscription_id: int
    url: str
    secret: str
    decision_id: str
    data: str
    attempts: int
    """Attempts made before this one."""
    created_at: datetime
    kind: str = WEBHOOK


@dataclass(frozen=True)
class Delivery:
    id: int
    subscription_id: int
    decision_id: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None


# --- subscriptions --------------------------------------------------------------------------


def add_subscription(
    connection: Connection,
    *,
    url: str,
    secret: str,
    now: datetime,
    account_id: str | None = None,
    types: Sequence[str] | None = None,
    kind: str = WEBHOOK,
) -> int:
    """Store a subscription (validated by the caller); returns its id."""
    result = connection.execute(
        insert(webhook_subscriptions)
        .values(
            kind=kind,
            url=url,
            account_id=account_id,
            types=",".join(types) if types else None,
            secret=secret,
            created_at=now,
            consecutive_failures=0,
            paused_until=None,
        )
        .returning(webhook_subscriptions.c.id)
    )
    return int(result.scalar_one())


def subscriptions(connection: Connection) -> list[Subscription]:
    """Every subscription, oldest first (secrets are not read)."""
    rows = connection.execute(
        select(
            webhook_subscriptions.c.id,
            webhook_subscriptions.c.url,
            webhook_subscriptions.c.account_id,
            webhook_subscriptions.c.types,
            webhook_subscriptions.c.created_at,
            webhook_subscriptions.c.consecutive_failures,
            webhook_subscriptions.c.paused_until,
            webhook_subscriptions.c.kind,
            webhook_subscriptions.c.paused_reason,
        ).order_by(webhook_subscriptions.c.id)
    ).all()
    return [_subscription(row) for row in rows]


def replace_credentials(
    connection: Connection, *, kind: str, url: str, account_id: str | None, secret: str
) -> int | None:
    """Give the subscription of this kind, URL and account a new secret (a Chatwoot token that
    was rotated) and close its circuit, so what waits is sent at once; returns its id, or None
    if there is no such subscription."""
    found = connection.execute(
        select(webhook_subscriptions.c.id).where(
            webhook_subscriptions.c.kind == kind,
            webhook_subscriptions.c.url == url,
            webhook_subscriptions.c.account_id.is_(None)
            if account_id is None
            else webhook_subscriptions.c.account_id == account_id,
        )
    ).first()
    if found is None:
        return None
    connection.execute(
        update(webhook_subscriptions)
        .where(webhook_subscriptions.c.id == found.id)
        .values(secret=secret, consecutive_failures=0, paused_until=None, paused_reason=None)
    )
    return int(found.id)


def unauthorized(connection: Connection) -> list[Subscription]:
    """Subscriptions whose receiver refused our credentials since their last success."""
    return [s for s in subscriptions(connection) if s.paused_reason == UNAUTHORIZED]


def remove_subscription(connection: Connection, subscription_id: int) -> bool:
    """Delete a subscription with its deliveries and their attempts; False if there was none."""
    delivery_ids = select(webhook_deliveries.c.id).where(
        webhook_deliveries.c.subscription_id == subscription_id
    )
    # Explicit deletes: the ON DELETE CASCADE of the schema is the backstop, not the mechanism.
    connection.execute(
        delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(delivery_ids))
    )
    connection.execute(
        delete(webhook_deliveries).where(webhook_deliveries.c.subscription_id == subscription_id)
    )
    removed = connection.execute(
        delete(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
    )
    return removed.rowcount > 0


def deliveries(
    connection: Connection,
    *,
    subscription_id: int | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """Deliveries, newest first, optionally of one subscription and/or in one status."""
    query = select(webhook_deliveries).order_by(webhook_deliveries.c.id.desc()).limit(limit)
    if subscription_id is not None:
        query = query.where(webhook_deliveries.c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    return [
        Delivery(
            id=row.id,
            subscription_id=row.subscription_id,
            decision_id=row.decision_id,
            status=row.status,
            attempts=row.attempts,
            created_at=row.created_at,
            next_attempt_at=row.next_attempt_at,
            first_attempt_at=row.first_attempt_at,
            last_attempt_at=row.last_attempt_at,
            delivered_at=row.delivered_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
        )
        for row in connection.execute(query).all()
    ]


def attempts(connection: Connection, delivery_id: int) -> list[Any]:
    """The attempts log of one delivery, oldest first."""
    return list(
        connection.execute(
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id == delivery_id)
            .order_by(webhook_attempts.c.id)
        ).all()
    )


# --- 1. fan-out ------------------------------------------------------------------------------


def fan_out(engine: Engine, now: datetime, batch_size: int = 1000) -> int:
    """Make the delivery rows of every decision the webhook outbox holds; returns how many
    were made.

    Outbox rows are claimed and deleted with SKIP LOCKED, so two dispatchers share the work;
    a delivery row is unique per (subscription, decision), so doing a batch twice makes nothing
    twice. With no subscription, the rows are only deleted: nothing per decision is read.
    """
    made = 0
    while True:
        with engine.begin() as connection:
            ids, more = claim_oldest(connection, webhook_outbox, batch_size)
            new = _deliveries(connection, ids, now) if ids else []
            if new:
                connection.execute(
                    insert_ignoring_conflicts(
                        connection, webhook_deliveries, ["subscription_id", "decision_id"]
                    ),
                    new,
                )
            made += len(new)
        if not more:
            return made


def _deliveries(connection: Connection, ids: list[str], now: datetime) -> list[dict[str, Any]]:
    """The delivery rows these decisions make: one per subscription that wants each. With no
    subscription, nothing per decision is read."""
    subscribers = subscriptions(connection)
    if not subscribers:
        return []
    rows = of_decisions(
        connection, ids, decisions.c.decision_id, decisions.c.account_id, decisions.c.type
    )
    return [
        {
            "subscription_id": subscriber.id,
            "decision_id": row.decision_id,
            "status": PENDING,
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for row in rows
        for subscriber in subscribers
        if wants(subscriber.account_id, subscriber.types, (row.account_id, row.type))
    ]


# --- 2. claim --------------------------------------------------------------------------------


def claim_due(
    engine: Engine,
    now: datetime,
    circuit: CircuitPolicy,
    lease: timedelta,
    room: int,
    busy: frozenset[int] = frozenset(),
) -> list[Claim]:
    """Lease up to `room` due deliveries, each endpoint's share bounded by its circuit.

    `busy`: subscriptions this dispatcher is already at its limit for (skipped without a
    query). One short transaction per endpoint, under its row lock (SKIP LOCKED: another
    dispatcher claiming for it now means we leave it to that one).
    """
    with engine.connect() as connection:
        candidates = [
            subscriber
            for subscriber in subscriptions(connection)
            if subscriber.id not in busy
            and (subscriber.paused_until is None or subscriber.paused_until <= now)
        ]
    claims: list[Claim] = []
    for subscriber in candidates:
        if len(claims) >= room:
            break
        claims += claim_for(engine, subscriber.id, now, circuit, lease, room - len(claims))
    return claims


def claim_for(
    engine: Engine,
    subscription_id: int,
    now: datetime,
    circuit: CircuitPolicy,
    lease: timedelta,
    room: int,
) -> list[Claim]:
    """Lease up to `room` due deliveries of one endpoint, as many as its circuit allows."""
    with engine.begin() as connection:
        subscriber = connection.execute(
            select(webhook_subscriptions)
            .where(webhook_subscriptions.c.id == subscription_id)
            .with_for_update(skip_locked=True)
        ).one_or_none()
        if subscriber is None:
            return []
        in_flight = connection.execute(
            select(func.count())
            .select_from(webhook_deliveries)
            .where(
                webhook_deliveries.c.subscription_id == subscription_id,
                webhook_deliveries.c.leased_until.is_not(None),
                webhook_deliveries.c.leased_until > now,
            )
        ).scalar_one()
        slots = free_slots(
            subscriber.consecutive_failures, subscriber.paused_until, int(in_flight), now, circuit
        )
        if slots <= 0:
            return []
        return _lease_due(connection, subscriber, now, lease, min(slots, room))


def claim_next(
    engine: Engine, subscription_id: int, now: datetime, lease: timedelta
) -> Claim | None:
    """The endpoint's next due delivery, for a request slot that just came free (its delivery
    recorded a 2xx): the slot passes on, so the in-flight count is not taken again and the
    endpoint's row is not locked. None if nothing is due or the endpoint was paused meanwhile."""
    with engine.begin() as connection:
        subscriber = connection.execute(
            select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
        ).one_or_none()
        if subscriber is None or (
            subscriber.paused_until is not None and subscriber.paused_until > now
        ):
            return None
        claims = _lease_due(connection, subscriber, now, lease, 1)
    return claims[0] if claims else None


def _lease_due(
    connection: Connection, subscriber: Any, now: datetime, lease: timedelta, limit: int
) -> list[Claim]:
    rows = connection.execute(
        select(
            webhook_deliveries.c.id,
            webhook_deliveries.c.decision_id,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.created_at,
            decisions.c.data,
        )
        .join(decisions, decisions.c.decision_id == webhook_deliveries.c.decision_id)
        .where(
            webhook_deliveries.c.subscription_id == subscriber.id,
            webhook_deliveries.c.status.in_(WAITING),
            webhook_deliveries.c.next_attempt_at <= now,
        )
        .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        .limit(limit)
        .with_for_update(of=webhook_deliveries, skip_locked=True)
    ).all()
    if not rows:
        return []
    connection.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id.in_([row.id for row in rows]))
        .values(leased_until=now + lease, next_attempt_at=now + lease)
    )
    return [
        Claim(
            delivery_id=row.id,
            subscription_id=subscriber.id,
            url=subscriber.url,
            secret=subscriber.secret,
            decision_id=row.decision_id,
            data=row.data,
            attempts=row.attempts,
            created_at=row.created_at,
            kind=subscriber.kind,
        )
        for row in rows
    ]


# --- 3. record -------------------------------------------------------------------------------


def record_attempt(
    engine: Engine,
    claim: Claim,
    *,
    started_at: datetime,
    now: datetime,
    status_code: int | None,
    error: str | None,
    retry: RetryPolicy,
    circuit: CircuitPolicy,
    jitter: float,
    outcome: str | None = None,
) -> str | None:
    """Write one attempt's outcome; returns the delivery's new status, or None when the
    delivery was no longer this claim's (its lease passed to another dispatcher, or it was
    removed): then only the attempts log keeps what happened.

    `outcome`: None, the status code decides (2xx delivered, else retried); DROPPED, given up
    now; NOTHING_TO_SEND, delivered; UNAUTHORIZED, retried and the endpoint paused with that
    reason (its circuit opens at once)."""
    ok = delivered(status_code) if outcome is None else outcome == NOTHING_TO_SEND
    made = claim.attempts + 1
    if ok:
        status, next_at = DELIVERED, now
    elif outcome == DROPPED:
        status, next_at = GIVEN_UP, now
    else:
        retry_at = next_attempt_after_failure(made, claim.created_at, now, retry, jitter)
        status, next_at = (FAILED, retry_at) if retry_at is not None else (GIVEN_UP, now)
    with engine.begin() as connection:
        changed = connection.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.id == claim.delivery_id,
                webhook_deliveries.c.status.in_(WAITING),
                webhook_deliveries.c.attempts == claim.attempts,
            )
            .values(
                status=status,
                attempts=made,
                next_attempt_at=next_at,
                leased_until=None,
                first_attempt_at=func.coalesce(webhook_deliveries.c.first_attempt_at, started_at),
                last_attempt_at=started_at,
                delivered_at=now if ok else None,
                last_status_code=status_code,
                last_error=None if ok else _short(error),
            )
        ).rowcount
        if changed:
            connection.execute(
                insert(webhook_attempts).values(
                    delivery_id=claim.delivery_id,
                    attempted_at=started_at,
                    status_code=status_code,
                    error=None if ok else _short(error),
                    duration_ms=max(0, int((now - started_at).total_seconds() * 1000)),
                )
            )
            if outcome != DROPPED:
                _update_circuit(
                    connection, claim.subscription_id, ok, now, circuit, outcome == UNAUTHORIZED
                )
    return status if changed else None


def log_attempt(
    engine: Engine,
    claim: Claim,
    *,
    started_at: datetime,
    now: datetime,
    status_code: int | None,
) -> None:
    """Log a successful request that is not the delivery's last (a decision that takes several
    Chatwoot calls): the attempts log shows each call; the delivery's row waits for the last."""
    with engine.begin() as connection:
        connection.execute(
            insert(webhook_attempts).values(
                delivery_id=claim.delivery_id,
                attempted_at=started_at,
                status_code=status_code,
                error=None,
                duration_ms=max(0, int((now - started_at).total_seconds() * 1000)),
            )
        )


def _update_circuit(
    connection: Connection,
    subscription_id: int,
    ok: bool,
    now: datetime,
    circuit: CircuitPolicy,
    unauthorized: bool = False,
) -> None:
    if ok:
        # Written only when there is something to reset: a healthy endpoint's row stays
        # unlocked, so claims for it (which lock it, SKIP LOCKED) do not skip it.
        connection.execute(
            update(webhook_subscriptions)
            .where(
                webhook_subscriptions.c.id == subscription_id,
                (webhook_subscriptions.c.consecutive_failures != 0)
                | webhook_subscriptions.c.paused_until.is_not(None)
                | webhook_subscriptions.c.paused_reason.is_not(None),
            )
            .values(consecutive_failures=0, paused_until=None, paused_reason=None)
        )
        return
    failures = connection.execute(
        select(webhook_subscriptions.c.consecutive_failures)
        .where(webhook_subscriptions.c.id == subscription_id)
        .with_for_update()
    ).scalar_one_or_none()
    if failures is None:
        return
    failures += 1
    if unauthorized:
        # Every request would be refused alike: open the circuit now (one trial per cool-down)
        # and say why, until a success clears it.
        failures = max(failures, circuit.failures_to_open)
    values: dict[str, Any] = {"consecutive_failures": failures}
    if unauthorized:
        values["paused_reason"] = UNAUTHORIZED
    paused_until = paused_until_after_failure(failures, now, circuit)
    if paused_until is not None:
        values["paused_until"] = paused_until
    connection.execute(
        update(webhook_subscriptions)
        .where(webhook_subscriptions.c.id == subscription_id)
        .values(**values)
    )


def _subscription(row: Any) -> Subscription:
    return Subscription(
        id=row.id,
        url=row.url,
        account_id=row.account_id,
        types=tuple(row.types.split(",")) if row.types else None,
        created_at=row.created_at,
        consecutive_failures=row.consecutive_failures,
        paused_until=row.paused_until,
        kind=row.kind,
        paused_reason=row.paused_reason,
    )


def _short(error: str | None) -> str | None:
    return None if error is None else error[:ERROR_TEXT_LIMIT]
