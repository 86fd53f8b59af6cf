"""How many worker processes `convlife run` and `convlife worker` start: `--concurrency`, else
CONVLIFE_CONCURRENCY, else on PostgreSQL one more than the CPUs (a process waiting on the
database leaves its core to the extra one), on SQLite as many as the CPUs (one writer at a
time: one more would only wait)."""

from __future__ import annotations

import argparse
import os

import pytest

from cli.main import _worker_argv
from service.settings import Settings


def _argv(concurrency: int | None) -> list[str]:
    args = argparse.Namespace(queues="convlife.events", concurrency=concurrency, pool="prefork")
    return _worker_argv(Settings(), args)


POSTGRESQL = "postgresql+psycopg://convlife@db/convlife"


def test_unset_on_postgresql_it_is_one_more_than_the_cpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONVLIFE_CONCURRENCY", raising=False)
    monkeypatch.setenv("CONVLIFE_DATABASE_URL", POSTGRESQL)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    assert Settings().worker_processes == 3
    assert "--concurrency=3" in _argv(None)


@pytest.mark.parametrize("url", ["", "sqlite:////var/lib/convlife/convlife.db"])
def test_unset_on_sqlite_it_is_the_cpus(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVLIFE_CONCURRENCY", raising=False)
    monkeypatch.setenv("CONVLIFE_DATABASE_URL", url)  # empty: the default store, a file
    monkeypatch.setattr(os, "cpu_count", lambda: 2)

    assert Settings().worker_processes == 2
    assert "--concurrency=2" in _argv(None)


def test_a_machine_that_cannot_count_its_cpus_counts_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVLIFE_CONCURRENCY", raising=False)
    monkeypatch.setenv("CONVLIFE_DATABASE_URL", POSTGRESQL)
    monkeypatch.setattr(os, "cpu_count", lambda: None)

    assert Settings().worker_processes == 2


def test_the_setting_and_then_the_flag_override_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVLIFE_CONCURRENCY", "5")

    assert "--concurrency=5" in _argv(None)
    assert "--concurrency=1" in _argv(1)
    assert sum(arg.startswith("--concurrency") for arg in _argv(1)) == 1
