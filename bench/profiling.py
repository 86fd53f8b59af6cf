"""What `python -m bench.profile_close` and `bench.profile_route` share: a fresh PostgreSQL (or,
with `--store sqlite`, SQLite) runtime, SQL timed statement by statement, CPU split into Python
and database waiting, and a cProfile table per item.

How Python CPU is separated from the database: every cursor execute is wrapped by SQLAlchemy's
`before/after_cursor_execute` events, which read both the wall clock (`perf_counter`) and this
process's CPU clock (`process_time`). Wall time inside those windows is the database round trip;
CPU inside them is the driver's own work (psycopg sending the query, libpq receiving the rows),
and the rest of the window is waiting. Python CPU per item = process CPU over the pass - CPU
inside cursor executes, divided by the items. Time blocked on Redis is not CPU either (the
process sleeps in a syscall), so it is not counted; the Redis client's own Python is. The timed
pass runs without cProfile (its overhead would inflate the figure); a second pass of the same
size runs under cProfile, on the CPU clock, for the table by function (its figures include the
profiler's overhead, so they add up to more than the headline). COMMIT is timed around the
dialect's commit, as it is no cursor execute.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import logging
import os
import pstats
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.harness import REDIS_URL, Stage
from service import logs
from service.runtime import Runtime
from service.settings import Settings
from worker.collector import settle_for_a_long_run


@dataclass
class SqlClock:
    """Statement by statement: calls, wall seconds and CPU seconds inside cursor executes."""

    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    wall: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def attach(self, engine: Engine) -> None:
        @event.listens_for(engine, "before_cursor_execute")
        def _before(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            conn.info["bench_t0"] = (time.perf_counter(), time.process_time())

        @event.listens_for(engine, "after_cursor_execute")
        def _after(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
            wall0, cpu0 = conn.info.pop("bench_t0")
            words = re.sub(r"\s+", " ", statement.strip())[:90]
            self.calls[words] += 1
            self.wall[words] += time.perf_counter() - wall0
            self.cpu[words] += time.process_time() - cpu0

        # COMMIT is not a cursor execute: time the dialect's commit the same way.
        commit = engine.dialect.do_commit

        def timed_commit(dbapi_connection: Any) -> None:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            commit(dbapi_connection)
            self.calls["COMMIT"] += 1
            self.wall["COMMIT"] += time.perf_counter() - wall0
            self.cpu["COMMIT"] += time.process_time() - cpu0

        engine.dialect.do_commit = timed_commit  # type: ignore[method-assign]

    def reset(self) -> None:
        self.calls.clear()
        self.wall.clear()
        self.cpu.clear()


@contextmanager
def profiled_runtime(
    pg_name: str, store: str = "postgresql"
) -> Iterator[tuple[Runtime, SqlClock, Stage]]:
    """A Runtime on a fresh database (`store`: "postgresql", dropped after, or "sqlite", a file
    in a temporary directory), with its SQL timed and the service's log lines formatted as the
    worker does at INFO, written to /dev/null, and the garbage collector set as a worker sets it
    before it forks (worker/collector.py), so that Python's figures are the worker's."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as workdir:
        # BENCH_PROFILE_SUFFIX keeps profiles run side by side (two worktrees) apart.
        stage = Stage(Path(workdir), pg_name=pg_name + os.environ.get("BENCH_PROFILE_SUFFIX", ""))
        url = stage.fresh_sqlite() if store == "sqlite" else stage.fresh_postgres()
        settings = Settings(database_url=url, broker_url=REDIS_URL)
        collecting = gc.get_threshold()
        logs.configure(settings.log_level, settings.log_format)
        with open(os.devnull, "w") as devnull:
            for handler in logging.getLogger().handlers:
                if isinstance(handler, logging.StreamHandler):
                    handler.setStream(devnull)
            runtime = Runtime.build(settings)
            settle_for_a_long_run()
            clock = SqlClock()
            clock.attach(runtime.engine)
            try:
                yield runtime, clock, stage
            finally:
                gc.unfreeze()
                gc.set_threshold(*collecting)
                runtime.close()
                if store != "sqlite":
                    stage.drop_postgres()


@dataclass
class Pass:
    items: int
    wall: float
    cpu: float


def timed(work: Callable[[], int]) -> Pass:
    """Run `work` (returns how many items it did), timing wall and process CPU."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    items = work()
    return Pass(items, time.perf_counter() - wall0, time.process_time() - cpu0)


def under_cprofile(work: Callable[[], int]) -> tuple[int, pstats.Stats]:
    # The CPU clock, not the wall clock: time blocked on a socket is no function's cost here.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    items = work()
    profile.disable()
    stats = pstats.Stats(profile)
    if dump := os.environ.get("BENCH_PROFILE_DUMP"):
        stats.dump_stats(dump)  # for `python -m pstats` or snakeviz: callers, cumulative times
    return items, stats


STORE_NAMES = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}


def add_store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="the database profiled (default: postgresql)",
    )


def report(what: str, measured: Pass, clock: SqlClock, stats: pstats.Stats, items: int) -> None:
    """Print the statement table, the per-function table and the headline."""
    n = max(measured.items, 1)
    sql_wall, sql_cpu = sum(clock.wall.values()), sum(clock.cpu.values())
    python = measured.cpu - sql_cpu
    print(
        f"\n{what}: {measured.items:,} in {measured.wall:.2f} s wall ({n / measured.wall:,.0f}/s)"
    )
    waiting = measured.wall - measured.cpu
    print(
        f"  per item: wall {measured.wall / n * 1e6:,.0f} µs = process CPU "
        f"{measured.cpu / n * 1e6:,.0f} µs + waiting {waiting / n * 1e6:,.0f} µs; "
        f"of the CPU, {sql_cpu / n * 1e6:,.0f} µs inside cursor executes (driver)"
    )
    print(
        f"  SQL round trips {sql_wall / n * 1e6:,.0f} µs per item "
        f"({sql_wall - sql_cpu:.2f} s waiting on the database over the pass)"
    )
    print("\nSQL, statement by statement (timed pass, no profiler):")
    print(f"  {'calls':>7} {'total ms':>9} {'µs/item':>8} {'of it CPU':>9}  statement")
    for words, seconds in sorted(clock.wall.items(), key=lambda item: -item[1]):
        print(
            f"  {clock.calls[words]:7,} {seconds * 1000:9.1f} {seconds / n * 1e6:8.1f} "
            f"{clock.cpu[words] / n * 1e6:9.1f}  {words}"
        )
    print(f"\nPython by function, top 25 by tottime (cProfile pass of {items:,} items, µs/item):")
    rows = sorted(
        stats.stats.items(),  # type: ignore[attr-defined]
        key=lambda item: -item[1][2],
    )[:25]
    print(f"  {'calls/item':>10} {'tottime':>8} {'cumtime':>8}  function")
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in rows:
        where = _short(filename)
        print(
            f"  {calls / items:10.2f} {tottime / items * 1e6:8.1f} {cumtime / items * 1e6:8.1f}"
            f"  {name} ({where}:{line})"
        )
    print(f"\nPython CPU per {what}: {python / n * 1e6:,.0f} µs")
    print(
        f"(process CPU {measured.cpu / n * 1e6:,.0f} µs minus {sql_cpu / n * 1e6:,.0f} µs the "
        "driver spent inside database round trips; waiting is not CPU. A shared, noisy "
        "machine: expect ±30% between runs)"
    )


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    cwd = os.getcwd() + "/"
    return filename.removeprefix(cwd)
