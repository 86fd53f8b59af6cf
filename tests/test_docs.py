"""The documentation stays true to the code."""

from __future__ import annotations

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


def test_the_bundled_swagger_ui_renders_openapi_3_1() -> None:
    """FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on (4 shows
    'Unable to render this definition'): the offline /docs page needs the 5.x bundle."""
    import swagger_ui_bundle

    version = Path(swagger_ui_bundle.swagger_ui_path).name.removeprefix("swagger-ui-")
    assert int(version.split(".")[0]) >= 5, version
