"""What the handlers need at run time (engine, Redis, settings), built lazily in each process.

Nothing connects at import time or in the parent of a prefork pool: the first task a child
runs builds its own engine and Redis client.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from redis import Redis
from sqlalchemy.engine import Engine

from service.settings import Settings
from service.statistics import FirstStatistics
from store.db import make_engine


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    redis: Redis
    first_statistics: FirstStatistics = field(default_factory=FirstStatistics)
    """This process's look for tables that hold rows but no planner statistics yet."""

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(
            settings=settings,
            engine=make_engine(
                settings.database_url.get_secret_value(),
                pool_size=settings.database_pool_size,
                pool_timeout=settings.database_pool_timeout,
            ),
            redis=Redis.from_url(settings.streams_redis_url, health_check_interval=30),
        )

    def close(self) -> None:
        self.engine.dispose()
        self.redis.close()


class LazyRuntime:
    """One Runtime per process, built on first use and rebuilt after a fork."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._runtime: Runtime | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def get(self) -> Runtime:
        with self._lock:
            if self._runtime is None or self._pid != os.getpid():
                self._runtime = Runtime.build(self.settings)
                self._pid = os.getpid()
            return self._runtime
