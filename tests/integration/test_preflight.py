"""A process refuses a broker that could evict its queues (its own redis-server, own port)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import RedisServer, run_convlife


@pytest.fixture
def evicting_redis(tmp_path: Path) -> Iterator[str]:
    """A private redis-server with maxmemory-policy allkeys-lru, stopped afterwards."""
    server = RedisServer(tmp_path, "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru")
    server.start()
    yield server.url
    server.stop()


@pytest.mark.parametrize("command", ["worker", "beat", "run"])
def test_a_process_refuses_to_start_on_a_redis_that_can_evict_queues(
    command: str, evicting_redis: str, tmp_path: Path
) -> None:
    done = run_convlife(
        [command],
        {
            "CONVLIFE_BROKER_URL": evicting_redis,
            "CONVLIFE_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}",
        },
    )

    assert done.returncode == 2
    assert "maxmemory-policy 'allkeys-lru'" in done.stderr
    assert "noeviction" in done.stderr
