"""`python -m bench.profile_close [--closes K] [--store sqlite] [--at-once]`: where an
auto-close spends its time, in one process, without Celery, against a fresh PostgreSQL (or
SQLite) database: K due conversations closed by the sweep the worker runs (service/deadlines.py
`sweep`: `close_due` batch after batch, then the relay of each batch's decisions to the stream,
its counters and log lines).

By default each conversation is due by its stored deadline. `--at-once` makes them due as the
benchmark's burst does: open with a ten-year setting, then the account's setting shortened to a
day (`deadlines.reschedule_account`, untimed), so on PostgreSQL the sweep closes them through the
account's due scan.

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
from policies.state import AccountSettings
from service import deadlines
from service.runtime import Runtime
from store.tables import accounts, conversations

CLOSE_AFTER = timedelta(days=1)
TEN_YEARS = timedelta(days=3650)


def load_due(runtime: Runtime, account: str, n: int, *, at_once: bool = False) -> None:
    """n open conversations of a new account, all due a minute ago (bulk insert, untimed);
    `at_once`: made due by a settings change (see the module's doc)."""
    now = datetime.now(UTC)
    stored_setting = TEN_YEARS if at_once else CLOSE_AFTER
    with runtime.engine.begin() as connection:
        connection.execute(
            accounts.insert().values(
                account_id=account,
                inactivity_close_after=stored_setting,
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
                "close_due_at": now
                - timedelta(minutes=1, microseconds=i)
                + (stored_setting - CLOSE_AFTER),
            }
            for i in range(n)
        ]
        for start in range(0, n, 20_000):
            connection.execute(conversations.insert(), rows[start : start + 20_000])
    with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE conversations"))
    if at_once:
        with runtime.engine.begin() as connection:
            connection.execute(
                accounts.update()
                .where(accounts.c.account_id == account)
                .values(inactivity_close_after=CLOSE_AFTER, updated_at=now)
            )
            deadlines.reschedule_account(
                connection, account, AccountSettings(inactivity_close_after=CLOSE_AFTER), now
            )


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
    parser.add_argument(
        "--at-once", action="store_true", help="made due by a settings change, as in the burst"
    )
    add_store_option(parser)
    args = parser.parse_args()
    with profiled_runtime("convlife_bench_profile_close", args.store) as (runtime, clock, _stage):
        load_due(runtime, "warm", 1_000, at_once=args.at_once)
        close_all(runtime)  # compiles and caches statements, fills the pool
        load_due(runtime, "timed", args.closes, at_once=args.at_once)
        clock.reset()
        measured = timed(lambda: close_all(runtime))
        sql = (dict(clock.calls), dict(clock.wall), dict(clock.cpu))
        load_due(runtime, "profiled", args.closes, at_once=args.at_once)
        items, stats = under_cprofile(lambda: close_all(runtime))
        clock.calls, clock.wall, clock.cpu = sql
        print(
            f"{STORE_NAMES[args.store]}, {args.closes:,} auto-closes per pass, sweep batch "
            f"{runtime.settings.sweep_batch_size} (deadlines.sweep: close_due + relay)"
            + (", made due at once by a settings change" if args.at_once else "")
        )
        report("auto-close", measured, clock, stats, items)


if __name__ == "__main__":
    main()
