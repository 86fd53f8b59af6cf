"""Planner statistics for a fresh deployment's tables, taken as soon as they hold rows.

store/statistics.py says why: before its first ANALYZE, PostgreSQL planned ingest's lookup of a
batch's conversations by primary key as a read of the whole account per key. Autovacuum takes
statistics a minute or more after a table starts filling; a newcomer's first batches, or an
import, should not wait for it. Each process looks after its ingest (at most every
`LOOK_EVERY` seconds), and stops looking for good once every table has statistics: a plain
attribute test after that.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from service.failures import first_line
from store.statistics import analyze, young_tables

log = logging.getLogger("convlife.statistics")

KEYED_TABLES = ("conversations",)
"""The tables ingest looks rows up in by key (store/conversations.py `lock`)."""

LOOK_EVERY = 2.0
"""Seconds between two looks of one process while a table has no statistics."""


class FirstStatistics:
    """One process's watch for tables that hold rows but no statistics yet."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.settled = False
        self._next_look = float("-inf")

    def after_ingest(self, engine: Engine) -> None:
        """Take the statistics of a table that has rows but none yet. Never raises: ingest's
        work is committed, and the next look tries again."""
        now = self.clock()
        if self.settled or now < self._next_look:
            return
        self._next_look = now + LOOK_EVERY
        if engine.dialect.name != "postgresql":
            self.settled = True
            return
        try:
            with engine.begin() as connection:
                young = young_tables(connection, KEYED_TABLES)
                if young.waiting:
                    analyze(connection, young.waiting)
                    log.info("planner statistics taken of %s", ", ".join(young.waiting))
        except SQLAlchemyError as error:
            log.warning("planner statistics not taken: %s", first_line(error))
            return
        self.settled = young.settled
