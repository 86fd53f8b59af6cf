"""The handlers (ingest, sweep) with a real Runtime on SQLite and PostgreSQL, no Celery."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis
from sqlalchemy.engine import Engine

from service.runtime import Runtime
from service.settings import Settings
from tests.support import Service

__all__ = ["Service", "service", "settings"]


@pytest.fixture
def service(engine: Engine, database_url: str, redis_url: str) -> Iterator[Service]:
    settings = Settings(database_url=database_url, broker_url=redis_url)  # type: ignore[arg-type]
    client = Redis.from_url(redis_url)
    yield Service(Runtime(settings=settings, engine=engine, redis=client))
    client.close()


@pytest.fixture
def settings(service: Service, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI's settings, read from the environment as `convlife` reads them, naming the
    stores of `service`."""
    current = service.runtime.settings
    monkeypatch.setenv("CONVLIFE_DATABASE_URL", current.database_url.get_secret_value())
    monkeypatch.setenv("CONVLIFE_BROKER_URL", current.broker_url.get_secret_value())
    return Settings()
