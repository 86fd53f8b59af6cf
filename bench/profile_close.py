"""`python -m bench.profile_close [--closes K] [--store sqlite]`: where an auto-close spends its
time, in one process, without Celery, against a fresh PostgreSQL (or SQLite) database: K due
conversations closed by the sweep the worker runs (service/deadlines.py `sweep`: `close_due`
batch after batch, then the relay of each batch's decisions to the stream, its counters and log
lines).

Prints SQL statement by statement, Python by function (cProfile) and the headline "Python CPU
per auto-close"; bench/profiling.py says how Python is told apart from the database.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench.profiling import (
    STORE_NAMES,
    add_store_option,
    profiled_runtime,
    report,
    timed,
    under_cprofile,
)
from service import deadlines
from service.runtime import Runtime
from store.tables import accounts, conversations

CLOSE_AFTER = timedelta(days=1)


def load_due(runtime: Runtime, account: str, n: int) -> None:
    """n open conversations of a new account, all due a minute ago (bulk insert, untimed)."""
    now = datetime.now(UTC)
    with runtime.engine.begin() as connection:
        connection.execute(
            accounts.insert().values(
                account_id=account,
                inactivity_close_after=CLOSE_AFTER,
                bot_enabled=False,
                updated_at=now - timedelta(days=3),
            )
        )
        rows = [
            {
                "account_id": account,
                "conversation_id": f"c{i}",
                "contact_id": f"k{i}",
                "line_id": "l1",
                "status": "open",
                "last_activity_at": now - CLOSE_AFTER - timedelta(minutes=1, microseconds=i),
                "assignee_agent_id": f"agent{i % 7}",
                "assignee_bot": False,
                "close_due_at": now - timedelta(minutes=1, microseconds=i),
            }
            for i in range(n)
        ]
        for start in range(0, n, 20_000):
            connection.execute(conversations.insert(), rows[start : start + 20_000])
    with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE conversations"))


def close_all(runtime: Runtime) -> int:
    """Sweep until nothing is due; returns the conversations closed."""
    closed = 0
    while True:
        done = deadlines.sweep(runtime, lambda: datetime.now(UTC))
        if not done:
            return closed
        closed += done


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_close")
    parser.add_argument("--closes", type=int, default=20_000, help="K, per pass")
    add_store_option(parser)
    args = parser.parse_args()
    with profiled_runtime("convlife_bench_profile_close", args.store) as (runtime, clock, _stage):
        load_due(runtime, "warm", 1_000)
        close_all(runtime)  # compiles and caches statements, fills the pool
        load_due(runtime, "timed", args.closes)
        clock.reset()
        measured = timed(lambda: close_all(runtime))
        sql = (dict(clock.calls), dict(clock.wall), dict(clock.cpu))
        load_due(runtime, "profiled", args.closes)
        items, stats = under_cprofile(lambda: close_all(runtime))
        clock.calls, clock.wall, clock.cpu = sql
        print(
            f"{STORE_NAMES[args.store]}, {args.closes:,} auto-closes per pass, sweep batch "
            f"{runtime.settings.sweep_batch_size} (deadlines.sweep: close_due + relay)"
        )
        report("auto-close", measured, clock, stats, items)


if __name__ == "__main__":
    main()
