"""Fault-suite fixtures: each test gets its own Redis server and its own database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN
from tests.faults.harness import Stack, fresh_database


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str) -> Iterator[Stack]:
    """A private redis-server, a fresh PostgreSQL database, no convlife process yet."""
    del postgres_url  # only to fail/skip like the rest of the suite without PostgreSQL
    url, drop = fresh_database(POSTGRES_ADMIN)
    running = Stack(tmp_path, url)
    try:
        yield running
    finally:
        running.close()
        drop()
