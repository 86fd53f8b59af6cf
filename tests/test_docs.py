"""The documentation stays true to the code."""

from __future__ import annotations

import ast
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
    "webhooks": {"events", "policies", "store"},
}
OWN = {"events", "policies", "store", "webhooks", "worker"}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_package_imports_only_what_its_layer_may(package: str) -> None:
    """events <- policies <- store <- worker; Celery only in worker/."""
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
