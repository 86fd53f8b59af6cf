"""A real convlife service (worker + beat, `convlife run`) in a subprocess, per store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from events.names import DEAD_LETTERS_STREAM, DECISIONS_STREAM
from events.publish import publish

SWEEP_INTERVAL = 0.5


@dataclass
class Service:
    broker_url: str
    database_url: str
    log: Path
    redis: Redis

    def publish(self, events: Any) -> None:
        publish(events, broker_url=self.broker_url)

    def stream_position(self, stream: str = DECISIONS_STREAM) -> str:
        last = self.redis.xrevrange(stream, count=1)
        return last[0][0] if last else "0-0"

    def read(
        self,
        stream: str,
        since: str,
        matches: Callable[[dict[str, Any]], bool],
        *,
        count: int,
        timeout: float,
    ) -> list[dict[str, Any]]:
        """Entries after `since` that `matches`, waiting until `count` are there or `timeout`."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = self.redis.xread({stream: since}, count=1000, block=200)
            for _name, items in entries or []:
                for entry_id, fields in items:
                    since = entry_id
                    item = json.loads(fields["data"]) if "data" in fields else dict(fields)
                    item["_received"] = time.time()
                    if matches(item):
                        found.append(item)
            if len(found) >= count:
                break
        return found

    def decisions(
        self, since: str, account_id: str, *, count: int, timeout: float
    ) -> list[dict[str, Any]]:
        return self.read(
            DECISIONS_STREAM,
            since,
            lambda d: d.get("account_id") == account_id,
            count=count,
            timeout=timeout,
        )

    def dead_letters(
        self, since: str, marker: str, *, count: int, timeout: float
    ) -> list[dict[str, Any]]:
        return self.read(
            DEAD_LETTERS_STREAM,
            since,
            lambda d: marker in d.get("raw", ""),
            count=count,
            timeout=timeout,
        )


def _start(database_url: str, redis_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CONVLIFE_BROKER_URL": redis_url,
        "CONVLIFE_DATABASE_URL": database_url,
        "CONVLIFE_SWEEP_INTERVAL": str(SWEEP_INTERVAL),
        "CONVLIFE_RELAY_INTERVAL": "1",
        "CONVLIFE_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "run", "--concurrency", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"convlife run exited early:\n{log.read_text()[-3000:]}")
        if " ready." in log.read_text(errors="replace"):
            return process
        time.sleep(0.1)
    _stop(process)
    pytest.fail(f"convlife run did not become ready:\n{log.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        # SIGTERM to the main process only, as `docker stop` does: a warm shutdown. Signalling
        # the whole group would kill the pool children under it mid-task.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def service(
    request: pytest.FixtureRequest, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    """`convlife run` against the suite's Redis db and the given store, for one test module."""
    workdir = tmp_path_factory.mktemp(f"service-{request.param}")
    if request.param == "postgresql":
        database_url: str = request.getfixturevalue("postgres_url")
    else:
        database_url = f"sqlite:///{workdir / 'convlife.db'}"
    process = _start(database_url, redis_url, workdir / "service.log")
    client = Redis.from_url(redis_url, decode_responses=True)
    running = Service(redis_url, database_url, workdir / "service.log", client)
    try:
        yield running
    finally:
        _stop(process)
        client.close()
        log = running.log.read_text(errors="replace")
        assert "Traceback" not in log, f"the service logged a traceback:\n{log[-5000:]}"
