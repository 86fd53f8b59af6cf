"""`python -m bench.decision_ids [--store sqlite|postgresql|both] [--rows N]`: storing a batch
of decisions (store/outbox.py `add_decisions`, 500 `contact.routed` a transaction, as ingest
does) whose ids are random (version 5, as until session 19) against ids that begin with their
time (`policies.identity.decision_id`, version 8), in one run.

Two fresh databases per store, migrated to the head, each preloaded untimed with N decisions
of its kind of id; then batches alternate between the two, one on each in turn, so machine
noise falls on both alike. Prints µs per decision stored for each, and their ratio.
Loopback only; PostgreSQL databases `convlife_ids_{random,ordered}` are dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from bench.idempotency_scale import database
from events.decisions import ContactRouted, Route
from policies.identity import _NAMESPACE, decision_id
from store import outbox
from store.db import make_engine
from store.migrate import upgrade

BATCH = 500
ACCOUNTS = 20

IdOf = Callable[[datetime, str, str], str]
"""(when the inbound occurred, account, event id) -> the decision's id."""


def random_id(occurred_at: datetime, account: str, event_id: str) -> str:
    """The id as it was made until session 19: a version 5 UUID of the same parts."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(("contact.routed", account, event_id))))


def ordered_id(occurred_at: datetime, account: str, event_id: str) -> str:
    return decision_id(occurred_at, "contact.routed", account, event_id)


class Feed:
    """Routed decisions of one kind of id, for inbound events occurring one after another
    (0.1 ms apart, as 10,000 events a second arrive)."""

    def __init__(self, id_of: IdOf, start: datetime) -> None:
        self.id_of, self.next_at, self.count = id_of, start, 0

    def batch(self, size: int = BATCH) -> list[ContactRouted]:
        made = []
        for _ in range(size):
            n, at = self.count, self.next_at
            self.count, self.next_at = n + 1, at + timedelta(microseconds=100)
            account, event_id = f"acct-{n % ACCOUNTS}", f"in-{n}"
            made.append(
                ContactRouted(
                    decision_id=self.id_of(at, account, event_id),
                    account_id=account,
                    decided_at=at,
                    reason="the contact's last conversation was closed by its agent 1 h ago",
                    inbound_event_id=event_id,
                    contact_id=f"contact-{n}",
                    line_id="line-1",
                    route=Route.PREVIOUS_AGENT,
                    conversation_id=f"conversation-{n}",
                    agent_id=f"agent-{n % 7}",
                )
            )
        return made


def store_batch(engine: Engine, feed: Feed) -> float:
    """Seconds to store one batch (its decisions made beforehand, untimed)."""
    made = feed.batch()
    for decision in made:
        _ = decision.data  # serialized before the clock starts, as ingest's decide does
    started = time.perf_counter()
    with engine.begin() as connection:
        stored = outbox.add_decisions(connection, made, made[-1].decided_at)
    elapsed = time.perf_counter() - started
    assert len(stored) == len(made)
    return elapsed


@contextmanager
def databases(store: str) -> Iterator[tuple[str, str]]:
    if store == "postgresql":
        with database("convlife_ids_random") as a, database("convlife_ids_ordered") as b:
            yield a, b
        return
    with tempfile.TemporaryDirectory() as directory:
        yield (
            f"sqlite:///{Path(directory) / 'random.db'}",
            f"sqlite:///{Path(directory) / 'ordered.db'}",
        )


def run_store(store: str, rows: int, batches: int) -> dict[str, float]:
    start = datetime.now(UTC) - timedelta(hours=1)
    with databases(store) as (random_url, ordered_url):
        engines = []
        for url in (random_url, ordered_url):
            upgrade(url)
            engines.append(make_engine(url))
        feeds = [Feed(random_id, start), Feed(ordered_id, start)]
        loaded_at = time.monotonic()
        for engine, feed in zip(engines, feeds, strict=True):
            for _ in range(rows // BATCH):
                store_batch(engine, feed)
        print(f"{store}: preloaded {rows:,} decisions each in {time.monotonic() - loaded_at:.0f} s")
        seconds: list[list[float]] = [[], []]
        for _ in range(batches):
            for kind, (engine, feed) in enumerate(zip(engines, feeds, strict=True)):
                seconds[kind].append(store_batch(engine, feed))
        for engine in engines:
            engine.dispose()
    random_us, ordered_us = (statistics.median(s) / BATCH * 1e6 for s in seconds)
    return {"random": random_us, "ordered": ordered_us, "ratio": random_us / ordered_us}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rows", type=int, default=150_000, help="decisions preloaded")
    parser.add_argument("--batches", type=int, default=60, help="timed batches of each kind")
    args = parser.parse_args()
    stores = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    results = {store: run_store(store, args.rows, args.batches) for store in stores}
    print(
        f"\nstoring {BATCH} contact.routed a transaction over {args.rows:,} stored, "
        f"µs per decision (median batch of {args.batches})"
    )
    print(f"{'store':<12} {'random ids':>11} {'time-ordered':>13} {'speed-up':>9}")
    for store, r in results.items():
        print(f"{store:<12} {r['random']:>11.1f} {r['ordered']:>13.1f} {r['ratio']:>8.2f}x")


if __name__ == "__main__":
    main()
