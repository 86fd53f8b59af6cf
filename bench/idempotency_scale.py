"""`python -m bench.idempotency_scale [--rows N] [--design partitioned|plain|both]`: the rate of
the ingest's idempotency claim (store/idempotency.py `claim`, batches of 500 new event ids, one
transaction each, in-process, as service/ingest.py does) with N records already in
`processed_events`, against the same on an empty table, in one run.

Two fresh PostgreSQL databases per design (`convlife_part_<design>_{empty,loaded}<suffix>`,
dropped at the end): N rows are loaded into one (INSERT … SELECT generate_series with the keys
dropped, then the keys built: minutes, not hours), then claims alternate between the two batch
by batch, so machine noise falls on both alike; each rate is the median of the rounds.

- partitioned: the schema at the head (migration 0010): the N rows spread over the 30 days
  before today, one partition each; new events occur today.
- plain: the schema before it (migration 0009: one table keyed by (account_id, event_id)), and
  the claim statement the code made then (the same `bulk_insert`, without the day).

Event ids are 32 hex characters (like a UUID), accounts 1,000, so inserts land all over the key.
Set BENCH_POSTGRES for the server (admin URL), BENCH_PART_SUFFIX to tell runs apart.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Column, MetaData, Table, create_engine, text
from sqlalchemy.engine import Connection, Engine

from bench.harness import ADMIN_URL
from store import idempotency
from store.db import UTCDateTime, bulk_insert, make_engine
from store.migrate import alembic_config
from store.tables import ID

BATCH = 500
ACCOUNTS = 1_000
DAYS = 30

# The table as migration 0009 left it, and main's claim on it.
_plain = Table(
    "processed_events",
    MetaData(),
    Column("account_id", ID, primary_key=True),
    Column("event_id", ID, primary_key=True),
    Column("processed_at", UTCDateTime, nullable=False),
)

Claim = Callable[[Connection, list[tuple[str, str]], datetime], int]


def claim_plain(connection: Connection, keys: list[tuple[str, str]], now: datetime) -> int:
    rows = [{"account_id": a, "event_id": e, "processed_at": now} for a, e in sorted(set(keys))]
    inserted = bulk_insert(
        connection,
        _plain,
        rows,
        key=["account_id", "event_id"],
        on_conflict="nothing",
        returning=[_plain.c.account_id, _plain.c.event_id],
    )
    return len(inserted)


def claim_partitioned(connection: Connection, keys: list[tuple[str, str]], now: datetime) -> int:
    return len(idempotency.claim(connection, dict.fromkeys(keys, now), now))


@contextmanager
def database(name: str) -> Iterator[str]:
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


_RETENTION_INDEX = {
    "plain": ("ix_processed_events_processed_at", "processed_events"),
    # Since migration 0014, only the DEFAULT partition indexes processed_at.
    "partitioned": ("ix_processed_events_default_processed_at", idempotency.DEFAULT_PARTITION),
}
"""Each design's index on processed_at (retention's order): the index, and the table it is on."""


def load(engine: Engine, design: str, rows: int, today: datetime) -> float:
    """N records of events that occurred over the 30 days before `today`; returns seconds."""
    started = time.monotonic()
    with engine.begin() as connection:
        if design == "partitioned":
            first = today - timedelta(days=DAYS)
            idempotency.maintain(connection, first, first - timedelta(days=1), ahead=DAYS + 3)
        connection.execute(text(f"DROP INDEX {_RETENTION_INDEX[design][0]}"))
        connection.execute(
            text("ALTER TABLE processed_events DROP CONSTRAINT processed_events_pkey")
        )
    processed = f"now() - make_interval(days => i % {DAYS} + 1, secs => i % 86400)"
    columns = "account_id, event_id, processed_at"
    select = f"'acct-' || (i % {ACCOUNTS}), md5(i::text), {processed}"
    if design == "partitioned":
        columns = "account_id, event_id, occurred_on, processed_at"
        select = (
            f"'acct-' || (i % {ACCOUNTS}), md5(i::text), "
            f"(({processed}) AT TIME ZONE 'UTC')::date, {processed}"
        )
    key = "account_id, event_id" + (", occurred_on" if design == "partitioned" else "")
    with engine.begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO processed_events ({columns}) "
                f"SELECT {select} FROM generate_series(1, :n) AS i"
            ),
            {"n": rows},
        )
        connection.execute(
            text(
                "ALTER TABLE processed_events "
                f"ADD CONSTRAINT processed_events_pkey PRIMARY KEY ({key})"
            )
        )
        index, indexed = _RETENTION_INDEX[design]
        connection.execute(text(f"CREATE INDEX {index} ON {indexed} (processed_at)"))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE processed_events"))
        connection.execute(text("CHECKPOINT"))
    return time.monotonic() - started


def rates(empty: Engine, loaded: Engine, claim: Claim, batches: int) -> tuple[float, float]:
    """New event ids claimed per second on each store, in batches of 500 taken in turn, one on
    the empty store then one on the loaded store (10 untimed pairs first): on a shared machine
    a burst of load then falls on both alike."""

    def one_batch(engine: Engine) -> float:
        keys = [(f"acct-{n % ACCOUNTS}", uuid.uuid4().hex) for n in range(BATCH)]
        started = time.perf_counter()
        with engine.begin() as connection:
            assert claim(connection, keys, datetime.now(UTC)) == BATCH
        return time.perf_counter() - started

    for _ in range(10):
        one_batch(empty), one_batch(loaded)
    on_empty = on_loaded = 0.0
    for _ in range(batches):
        on_empty += one_batch(empty)
        on_loaded += one_batch(loaded)
    return batches * BATCH / on_empty, batches * BATCH / on_loaded


def run_design(design: str, rows: int, batches: int, rounds: int) -> dict[str, float]:
    suffix = os.environ.get("BENCH_PART_SUFFIX", "")
    claim: Claim = claim_partitioned if design == "partitioned" else claim_plain
    revision = "head" if design == "partitioned" else "0009"
    today = datetime.now(UTC)
    with (
        database(f"convlife_part_{design}_empty{suffix}") as empty_url,
        database(f"convlife_part_{design}_loaded{suffix}") as loaded_url,
    ):
        for url in (empty_url, loaded_url):
            command.upgrade(alembic_config(url), revision)
        empty, loaded = make_engine(empty_url), make_engine(loaded_url)
        seconds = load(loaded, design, rows, today)
        print(f"{design}: loaded {rows:,} rows in {seconds:.0f} s", flush=True)
        on_empty, on_loaded = [], []
        for n in range(rounds):
            rate_empty, rate_loaded = rates(empty, loaded, claim, batches)
            on_empty.append(rate_empty)
            on_loaded.append(rate_loaded)
            print(
                f"  round {n + 1}: empty {on_empty[-1]:,.0f}/s, "
                f"{rows:,} rows {on_loaded[-1]:,.0f}/s",
                flush=True,
            )
        empty.dispose()
        loaded.dispose()
    result = {"empty": statistics.median(on_empty), "loaded": statistics.median(on_loaded)}
    result["ratio"] = result["loaded"] / result["empty"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--design", choices=["partitioned", "plain", "both"], default="both")
    parser.add_argument("--batches", type=int, default=200, help="timed batches per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    designs = ["plain", "partitioned"] if args.design == "both" else [args.design]
    results = {d: run_design(d, args.rows, args.batches, args.rounds) for d in designs}
    print(f"\nclaim of {BATCH} new event ids per transaction, median of {args.rounds} rounds")
    print(f"{'design':<12} {'empty /s':>10} {f'{args.rows:,} rows /s':>16} {'ratio':>6}")
    for design, r in results.items():
        print(f"{design:<12} {r['empty']:>10,.0f} {r['loaded']:>16,.0f} {r['ratio']:>6.2f}")


if __name__ == "__main__":
    main()
