"""The garbage collector of a worker process, set for a long run of large batches.

CPython's cyclic collector starts a young collection every 700 net new container objects, and
every hundredth collection walks every object the process holds. A batch of 500 routed events
makes tens of thousands of objects (events, rows, states, decisions) that live until the batch is
done, so the young collections came every few events and kept promoting the batch's objects,
and the full ones walked the 110,000-130,000 objects that Celery, SQLAlchemy and pydantic leave
from start-up, each time. In one process, 40,000 routed inbound in messages of 500 (the handler
`bench.profile_route` times, with `gc.callbacks` timing each collection): the collector took
7.5 µs an event, a tenth of the handler's CPU (four full collections alone 0.2 s); with
start-up's objects frozen and a young threshold of 5,000 or 20,000, 0.03 µs, and the handler's
CPU fell from 72 to 61 µs an event. In the default `convlife run` (PostgreSQL, 100,000 routed
inbound), each pool process spent 0.35-0.57 s in collections before, next to none after.

Freezing happens in the worker's main process just before it forks its pool (Celery's
`worker_init`), as Python's documentation of `gc.freeze` advises: the children inherit both
settings, never walk start-up's objects again, and so never write to the pages that hold them,
which they would otherwise copy (less memory per child). Only what start-up made is frozen: it
is never collected, and it was never garbage anyway.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("convlife.worker")

YOUNG_THRESHOLD = 10_000
"""Net new container objects between young collections (CPython's default: 700). A batch's
garbage cycles wait at most this many objects longer to be freed: kilobytes."""


def settle_for_a_long_run() -> None:
    """Freeze what exists now and space the young collections (see the module docstring)."""
    gc.collect()  # what start-up already dropped is freed, not frozen
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
    log.info(
        "garbage collector: %d objects of start-up frozen, a young collection every %d new objects",
        gc.get_freeze_count(),
        YOUNG_THRESHOLD,
    )
