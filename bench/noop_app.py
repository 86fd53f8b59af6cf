"""Baseline: plain Celery, one task message per event, the task does nothing but count."""

from __future__ import annotations

import os

from celery import Celery
from redis import Redis

BROKER = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
COUNTER = "bench:noop:done"

app = Celery("bench_noop", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    worker_prefetch_multiplier=4,
    task_default_queue="bench.noop",
    worker_hijack_root_logger=False,
)
_redis: Redis | None = None


@app.task(name="bench.noop")
def noop(event: object) -> None:
    global _redis
    if _redis is None:
        _redis = Redis.from_url(BROKER)
    _redis.incr(COUNTER)
