"""`python -m bench.preview [--conversations N]`: `settings preview` on an account with N open
conversations (default 1,000,000), beside the naive way (read every open conversation and
compute its deadline in Python), measured in one run. Target (issue 13): under 2 s at 1,000,000.

Uses a PostgreSQL database of its own (`convlife_bench_preview`), dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, select

from bench.harness import staged
from bench.workloads import load_open_conversations
from events.business_hours import BusinessHours
from policies.calendar import deadline
from policies.preview import HORIZONS
from policies.state import AccountSettings, Status
from service.preview import preview
from store.tables import conversations

ACCOUNT = "preview-bench"
OFFICE = BusinessHours.model_validate(
    {
        "timezone": "America/Sao_Paulo",
        "weekly": {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    }
)


def timed(action: Callable[[], object], runs: int = 3) -> tuple[float, object]:
    seconds = []
    result: object = None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def naive(database_url: str, close_after: timedelta, calendar: BusinessHours | None) -> list[int]:
    """Every open conversation read, each deadline computed in Python: what the index avoids."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    ends = [now + ahead for _, ahead in HORIZONS]
    counts = [0] * len(ends)
    with engine.connect() as connection:
        rows = connection.execution_options(yield_per=50_000).execute(
            select(conversations.c.last_activity_at).where(
                conversations.c.account_id == ACCOUNT,
                conversations.c.status == Status.OPEN.value,
            )
        )
        for (last,) in rows:
            due = deadline(last, close_after, calendar)
            for number, end in enumerate(ends):
                if due is not None and due <= end:
                    counts[number] += 1
    engine.dispose()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.preview")
    parser.add_argument("--conversations", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("BENCH_POSTGRES_DB", "convlife_bench_preview")
    with tempfile.TemporaryDirectory() as workdir, staged(Path(workdir)) as stage:
        try:
            url = stage.fresh_postgres()
            print(f"[bench.preview] loading {args.conversations:,} open conversations", flush=True)
            load_open_conversations(url, ACCOUNT, args.conversations, 0, 1, timedelta(days=7))
            engine = create_engine(url)
            print("| preview of | convlife preview (s) | naive Python scan (s) | ratio |")
            print("| --- | --- | --- | --- |")
            # Activity is 6d 13h to 6d 23h old: each change closes some at once, some later.
            plain = ("close after 6d 18h", timedelta(days=6, hours=18), None)
            office = ("close after 40 business hours", timedelta(hours=40), OFFICE)
            for label, change, hours in (plain, office):
                fields = {"inactivity_close_after": change, "business_hours": hours}
                fast, shown = timed(
                    lambda fields=fields: preview(
                        engine, ACCOUNT, fields, datetime.now(UTC), AccountSettings()
                    )
                )
                slow, _ = timed(
                    lambda change=change, hours=hours: naive(url, change, hours), runs=1
                )
                print(f"| {label} | {fast:.3f} | {slow:.2f} | {slow / fast:.0f}x |", flush=True)
                print(f"|   counts | {getattr(shown, 'closes', None)} | | |")
            engine.dispose()
        finally:
            stage.drop_postgres()


if __name__ == "__main__":
    main()
