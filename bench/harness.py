"""Processes, databases and measurements the benchmark shares. Loopback only, bounded."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from sqlalchemy import create_engine, text

from store.migrate import upgrade

ADMIN_URL = os.environ.get(
    "BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")


@dataclass
class Stage:
    """Databases of the benchmark's own: a PostgreSQL database, a Redis db, a SQLite file."""

    workdir: Path
    pg_name: str = field(
        default_factory=lambda: os.environ.get("BENCH_POSTGRES_DB", "convlife_bench")
    )
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def pg_url(self) -> str:
        return ADMIN_URL.rsplit("/", 1)[0] + f"/{self.pg_name}"

    @property
    def sqlite_url(self) -> str:
        return f"sqlite:///{self.workdir / 'bench.db'}"

    def fresh_postgres(self) -> str:
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{self.pg_name}"'))
        admin.dispose()
        upgrade(self.pg_url)
        return self.pg_url

    def fresh_sqlite(self) -> str:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.workdir / 'bench.db'}{suffix}").unlink(missing_ok=True)
        upgrade(self.sqlite_url)
        return self.sqlite_url

    def fresh_redis(self) -> Redis:
        client = Redis.from_url(REDIS_URL)
        client.flushdb()
        return client

    def drop_postgres(self) -> None:
        admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))
        admin.dispose()

    def start(
        self, argv: list[str], env: dict[str, str], name: str, ready: str = " ready."
    ) -> subprocess.Popen[bytes]:
        """Start a process (its own group), wait for `ready` in its log (60 s at most)."""
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        wait_until(
            lambda: ready in log.read_text(errors="replace"),
            60,
            f"{name} to start:\n{log.read_text(errors='replace')[-2000:]}",
            died=process,
        )
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process)
        self.processes.clear()


def convlife(*args: str) -> list[str]:
    return [sys.executable, "-m", "cli.main", *args]


def celery(app: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", app, *args]


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    died: subprocess.Popen[bytes] | None = None,
    every: float = 0.05,
) -> float:
    """Poll until `condition`; returns the time it became true (time.time())."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.time()
        if died is not None and died.poll() is not None:
            raise RuntimeError(f"process exited while waiting for {what}")
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (pool children included)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


@contextlib.contextmanager
def staged(workdir: Path) -> Iterator[Stage]:
    stage = Stage(workdir)
    try:
        yield stage
    finally:
        stage.stop_all()


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    """A free TCP port on loopback."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
