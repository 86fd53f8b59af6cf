"""`python -m bench.one_event_messages [--messages N] [--rate R]`: what a message of ONE event
costs the ingest worker, as a platform that sends each event alone makes it pay (the gateway's
Chatwoot webhooks are one event each; so are the burst's other accounts in `python -m bench`).

N `contact.inbound` events, each its own message, at a fixed R messages a second (so the
worker is never saturated and the figure is cost, not queueing), into a default `convlife
worker -Q convlife.events` on a fresh PostgreSQL database. Measured: the CPU time of the
worker's whole process tree (Celery's main process and its pool) per message, from /proc.
Baseline in the same run: the same N messages at the same rate to a plain Celery no-op task
(bench/noop_app.py, same broker, 2 processes), its tree's CPU per message likewise. The ratio
of the two is the figure to compare between runs on a noisy machine; the absolute CPU moves
with the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from redis import Redis

from bench.harness import REDIS_URL, convlife, staged, wait_until
from bench.workloads import convlife_env, start_noop_worker
from events.names import METRICS_EVENTS_KEY
from events.publish import Publisher

_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU of every live process in `process`'s group (Stage.start gives each
    started process a group of its own: a Celery worker and its pool)."""
    ticks = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == process.pid:  # the process group
            ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICKS


def paced(n: int, rate: float, send: Callable[[int], object]) -> None:
    """Call `send(i)` n times at `rate` a second."""
    started = time.monotonic()
    for i in range(n):
        send(i)
        time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))


def convlife_per_message(stage_dir: Path, n: int, rate: float) -> float:
    with staged(stage_dir) as stage:
        url = stage.fresh_postgres()
        redis = stage.fresh_redis()
        worker = stage.start(convlife("worker", "-Q", "convlife.events"), convlife_env(url), "w")
        time.sleep(2)
        before = group_cpu_seconds(worker)
        now = datetime.now(UTC).isoformat()
        with Publisher(REDIS_URL, batch_size=1) as publisher:

            def send(i: int) -> None:
                publisher.publish(
                    {
                        "event_id": f"one-{i}",
                        "type": "contact.inbound",
                        "account_id": f"a{i % 5}",
                        "occurred_at": now,
                        "contact_id": f"k{i}",
                        "line_id": "l1",
                    }
                )
                publisher.flush()

            paced(n, rate, send)

        def applied() -> int:
            return sum(int(v) for v in redis.hvals(METRICS_EVENTS_KEY))

        wait_until(lambda: applied() >= n, 120, f"{n} one-event messages applied")
        spent = group_cpu_seconds(worker) - before
        stage.stop_all()
        stage.drop_postgres()
        return spent / n


def noop_per_message(stage_dir: Path, n: int, rate: float) -> float:
    from bench.noop_app import COUNTER, app

    with staged(stage_dir) as stage:
        redis: Redis = stage.fresh_redis()
        worker = start_noop_worker(stage)
        before = group_cpu_seconds(worker)
        with app.producer_or_acquire() as producer:
            paced(
                n,
                rate,
                lambda i: app.send_task("bench.noop", args=[{"i": i}], producer=producer),
            )
        wait_until(lambda: int(redis.get(COUNTER) or 0) >= n, 120, "no-op tasks", every=0.1)
        spent = group_cpu_seconds(worker) - before
        stage.stop_all()
        return spent / n


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.one_event_messages")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="messages a second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        noop = noop_per_message(Path(workdir), args.messages, args.rate)
        ours = convlife_per_message(Path(workdir), args.messages, args.rate)
    print(
        f"{args.messages:,} messages of one event at {args.rate:g}/s, worker process tree CPU "
        f"per message: convlife ingest (contact.inbound -> contact.routed, PostgreSQL) "
        f"{ours * 1000:.2f} ms; Celery no-op task {noop * 1000:.2f} ms; ratio {ours / noop:.1f}x"
    )


if __name__ == "__main__":
    main()
