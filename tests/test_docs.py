"""The documentation stays true to the code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from events.models import EVENT_TYPES
from events.schema import render, schemas

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(schemas()))
def test_the_committed_json_schema_is_the_one_the_models_generate(name: str) -> None:
    committed = (ROOT / "docs" / "schema" / name).read_text(encoding="utf-8")
    assert committed == render(schemas()[name]), "run: python -m events.schema docs/schema"


def test_docs_events_names_every_event_type() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    missing = [name for name in EVENT_TYPES if f"`{name}`" not in text]
    assert not missing


LAYERS = {
    "events": set(),
    "policies": {"events"},
    "store": {"events", "policies"},
    # The gateway: handlers and below, and worker's modules that do not load Celery
    # (settings, ops-style functions); the subprocess test below proves Celery stays out.
    "gateway": {"events", "policies", "store", "worker", "webhooks", "connectors"},
    "connectors": {"events"},
    # Outbound HTTP: handlers and below, never Celery or the worker.
    # Chatwoot's API calls are built by the pure connector and sent by the dispatcher.
    "webhooks": {"events", "policies", "store", "connectors"},
}
OWN = {"events", "policies", "store", "worker", "gateway", "connectors", "webhooks"}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_package_imports_only_what_its_layer_may(package: str) -> None:
    """events <- policies <- store <- worker (<- gateway); Celery only in worker/."""
    wrong = []
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                allowed_own = LAYERS[package] | {package}
                if top in OWN and top not in allowed_own:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
                if top in {"celery", "billiard"}:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
                if package == "policies" and top in {"sqlalchemy", "redis", "kombu", "pydantic"}:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong


def test_importing_the_gateway_app_loads_no_celery() -> None:
    """The gateway imports worker's settings and ops functions, never the Celery app: a web
    process that loaded Celery would carry its whole machinery (and its import-time state).
    (billiard, Celery's pool, is loaded by kombu itself, which the publisher needs.)"""
    code = (
        "import sys, gateway.app, gateway.serve; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'celery'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_bundled_swagger_ui_renders_openapi_3_1() -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on (4 shows
    'Unable to render this definition'): the offline /docs page needs the 5.x bundle."""
    import swagger_ui_bundle

    version = Path(swagger_ui_bundle.swagger_ui_path).name.removeprefix("swagger-ui-")
    assert int(version.split(".")[0]) >= 5, version


def test_connectors_import_only_events_pydantic_and_the_standard_library() -> None:
    """A connector is pure translation: no Redis, no database, no HTTP client, no Celery."""
    wrong = []
    for path in (ROOT / "connectors").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names | {"events", "connectors", "pydantic"}:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong


def test_connectors_read_no_clock() -> None:
    """Times come from the payload or as arguments, so a translation is the same every time."""
    clocks = (".now(", ".utcnow(", ".today(", "time.time(", "time.monotonic(", "perf_counter(")
    found = [
        f"{path.relative_to(ROOT)}: {clock}"
        for path in (ROOT / "connectors").rglob("*.py")
        for clock in clocks
        if clock in path.read_text(encoding="utf-8")
    ]
    assert not found
