"""The service-level fixture (real ingest and sweep handlers on both stores)."""

from tests.service.conftest import service

__all__ = ["service"]
