"""The gateway's service in docker-compose.yml, checked by parsing it (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from cli.main import _parser

ROOT = Path(__file__).resolve().parents[2]
SERVICES: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def test_the_gateway_service_runs_convlife_gateway_on_all_interfaces() -> None:
    gateway = SERVICES["gateway"]
    assert gateway["build"] == "."
    args = _parser().parse_args(gateway["command"])
    assert (args.host, args.port, args.insecure_no_auth) == ("0.0.0.0", 8000, False)


def test_the_gateway_can_be_scaled() -> None:
    gateway = SERVICES["gateway"]
    assert "container_name" not in gateway
    assert all("-" in str(port).rsplit(":", 2)[-2] for port in gateway["ports"])  # a host range


def test_the_gateway_secrets_come_from_the_environment_and_are_required() -> None:
    value = SERVICES["gateway"]["environment"]["CONVLIFE_GATEWAY_SECRETS"]
    assert value.startswith("${CONVLIFE_GATEWAY_SECRETS:?")


def test_the_gateway_is_health_checked_on_healthz() -> None:
    assert "/healthz" in " ".join(SERVICES["gateway"]["healthcheck"]["test"])


def test_the_image_contains_the_gateway_package() -> None:
    assert "COPY gateway ./gateway" in (ROOT / "Dockerfile").read_text()
