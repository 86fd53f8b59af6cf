"""docker-compose.yml, checked by parsing it (no Docker engine on these machines)."""

from __future__ import annotations

import argparse
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.main import _parser
from events.names import CLOSES_QUEUE, EVENTS_QUEUE, OUTBOX_QUEUE
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
CONVLIFE = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
LONG_RUNNING = [name for name, s in SERVICES.items() if s.get("restart") != "no"]


def subcommands() -> set[str]:
    actions = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def test_the_stack_has_every_process_it_needs() -> None:
    assert {
        "redis",
        "postgres",
        "migrate",
        "worker",
        "closer",
        "beat",
        "flower",
        "metrics",
        "prometheus",
        "grafana",
    } <= set(SERVICES)


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
    assert project["project"]["scripts"]["convlife"] == "cli.main:main"


# Exposure and secrets (issue 9, item 7). Compose substitutes ${VAR}, ${VAR:-default} and
# ${VAR:?message} from the environment and .env; `$$` is a literal dollar.
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
TEXT = (ROOT / "docker-compose.yml").read_text()
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
SECRETS = {
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "FLOWER_BASIC_AUTH",
    "GRAFANA_ADMIN_PASSWORD",
    "CONVLIFE_GATEWAY_SECRETS",
}
OPS_UIS = {"flower", "prometheus", "grafana"}
PUBLISHED = OPS_UIS | {"gateway"}
"""The ops web tools, and the gateway: the HTTP way in (signed requests only)."""


def interpolate(value: str, env: dict[str, str]) -> str:
    """What compose makes of `value` with `env`; raises on a missing required variable."""

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if env.get(name):
            return env[name]
        if op in (":?", "?"):
            raise LookupError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def strings(node: Any) -> Iterator[str]:
    """Every string in a parsed YAML tree, keys excluded."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in ENV_EXAMPLE.splitlines() if "=" in line)
    return {name.strip(): value.strip() for name, value in pairs if not name.startswith("#")}


def published(name: str) -> list[str]:
    return [interpolate(port, {}) for port in SERVICES[name].get("ports", [])]


def test_no_secret_is_written_in_the_file_every_one_comes_from_the_environment() -> None:
    for value in strings(COMPOSE):
        for credentials in re.findall(r"://([^/@\s]*)@", value):
            _, _, password = credentials.partition(":")
            assert VARIABLE.fullmatch(password), f"a password written in a URL: {value}"
    environments = [s.get("environment", {}) for s in SERVICES.values()]
    for environment in environments:
        for key, value in environment.items():
            if re.search("(PASSWORD|SECRET|TOKEN|_AUTH)$", key):
                assert VARIABLE.fullmatch(str(value)), f"{key} is written in the file"


def test_a_missing_secret_stops_compose_with_a_message_naming_it() -> None:
    required = {m["name"]: m["arg"] for m in VARIABLE.finditer(TEXT) if m["op"] == ":?"}
    assert set(required) == SECRETS
    for name, message in required.items():
        assert name in message
        assert ".env" in message
        with pytest.raises(LookupError, match=name):
            interpolate(TEXT, dict.fromkeys(SECRETS - {name}, "x"))
    interpolate(TEXT, dict.fromkeys(SECRETS, "x"))


def test_every_variable_the_file_uses_is_in_env_example_and_the_secrets_are_left_blank() -> None:
    used = {m["name"] for m in VARIABLE.finditer(TEXT)}
    example = env_example()
    assert used <= set(example), used - set(example)
    assert all(example[name] == "" for name in SECRETS)


def test_env_is_ignored_by_git_and_docker_and_env_example_is_not() -> None:
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert ".env" in gitignore
    assert not any(line in ("*.example", ".env*", ".env.*") for line in gitignore)
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


@pytest.mark.parametrize("name", sorted(n for n, s in SERVICES.items() if "image" in s))
def test_every_image_is_pinned_to_an_exact_version(name: str) -> None:
    image, _, tag = SERVICES[name]["image"].partition(":")
    # PostgreSQL's releases are MAJOR.MINOR (15.14 is exact); everyone else's are X.Y.Z.
    exact = r"\d+\.\d+" if image == "postgres" else r"v?\d+\.\d+\.\d+"
    assert re.fullmatch(exact + r"(-[a-z0-9.]+)?", tag), f"{name}: {image}:{tag} floats"


def test_the_dockerfile_base_image_is_pinned_to_an_exact_version() -> None:
    bases = re.findall(r"^FROM\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert bases
    for base in bases:
        assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+\.\d+(-[a-z0-9.-]+)?", base), base


def test_only_the_ops_uis_and_the_gateway_publish_a_port_and_only_on_loopback_by_default() -> None:
    publishing = {name for name, s in SERVICES.items() if s.get("ports")}
    assert publishing == PUBLISHED
    for name in publishing:
        for port in published(name):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_the_metrics_endpoint_is_on_the_internal_network_only() -> None:
    metrics = SERVICES["metrics"]
    assert "ports" not in metrics
    assert metrics["expose"] == [metrics["command"][metrics["command"].index("--port") + 1]]


def test_redis_requires_a_password_from_the_environment_and_every_redis_url_carries_it() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    urls = [u for value in strings(COMPOSE) for u in re.findall(r"redis://\S+", value)]
    assert len(urls) >= 2  # convlife's broker and Flower's
    for url in urls:
        assert url.startswith("redis://:${REDIS_PASSWORD:?"), url


def test_redis_healthcheck_authenticates() -> None:
    redis = SERVICES["redis"]
    assert redis["environment"]["REDISCLI_AUTH"].startswith("${REDIS_PASSWORD:?")
    assert "PONG" in " ".join(redis["healthcheck"]["test"])


def test_flower_asks_for_basic_auth_from_the_environment() -> None:
    command = SERVICES["flower"]["command"]
    auth = [arg for arg in command if arg.startswith("--basic-auth=")]
    assert auth
    assert auth[0].startswith("--basic-auth=${FLOWER_BASIC_AUTH:?")
    assert "flower" in command
    assert "FLOWER_BASIC_AUTH" in " ".join(SERVICES["flower"]["healthcheck"]["test"])


def test_grafana_admin_password_comes_from_the_environment_and_nobody_signs_up() -> None:
    environment = SERVICES["grafana"]["environment"]
    assert environment["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_every_file_the_stack_mounts_exists_in_the_repository() -> None:
    mounts = [v for s in SERVICES.values() for v in s.get("volumes", []) if v.startswith("./")]
    assert mounts
    for mount in mounts:
        source = mount.split(":")[0]
        assert (ROOT / source).exists(), source
