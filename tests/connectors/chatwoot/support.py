"""Loading the Chatwoot-shaped fixtures, and variants of them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from connectors.chatwoot import Ignored, Translated, translate_webhook
from events.parsing import parse_event

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    """A fresh copy of `fixtures/<name>.json`, free to change."""
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return copy.deepcopy(loaded)


def events_of(payload: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Translate, insist it produced events, and check each against convlife's contract."""
    result = translate_webhook(payload, **kwargs)
    assert isinstance(result, Translated), result
    for produced in result.events:
        parse_event(produced)  # raises InvalidEvent on any shape docs/events.md refuses
    return list(result.events)


def ignored(payload: dict[str, Any], **kwargs: Any) -> str:
    result = translate_webhook(payload, **kwargs)
    assert isinstance(result, Ignored), result
    return result.reason
