"""Webhook settings: durations in plain seconds or ISO 8601, gathered into one DeliveryConfig."""

from __future__ import annotations

from datetime import timedelta

import pytest

from service.settings import Settings


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("86400", timedelta(hours=24)),
        ("2.5", timedelta(seconds=2.5)),
        ("PT24H", timedelta(hours=24)),
        ("P1D", timedelta(days=1)),
    ],
)
def test_webhook_durations_read_seconds_or_iso_8601(
    raw: str, expected: timedelta, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVLIFE_WEBHOOK_GIVE_UP_AFTER", raw)
    monkeypatch.setenv("CONVLIFE_WEBHOOK_CIRCUIT_COOL_DOWN", raw)
    settings = Settings()
    assert settings.webhook_delivery.retry.give_up_after == expected
    assert settings.webhook_delivery.circuit.cool_down == expected


def test_the_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TIMEOUT", "RETRY_BASE", "GIVE_UP_AFTER", "ENDPOINT_CONCURRENCY"):
        monkeypatch.delenv(f"CONVLIFE_WEBHOOK_{name}", raising=False)
    config = Settings().webhook_delivery
    assert (config.timeout, config.retry.base, config.retry.give_up_after) == (
        10.0,
        5.0,
        timedelta(hours=24),
    )
    assert config.circuit.max_in_flight == 4
