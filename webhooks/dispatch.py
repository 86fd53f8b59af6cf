"""The webhook dispatcher: fan decisions out, claim due deliveries, send, record.

One run (one Celery task on `convlife.webhooks`, sent by beat) loops while it has something new
to start, for at most `DeliveryConfig.budget` seconds: each turn fans out new decisions and
claims what is due for the endpoints that have a free slot, and hands each claim to a thread (a
lane: send, record, and after a 2xx take the endpoint's next due delivery). A slow endpoint
holds only its own slots (its circuit's in-flight limit); every other endpoint's deliveries keep
being claimed and sent. Nothing waits in memory: what is not claimed stays in the database
until its endpoint has room.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime

import httpx
from redis import Redis
from sqlalchemy.engine import Engine

from policies.delivery import DeliveryConfig
from store import webhooks as store
from webhooks import chatwoot
from webhooks.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

log = logging.getLogger("convlife.webhooks")

MAX_RESPONSE_BYTES = 64 * 1024
"""Of a receiver's answer only the status counts; at most this much of its body is read."""

FAN_OUT_EVERY = 0.25
"""Seconds between two fan-outs within one run."""

Clock = Callable[[], datetime]
Outcome = tuple[store.Claim, str | BaseException | None]
"""A claim and what became of it: a delivery status, None (superseded), or the error that
kept it from being recorded."""


@dataclass
class RunResult:
    fanned_out: int = 0
    delivered: int = 0
    failed: int = 0
    given_up: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)


class Dispatcher:
    """Sends deliveries from one thread pool over one pooled HTTP client, both kept between
    runs: a request still in flight when a run ends (a slow endpoint) finishes and records
    itself in its thread, and never holds the run up; the next run counts it as in flight."""

    def __init__(
        self,
        config: DeliveryConfig,
        client: httpx.Client | None = None,
        echo_redis_url: str | None = None,
    ) -> None:
        """`echo_redis_url`: the Redis where Chatwoot calls are recorded for echo recognition
        (the streams Redis); without it a Chatwoot subscription's calls are not made."""
        self.config = config
        self.echoes = (
            None
            if echo_redis_url is None
            else Redis.from_url(echo_redis_url, socket_connect_timeout=2, socket_timeout=2)
        )
        self.client = client or httpx.Client(
            timeout=httpx.Timeout(config.timeout),
            limits=httpx.Limits(
                max_connections=config.max_in_flight,
                max_keepalive_connections=config.max_in_flight,
            ),
            follow_redirects=False,  # a redirect is not a delivery: the operator fixes the URL
            headers={"User-Agent": "convlife-webhooks"},
        )
        self.pool = ThreadPoolExecutor(config.max_in_flight, thread_name_prefix="webhook")
        self.in_flight: dict[Future[list[Outcome]], store.Claim] = {}
        self.running = threading.Lock()

    def close(self) -> None:
        """Wait for requests in flight (each bounded by the timeout), then let go."""
        self.pool.shutdown(wait=True)
        self.client.close()
        if self.echoes is not None:
            self.echoes.close()

    def run(
        self, engine: Engine, clock: Clock, jitter: Callable[[], float] = random.random
    ) -> RunResult:
        """Fan out, then claim and send what is due until nothing more is (or the budget is
        spent); returns the counts of the answers seen. Requests still in flight when it
        returns go on in their threads and record themselves. One run at a time per process: a run
        that finds another one going returns at once (that one does the work)."""
        result = RunResult()
        if not self.running.acquire(blocking=False):
            return result
        try:
            self._run(engine, clock, jitter, result)
        finally:
            self.running.release()
        return result

    def _run(
        self, engine: Engine, clock: Clock, jitter: Callable[[], float], result: RunResult
    ) -> None:
        config = self.config
        deadline = time.monotonic() + config.budget
        next_fan_out = 0.0
        while True:
            self._harvest(result)
            if time.monotonic() >= deadline:
                return
            now = clock()
            if time.monotonic() >= next_fan_out:
                # Not on every turn: a turn follows each answer, and new decisions can wait
                # a fraction of a second.
                result.fanned_out += store.fan_out(engine, now)
                next_fan_out = time.monotonic() + FAN_OUT_EVERY
            claimed = 0
            room = config.max_in_flight - len(self.in_flight)
            if room > 0:
                per_endpoint = Counter(claim.subscription_id for claim in self.in_flight.values())
                busy = frozenset(
                    endpoint
                    for endpoint, count in per_endpoint.items()
                    if count >= config.circuit.max_in_flight
                )
                for claim in store.claim_due(engine, now, config.circuit, config.lease, room, busy):
                    future = self.pool.submit(self._lane, engine, claim, clock, jitter, deadline)
                    self.in_flight[future] = claim
                    claimed += 1
            if not self.in_flight:
                return
            done, _ = wait(self.in_flight, timeout=config.poll, return_when=FIRST_COMPLETED)
            if not claimed and not done:
                # Nothing new to start, and what is in flight is slow or draining a backlog in
                # its lane: it records itself. Free the Celery process for other tasks; the
                # next tick (or the next run in this process) goes on from here.
                return

    def _harvest(self, result: RunResult) -> None:
        for future in [future for future in self.in_flight if future.done()]:
            self.in_flight.pop(future)
            _count(result, future)

    def _lane(
        self,
        engine: Engine,
        claim: store.Claim,
        clock: Clock,
        jitter: Callable[[], float],
        deadline: float,
    ) -> list[Outcome]:
        """Send a claim; while its endpoint answers 2xx (and the run's budget lasts), claim its
        next due delivery in this same thread: a backlog drains at the endpoint's pace, not at
        the pace of the run's loop. After a failure the lane ends (the circuit decides)."""
        outcomes: list[Outcome] = []
        current: store.Claim | None = claim
        while current is not None:
            try:
                status = self._deliver(engine, current, clock, jitter)
            except Exception as error:  # the database went away: see _count
                outcomes.append((current, error))
                return outcomes
            outcomes.append((current, status))
            if status != store.DELIVERED or time.monotonic() >= deadline:
                return outcomes
            current = store.claim_next(engine, current.subscription_id, clock(), self.config.lease)
        return outcomes

    def _deliver(
        self, engine: Engine, claim: store.Claim, clock: Clock, jitter: Callable[[], float]
    ) -> str | None:
        if claim.kind == store.CHATWOOT:
            return self._deliver_to_chatwoot(engine, claim, clock, jitter)
        started_at = clock()
        status_code, error = self.send(claim, int(started_at.timestamp()))
        return store.record_attempt(
            engine,
            claim,
            started_at=started_at,
            now=clock(),
            status_code=status_code,
            error=error,
            retry=self.config.retry,
            circuit=self.config.circuit,
            jitter=jitter(),
        )

    def _deliver_to_chatwoot(
        self, engine: Engine, claim: store.Claim, clock: Clock, jitter: Callable[[], float]
    ) -> str | None:
        def record(
            claim: store.Claim, started_at: datetime, result: chatwoot.CallResult
        ) -> str | None:
            return store.record_attempt(
                engine,
                claim,
                started_at=started_at,
                now=clock(),
                status_code=result.status_code,
                error=result.error,
                retry=self.config.retry,
                circuit=self.config.circuit,
                jitter=jitter(),
                outcome=result.outcome,
            )

        def log_success(claim: store.Claim, started_at: datetime, status: int | None) -> None:
            store.log_attempt(engine, claim, started_at=started_at, now=clock(), status_code=status)

        return chatwoot.deliver(
            claim,
            client=self.client,
            echoes=self.echoes,
            clock=clock,
            timeout=self.config.timeout,
            record=record,
            log_success=log_success,
        )

    def send(self, claim: store.Claim, timestamp: int) -> tuple[int | None, str | None]:
        """POST one decision; returns (HTTP status or None, error text or None)."""
        body = claim.data.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            DELIVERY_HEADER: claim.decision_id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(claim.secret, timestamp, body),
        }
        give_up_reading_at = time.monotonic() + self.config.timeout
        try:
            with self.client.stream("POST", claim.url, content=body, headers=headers) as response:
                # Read (a little of) the body so the connection can be kept alive; a receiver
                # that trickles it is cut off: the status is what counts.
                read = 0
                for chunk in response.iter_raw():
                    read += len(chunk)
                    if read > MAX_RESPONSE_BYTES or time.monotonic() > give_up_reading_at:
                        break
                status = response.status_code
        except httpx.TimeoutException as error:
            return None, f"timeout ({type(error).__name__}) after {self.config.timeout:g} s"
        except Exception as error:
            # Connection refused or reset, a protocol error, a URL httpx cannot use: all are a
            # failed attempt, retried and in the end given up, never a delivery stuck unrecorded.
            return None, f"{type(error).__name__}: {error}"
        return status, None if 200 <= status < 300 else f"HTTP {status}"


def _count(result: RunResult, future: Future[list[Outcome]]) -> None:
    for claim, status in future.result():
        if isinstance(status, BaseException):
            # The database went away between send and record: the lease runs out and the
            # delivery is sent again (at least once).
            log.warning(
                "webhook delivery %s not recorded: %s: %s",
                claim.delivery_id,
                type(status).__name__,
                str(status).splitlines()[0] if str(status) else "",
            )
            result.outcomes["unrecorded"] += 1
            continue
        result.outcomes[status or "superseded"] += 1
        if status == store.DELIVERED:
            result.delivered += 1
        elif status == store.FAILED:
            result.failed += 1
        elif status == store.GIVEN_UP:
            result.given_up += 1
            log.warning(
                "webhook delivery %s of decision %s to subscription %s given up after %s attempts",
                claim.delivery_id,
                claim.decision_id,
                claim.subscription_id,
                claim.attempts + 1,
            )


class LazyDispatcher:
    """One Dispatcher per process, built on first use and rebuilt after a fork."""

    def __init__(self, config: DeliveryConfig, echo_redis_url: str | None = None) -> None:
        self.config = config
        self.echo_redis_url = echo_redis_url
        self._dispatcher: Dispatcher | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> Dispatcher:
        with self._lock:
            if self._dispatcher is None or self._pid != os.getpid():
                self._dispatcher = Dispatcher(self.config, echo_redis_url=self.echo_redis_url)
                self._pid = os.getpid()
            return self._dispatcher
