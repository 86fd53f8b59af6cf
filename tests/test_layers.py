"""The layers import only downwards, and each role stays in its place (read from the source with
ast: nothing is imported to check it, except where a test says so)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

LAYERS = {
    "events": set(),
    "policies": {"events"},
    "store": {"events", "policies"},
    # Outbound HTTP: handlers and below, never Celery or the units of work.
    # Chatwoot's API calls are built by the pure connector and sent by the dispatcher.
    "webhooks": {"events", "policies", "store", "connectors"},
    # The units of work and what they need: no Celery, no HTTP server.
    "service": {"events", "policies", "store", "webhooks"},
    # The Celery side: the app, its configuration, beat; it wires the units of work.
    "worker": {"events", "policies", "store", "webhooks", "service"},
    # The HTTP gateway: the units of work and webhooks; never Celery (the subprocess test below).
    "gateway": {"events", "policies", "store", "webhooks", "service", "connectors"},
    # The command: everything but the gateway's internals (it starts the gateway through
    # gateway.serve, and Celery through worker.app, both lazily).
    "cli": {"events", "policies", "store", "webhooks", "service", "worker", "observability"},
    # What ops watch: reads the store and the counters the units of work keep.
    "observability": {"events", "policies", "store", "service"},
    "connectors": {"events"},
}
OWN = set(LAYERS)
CELERY = {"celery", "billiard"}
LAZY_ONLY = {"cli": {"worker.app", "gateway.serve"}}
"""Modules a package may import only inside a function, never at import time."""
CELERY_EXCEPTIONS = {"billiard.exceptions"}
"""The one piece of Celery's machinery outside worker/: service/failures.py classifies the pool's
SoftTimeLimitExceeded (billiard, which kombu loads anyway; no Celery app)."""


def _tree(path: Path) -> ast.AST:
    return ast.parse(path.read_text(encoding="utf-8"))


def _modules(path: Path) -> list[str]:
    """The modules a file imports (`import a.b`, `from a.b import c`: a.b), not relative ones."""
    modules = []
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
    return modules


def _wrong_imports(package: str, allowed: Callable[[str], bool]) -> list[str]:
    """`path imports module` for each import in `package` that `allowed(module)` refuses."""
    return [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in _modules(path)
        if not allowed(module)
    ]


def _top_level_modules(path: Path) -> list[str]:
    """The modules a file imports at import time (module body, not inside a function)."""
    modules = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
    return modules


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_package_imports_only_what_its_layer_may(package: str) -> None:
    """events <- policies <- store <- service <- (worker | gateway | cli | observability);
    webhooks on store; Celery only in worker/."""
    lazy = LAZY_ONLY.get(package, set())

    def allowed(module: str) -> bool:
        top = module.split(".")[0]
        if module in lazy:
            return True
        if package == "cli" and top == "gateway":
            return False  # only gateway.serve, in LAZY_ONLY
        if package == "cli" and top == "worker":
            return False  # only worker.app, in LAZY_ONLY
        if top in OWN and top not in LAYERS[package] | {package}:
            return False
        if top in CELERY and package != "worker":
            return package == "service" and module in CELERY_EXCEPTIONS
        return not (package == "policies" and top in {"sqlalchemy", "redis", "kombu", "pydantic"})

    assert not _wrong_imports(package, allowed)


@pytest.mark.parametrize("package", sorted(LAZY_ONLY))
def test_what_a_package_may_only_import_lazily_it_imports_inside_a_function(package: str) -> None:
    """The CLI loads Celery (worker.app) and the web stack (gateway.serve) only in the commands
    that run them."""
    found = [
        f"{path.relative_to(ROOT)} imports {module} at import time"
        for path in sorted((ROOT / package).rglob("*.py"))
        for module in _top_level_modules(path)
        if module in LAZY_ONLY[package]
    ]
    assert not found


def test_importing_the_gateway_app_loads_no_celery() -> None:
    """The gateway imports service's settings and ops functions, never the Celery app: a web
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


def test_connectors_import_only_events_pydantic_and_the_standard_library() -> None:
    """A connector is pure translation: no Redis, no database, no HTTP client, no Celery."""
    pure = sys.stdlib_module_names | {"events", "connectors", "pydantic"}
    assert not _wrong_imports("connectors", lambda module: module.split(".")[0] in pure)


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


def test_the_cli_only_parses_and_prints_it_runs_no_sql_and_makes_no_engine() -> None:
    """Queries live in store/, engines come from `ops.store_session`: cli/main.py formats
    what store/ and service/ops.py return."""
    cli = ROOT / "cli" / "main.py"
    modules = _modules(cli)
    assert [module for module in modules if module.split(".")[0] == "sqlalchemy"] == []
    assert [module for module in modules if module.startswith("store.tables")] == []
    named = set()
    for node in ast.walk(_tree(cli)):
        if isinstance(node, ast.ImportFrom):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Name):
            named.add(node.id)
        elif isinstance(node, ast.Attribute):
            named.add(node.attr)
    assert "make_engine" not in named
