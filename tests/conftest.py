"""Shared fixtures: the suite's own Redis database and PostgreSQL database, never another's.

- Redis: database CONVLIFE_TEST_REDIS_DB (default 13) on CONVLIFE_TEST_REDIS (default
  127.0.0.1:6379); flushed once when the session starts, since it is the suite's own.
- PostgreSQL: a database `convlife_test_<random>` created on CONVLIFE_TEST_POSTGRES (default
  postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and dropped at the end.
Without a reachable server those tests skip with the reason, except under CI=true, where they
fail: CI must run them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from store.db import make_engine
from store.migrate import upgrade

REDIS_HOST = os.environ.get("CONVLIFE_TEST_REDIS", "127.0.0.1:6379")
REDIS_DB = int(os.environ.get("CONVLIFE_TEST_REDIS_DB", "13"))
POSTGRES_ADMIN = os.environ.get(
    "CONVLIFE_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{message}; CI must run these tests", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = f"redis://{REDIS_HOST}/{REDIS_DB}"
    client = Redis.from_url(url)
    try:
        client.ping()
    except Exception as error:
        _unavailable(f"Redis at {url}", error)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"convlife_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        _unavailable(f"PostgreSQL at {POSTGRES_ADMIN}", error)
    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the head, once per session: `sqlite_url` copies it.
    Running every migration for each test that wanted a database was half the suite's time."""
    path = tmp_path_factory.mktemp("migrated") / "convlife.db"
    upgrade(f"sqlite:///{path}")
    # The migration's engine is disposed: its last connection checkpointed the WAL away, so
    # the file alone is the whole database.
    assert not Path(f"{path}-wal").exists()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    """A fresh SQLite database at the head of the migrations, the test's own."""
    path = tmp_path / "convlife.db"
    shutil.copyfile(migrated_sqlite, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The store under test: each test using it runs on SQLite and on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
