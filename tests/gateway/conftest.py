"""A gateway whose broker is a redis-server of the module's own, so every message it enqueues
can be counted exactly (no worker consumes them), and a SQLite store migrated for the reads."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from events.names import EVENTS_QUEUE
from store import migrate
from tests.gateway.support import GatewayProcess
from tests.processes import RedisServer


class Broker:
    def __init__(self, server: RedisServer) -> None:
        self.server = server
        self.url = server.url
        self.redis = Redis.from_url(server.url)

    def queued_messages(self) -> int:
        """Ingest messages waiting on `convlife.events` (kombu keeps them in a Redis list)."""
        return int(self.redis.llen(EVENTS_QUEUE))

    def queued_batches(self) -> list[list[object]]:
        """The event lists of the waiting ingest messages, oldest first (without consuming)."""
        batches = []
        for raw in reversed(self.redis.lrange(EVENTS_QUEUE, 0, -1)):
            message = json.loads(raw)
            args = json.loads(base64.b64decode(message["body"]))[0]
            batches.append(args[0])
        return batches


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    server = RedisServer(tmp_path_factory.mktemp("gateway-redis"))
    server.start()
    try:
        yield Broker(server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('gateway-store') / 'convlife.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(scope="module")
def gateway(
    broker: Broker, sqlite_store: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    log: Path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    process = GatewayProcess(broker.url, sqlite_store, log)
    try:
        yield process
    finally:
        process.stop()
