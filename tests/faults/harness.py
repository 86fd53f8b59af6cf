"""The fault suite's harness: a private Redis, a database of its own, real convlife processes,
a driver that records every submission, and a checker that counts what happened.

Checker figures: accepted (events the driver got into the broker), applied (in
processed_events), dead-lettered (in dead_letters), lost = accepted - applied - dead-lettered,
and duplicated effects (a conversation auto-closed twice for one idle period, an inbound routed
twice, a decision stored but never on the stream).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine

from events.publish import publish
from store import outbox
from store.tables import dead_letters, decisions, processed_events
from tests.processes import RedisServer, convlife, run_convlife, stop, wait_until


@dataclass
class Counts:
    accepted: int
    applied: int
    dead_lettered: int
    lost: int
    duplicated_effects: int
    decisions: int
    routed: int
    auto_closed: int
    closed_conversations: set[tuple[str, str]] = field(default_factory=set)
    doubled: int = 0
    """Inbounds routed twice plus idle periods closed twice (the stream aside)."""
    unpublished: int = 0
    """Decisions committed but never relayed (still in the outbox)."""

    def line(self) -> str:
        return (
            f"accepted={self.accepted} applied={self.applied} dead={self.dead_lettered} "
            f"lost={self.lost} duplicated={self.duplicated_effects} decisions={self.decisions}"
        )


@dataclass
class Driver:
    """Builds a workload under one run id and records what was submitted."""

    run: str = field(default_factory=lambda: f"f{uuid.uuid4().hex[:8]}")
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad: int = 0

    def workload(self, conversations: int, close_after: str = "PT2S") -> list[dict[str, Any]]:
        """Per conversation: open, messages, and either an agent close + a returning contact,
        or silence (so it auto-closes). Accounts have a short close setting and a window."""
        now = datetime.now(UTC)
        made: list[dict[str, Any]] = []
        accounts = [f"{self.run}-a{i}" for i in range(3)]
        for account in accounts:
            made.append(
                self._event(
                    "account.settings_updated",
                    account,
                    now - timedelta(seconds=30),
                    inactivity_close_after=close_after,
                    reassignment_window="PT1H",
                    bot_enabled=True,
                )
            )
        for n in range(conversations):
            account = accounts[n % len(accounts)]
            base = {"conversation_id": f"c{n}", "contact_id": f"k{n}", "line_id": "l1"}
            t = now - timedelta(seconds=20) + timedelta(milliseconds=n)
            made.append(self._event("conversation.opened", account, t, agent_id="ana", **base))
            made.append(
                self._event(
                    "conversation.message",
                    account,
                    t + timedelta(seconds=1),
                    sender="contact",
                    **base,
                )
            )
            if n % 2 == 0:
                made.append(
                    self._event(
                        "conversation.closed",
                        account,
                        t + timedelta(seconds=2),
                        closed_by="agent",
                        agent_id="ana",
                        close_reason="resolved",
                        **base,
                    )
                )
                made.append(
                    self._event(
                        "contact.inbound",
                        account,
                        t + timedelta(seconds=10),
                        contact_id=f"k{n}",
                        line_id="l1",
                    )
                )
        return made

    def _event(self, type_: str, account: str, at: datetime, **fields: Any) -> dict[str, Any]:
        event = {
            "event_id": f"{self.run}-{len(self.events)}",
            "type": type_,
            "account_id": account,
            "occurred_at": at.isoformat(),
            **fields,
        }
        self.events[event["event_id"]] = event
        return event

    def send(self, broker_url: str, events: list[Any], batch: int = 50) -> None:
        """Publish in batches, retrying a batch the broker refused (an upstream's duty)."""
        for start in range(0, len(events), batch):
            chunk = events[start : start + batch]
            for attempt in range(60):
                try:
                    publish(chunk, broker_url=broker_url, batch_size=batch)
                    break
                except Exception:
                    if attempt == 59:
                        raise
                    time.sleep(0.5)

    def must_close(self) -> set[tuple[str, str]]:
        """Conversations the workload leaves open: each must be auto-closed exactly once.

        (An agent-closed one may be auto-closed too, when a fault delays its close past its
        deadline: that is the rule working, not a duplicate.)"""
        return {
            (e["account_id"], e["conversation_id"])
            for e in self.events.values()
            if e["type"] == "conversation.opened" and int(e["conversation_id"][1:]) % 2 == 1
        }

    def inbound_count(self) -> int:
        return sum(1 for e in self.events.values() if e["type"] == "contact.inbound")


class Stack:
    """A private Redis, a fresh database, and convlife processes started on demand."""

    def __init__(self, tmp: Path, database_url: str, **env: str) -> None:
        self.tmp = tmp
        self.redis_server = RedisServer(tmp)
        self.redis_server.start()
        self.database_url = database_url
        self.env = {
            "CONVLIFE_BROKER_URL": self.redis_server.url,
            "CONVLIFE_DATABASE_URL": database_url,
            "CONVLIFE_SWEEP_INTERVAL": "0.5",
            "CONVLIFE_RELAY_INTERVAL": "1",
            "CONVLIFE_VISIBILITY_TIMEOUT": "10",
            **env,
        }
        migrated = run_convlife(["migrate"], self.env)
        assert migrated.returncode == 0, migrated.stderr
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log = tmp / "stack.log"
        self.engine: Engine = create_engine(database_url)

    @property
    def broker_url(self) -> str:
        return self.redis_server.url

    def redis(self) -> Redis:
        return Redis.from_url(self.redis_server.url, decode_responses=True)

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        process = convlife(list(args), self.env, self.log)
        self.processes.append(process)
        return process

    def worker(self, queues: str = "convlife.events,convlife.closes,convlife.outbox") -> Any:
        process = self.start("worker", "--queues", queues, "--concurrency", "2")
        wait_until(
            lambda: self.log.read_text(errors="replace").count(" ready.") >= 1, 30, "a worker"
        )
        return process

    def kill_group(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def close(self) -> None:
        for process in self.processes:
            stop(process)
        self.engine.dispose()
        self.redis_server.stop()

    # --- the checker --------------------------------------------------------------------

    def count(self, driver: Driver, accepted: int) -> Counts:
        like = f"{driver.run}-%"
        with self.engine.connect() as connection:
            applied = connection.execute(
                select(func.count()).where(processed_events.c.account_id.like(like))
            ).scalar_one()
            dead = connection.execute(
                select(func.count()).where(dead_letters.c.raw.contains(driver.run))
            ).scalar_one()
            rows = connection.execute(
                select(
                    decisions.c.decision_id,
                    decisions.c.type,
                    decisions.c.data,
                    decisions.c.account_id,
                ).where(decisions.c.account_id.like(like))
            ).all()
            waiting = outbox.unpublished_ids(connection)
        routed = [
            json.loads(r.data)["inbound_event_id"] for r in rows if r.type == "contact.routed"
        ]
        closes = [
            (
                r.account_id,
                json.loads(r.data)["conversation_id"],
                json.loads(r.data)["last_activity_at"],
            )
            for r in rows
            if r.type == "conversation.auto_closed"
        ]
        on_stream = set()
        for _id, fields in self.redis().xrange("convlife:decisions"):
            data = json.loads(fields["data"])
            if data["account_id"].startswith(driver.run):
                on_stream.add(data["decision_id"])
        never_delivered = [r for r in rows if r.decision_id not in on_stream]
        duplicated = (
            (len(routed) - len(set(routed)))
            + (len(closes) - len(set(closes)))
            + len(never_delivered)
        )
        return Counts(
            accepted=accepted,
            applied=int(applied),
            dead_lettered=int(dead),
            lost=accepted - int(applied) - int(dead),
            duplicated_effects=duplicated,
            decisions=len(rows),
            routed=len(routed),
            auto_closed=len(closes),
            closed_conversations={(account, conversation) for account, conversation, _ in closes},
            doubled=(len(routed) - len(set(routed))) + (len(closes) - len(set(closes))),
            unpublished=sum(1 for r in rows if r.decision_id in waiting),
        )

    def drain(self, driver: Driver, accepted: int, timeout: float = 60) -> Counts:
        """Wait until every accepted event is applied or dead-lettered and every decision
        is on the stream; return the counts (the caller asserts)."""
        last: list[Counts] = []

        def settled() -> bool:
            counts = self.count(driver, accepted)
            last[:] = [counts]
            return (
                counts.lost == 0
                and counts.routed >= driver.inbound_count()
                and driver.must_close() <= counts.closed_conversations
                and counts.unpublished == 0
            )

        # On timeout the caller's assertions say what is wrong, with the figures.
        with contextlib.suppress(AssertionError):
            wait_until(settled, timeout, "the system to drain")
        return last[0]


def shuffled(events: list[Any], seed: int = 7) -> list[Any]:
    copy = list(events)
    random.Random(seed).shuffle(copy)
    return copy


def fresh_database(admin_url: str) -> tuple[str, Any]:
    """A database of the test's own on the shared PostgreSQL; returns (url, drop)."""
    name = f"convlife_fault_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin_url.rsplit("/", 1)[0] + f"/{name}", drop


CONVERSATIONS = 60


def assert_nothing_lost_or_doubled(stack: Stack, driver: Driver, accepted: int) -> None:
    counts = stack.drain(driver, accepted)
    print(f"\nfault figures: {counts.line()}")
    assert counts.lost == 0, counts.line()
    assert counts.duplicated_effects == 0, counts.line()
    assert counts.accepted == counts.applied + counts.dead_lettered, counts.line()
    assert counts.routed == driver.inbound_count(), counts.line()
    assert driver.must_close() <= counts.closed_conversations, counts.line()
