"""docker-compose.yml, checked by parsing it (no Docker engine on these machines)."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from events.names import CLOSES_QUEUE, EVENTS_QUEUE, OUTBOX_QUEUE
from worker.cli import _parser
from worker.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CONVLIFE = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
LONG_RUNNING = [name for name, s in SERVICES.items() if s.get("restart") != "no"]


def subcommands() -> set[str]:
    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_the_stack_has_every_process_it_needs() -> None:
    assert {"redis", "postgres", "migrate", "worker", "closer", "beat", "flower", "metrics"} <= set(
        SERVICES
    )


def test_exactly_one_service_runs_beat_and_it_is_not_scaled() -> None:
    beats = [name for name, s in CONVLIFE.items() if s["command"][0] == "beat"]
    assert beats == ["beat"]
    assert SERVICES["beat"]["deploy"]["replicas"] == 1


@pytest.mark.parametrize("name", sorted(CONVLIFE))
def test_every_convlife_command_is_a_real_subcommand_with_options_that_parse(name: str) -> None:
    command = CONVLIFE[name]["command"]
    assert command[0] in subcommands()
    _parser().parse_args(command)


@pytest.mark.parametrize("name", sorted(CONVLIFE))
def test_every_healthcheck_command_parses(name: str) -> None:
    test = CONVLIFE[name].get("healthcheck", {}).get("test", [])
    if test[1:2] == ["convlife"]:
        _parser().parse_args(test[2:])


def test_every_convlife_variable_is_a_setting() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    known = {f"CONVLIFE_{name.upper()}" for name in Settings.model_fields}
    used = {word.strip(":\"'") for word in text.split() if word.startswith("CONVLIFE_")}
    assert used
    assert used <= known, used - known


def test_redis_never_evicts_and_keeps_its_data() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    assert SERVICES[name]["healthcheck"]["test"]


def test_workers_can_be_scaled() -> None:
    for name in ("worker", "closer"):
        assert "container_name" not in SERVICES[name]
        assert "ports" not in SERVICES[name]


def test_the_workers_consume_every_queue_between_them() -> None:
    consumed: set[str] = set()
    for name in ("worker", "closer"):
        command = SERVICES[name]["command"]
        consumed |= set(command[command.index("--queues") + 1].split(","))
    assert consumed == {EVENTS_QUEUE, CLOSES_QUEUE, OUTBOX_QUEUE}


def test_the_image_runs_the_convlife_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["convlife"]' in dockerfile
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["convlife"] == "worker.cli:main"
