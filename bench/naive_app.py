"""Baseline: the naive design, one countdown (ETA) task per activity, held until due."""

from __future__ import annotations

import os

from celery import Celery

BROKER = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
SEVEN_DAYS = 7 * 24 * 3600

app = Celery("bench_naive", broker=BROKER)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_ignore_result=True,
    task_default_queue="bench.naive",
    worker_hijack_root_logger=False,
    broker_transport_options={"visibility_timeout": 10 * SEVEN_DAYS},
)


@app.task(name="bench.close_check")
def close_check(conversation_id: str) -> None:
    """Would re-read the conversation and close it; never runs within the benchmark."""
