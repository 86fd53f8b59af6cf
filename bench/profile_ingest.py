"""`python -m bench.profile_ingest [--store postgresql|sqlite] [--events N]`: where an ingest
batch spends its time, in one process, without Celery: handler time per batch split into SQL
statements (by their first words) and Python, plus the outbox relay. Used to find the next cost
to cut; the throughput figures themselves come from `python -m bench all`.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.harness import REDIS_URL, Stage
from bench.workloads import event_stream
from service import ingest
from service.runtime import Runtime
from service.settings import Settings
from store import outbox


def _batches(events: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), size):
        yield events[start : start + size]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_ingest")
    parser.add_argument("--store", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as workdir:
        stage = Stage(Path(workdir), pg_name="convlife_bench_profile")
        url = stage.fresh_postgres() if args.store == "postgresql" else stage.fresh_sqlite()
        settings = Settings(database_url=url, broker_url=REDIS_URL)  # type: ignore[arg-type]
        runtime = Runtime.build(settings)
        sql_seconds: dict[str, float] = defaultdict(float)
        sql_calls: dict[str, int] = defaultdict(int)

        @event.listens_for(runtime.engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            conn.info["t0"] = time.perf_counter()

        @event.listens_for(runtime.engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            words = re.sub(r"\s+", " ", statement.strip())[:60]
            sql_seconds[words] += time.perf_counter() - conn.info["t0"]
            sql_calls[words] += 1

        events = event_stream(args.events, "prof", datetime.now(UTC) - timedelta(minutes=5))
        handler = relay = 0.0
        for batch in _batches(events, args.batch):
            started = time.perf_counter()
            result = ingest.ingest(batch, runtime, datetime.now(UTC))
            handled = time.perf_counter()
            if result.decisions:
                outbox.relay(runtime.engine, runtime.redis, datetime.now(UTC))
            handler += handled - started
            relay += time.perf_counter() - handled
        runtime.close()
        if args.store == "postgresql":
            stage.drop_postgres()

    batches = -(-args.events // args.batch)
    sql_total = sum(sql_seconds.values())
    print(f"{args.store}: {args.events} events in batches of {args.batch}")
    print(
        f"handler {args.events / handler:,.0f} events/s ({handler / batches * 1000:.1f} ms/batch); "
        f"with relay {args.events / (handler + relay):,.0f} events/s"
    )
    print(f"SQL {sql_total / batches * 1000:.1f} ms/batch (relay included), by statement:")
    for words, seconds in sorted(sql_seconds.items(), key=lambda item: -item[1])[:15]:
        print(f"  {seconds / batches * 1000:6.2f} ms  {sql_calls[words] / batches:5.1f}x  {words}")


if __name__ == "__main__":
    main()
