"""`python -m bench.profile_route [--inbound K] [--store sqlite] [--batch B]`: where a routed
`contact.inbound` spends its time, in one process, without Celery, against a fresh PostgreSQL (or
SQLite) database: K inbound events in messages of B (default 500; `--batch 1` is a platform
that sends each event alone, as the gateway's Chatwoot webhooks do) through the worker's ingest
handler (service/deliveries.py `handle`: service/ingest.py `ingest`, then the relay of its
decisions to the stream and its counters).

The contacts' state is preloaded through the same handler, untimed, as in `python -m bench all`:
a third with a conversation an agent closed with a reason inside the window (previous_agent), a
third new (line_owner), a third with an open conversation. Prints SQL statement by statement,
Python by function (cProfile) and the headline "Python CPU per routed inbound";
bench/profiling.py says how Python is told apart from the database.
"""

from __future__ import annotations

import argparse
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.default_run import ACCOUNTS, BATCH, preload_events
from bench.profiling import (
    STORE_NAMES,
    add_store_option,
    profiled_runtime,
    report,
    timed,
    under_cprofile,
)
from service import deliveries
from service.runtime import Runtime


def handle_all(
    runtime: Runtime, events: list[dict[str, Any]], routes: Counter[str], batch: int = BATCH
) -> int:
    """Every message of `batch` events through the handler; returns the decisions relayed."""
    made = 0
    for start in range(0, len(events), batch):
        outcome = deliveries.handle(events[start : start + batch], runtime, datetime.now(UTC))
        if not isinstance(outcome, deliveries.Applied):
            raise RuntimeError(f"a batch was not applied: {outcome}")
        for decision in outcome.result.decisions:
            routes[str(getattr(decision, "route", decision.type))] += 1
        made += len(outcome.result.decisions)
    return made


def inbound(run: str, label: str, contacts: int, n: int, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{run}-{label}-{j}",
            "type": "contact.inbound",
            "account_id": f"{run}-a{(j % contacts) % ACCOUNTS}",
            "occurred_at": (now + timedelta(microseconds=j)).isoformat(),
            "contact_id": f"k{j % contacts}",
            "line_id": "l1",
        }
        for j in range(n)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_route")
    parser.add_argument("--inbound", type=int, default=20_000, help="K, per pass")
    parser.add_argument("--batch", type=int, default=BATCH, help="events per message")
    add_store_option(parser)
    args = parser.parse_args()
    n, batch = args.inbound, args.batch
    with profiled_runtime("convlife_bench_profile_route", args.store) as (runtime, clock, _stage):
        now = datetime.now(UTC)
        preload = preload_events("prof", n, now)
        handle_all(runtime, preload, Counter())
        handle_all(runtime, inbound("prof", "warm", n, BATCH * 2, now), Counter(), batch)
        routes: Counter[str] = Counter()
        clock.reset()
        measured = timed(
            lambda: handle_all(runtime, inbound("prof", "timed", n, n, now), routes, batch)
        )
        sql = (dict(clock.calls), dict(clock.wall), dict(clock.cpu))
        items, stats = under_cprofile(
            lambda: handle_all(runtime, inbound("prof", "profiled", n, n, now), Counter(), batch)
        )
        clock.calls, clock.wall, clock.cpu = sql
        print(
            f"{STORE_NAMES[args.store]}, {n:,} contact.inbound per pass in messages of {batch} "
            f"(deliveries.handle: ingest + relay); routes: {dict(routes)}"
        )
        report("routed inbound", measured, clock, stats, items)


if __name__ == "__main__":
    main()
