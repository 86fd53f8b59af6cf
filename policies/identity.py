"""Stable decision ids: the same decision, computed twice, gets the same id."""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("8f1f7f0e-6f1c-4b8a-9a53-6c6f6e766c69")


def decision_id(*parts: str) -> str:
    """A UUID (version 5) derived from the parts that make a decision unique."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))
