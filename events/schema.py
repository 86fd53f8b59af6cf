"""JSON Schema of every event in and every decision out, as committed under docs/schema/.

Regenerate with `python -m events.schema docs/schema`; a test fails when the files are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from events.decisions import Decision
from events.models import Event


def schemas() -> dict[str, dict[str, Any]]:
    """File name -> JSON Schema."""
    return {
        "event.schema.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "convlife event",
            **TypeAdapter(Event).json_schema(),
        },
        "decision.schema.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "convlife decision",
            **TypeAdapter(Decision).json_schema(mode="serialization"),
        },
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schema")):
        print(path)
