"""One duration language: events, CONVLIFE_* variables and CLI flags accept the same forms, refuse
the same values with the same message, and print them one way for people, one way for JSON."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from events.durations import DurationError, forms, humanize, isoformat, parse_duration
from events.parsing import InvalidEvent, parse_event
from service import ops
from service.settings import Settings

SETTINGS_EVENT = {
    "event_id": "e1",
    "type": "account.settings_updated",
    "account_id": "acme",
    "occurred_at": "2026-03-01T10:00:00+00:00",
}


def through_an_event(text: str) -> timedelta | None:
    """The JSON an upstream would write for what an operator types as `text`."""
    value: Any = text
    if text.replace(".", "", 1).isdigit():
        value = float(text)
    elif text == "never":
        value = None
    try:
        parsed = parse_event({**SETTINGS_EVENT, "inactivity_close_after": value})
    except InvalidEvent as error:
        raise DurationError(error.reason.split("Value error, ", 1)[1]) from None
    return parsed.inactivity_close_after  # type: ignore[union-attr]


def through_the_environment(text: str, monkeypatch: pytest.MonkeyPatch) -> timedelta | None:
    monkeypatch.setenv("CONVLIFE_DEFAULT_INACTIVITY_CLOSE_AFTER", text)
    try:
        return Settings().default_inactivity_close_after
    except ValidationError as error:
        raise DurationError(error.errors()[0]["msg"].split("Value error, ", 1)[1]) from None


def through_a_cli_flag(text: str) -> timedelta | None:
    return ops.parse_duration(text)


WAYS_IN: dict[str, Callable[[str, pytest.MonkeyPatch], timedelta | None]] = {
    "event": lambda text, _mp: through_an_event(text),
    "environment": through_the_environment,
    "cli flag": lambda text, _mp: through_a_cli_flag(text),
}


@pytest.mark.parametrize("way_in", sorted(WAYS_IN))
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P7D", timedelta(days=7)),
        ("PT24H", timedelta(hours=24)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("3600", timedelta(hours=1)),
        ("0.5", timedelta(milliseconds=500)),
        ("P36500D", timedelta(days=36500)),
        ("never", None),
    ],
)
def test_every_way_in_accepts_the_same_forms(
    way_in: str, text: str, expected: timedelta | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert WAYS_IN[way_in](text, monkeypatch) == expected


@pytest.mark.parametrize("way_in", sorted(WAYS_IN))
@pytest.mark.parametrize("text", ["-PT1H", "PT0S", "P36501D", "7days", "soon", "-5", "0"])
def test_every_way_in_refuses_the_same_values_with_the_same_message(
    way_in: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DurationError) as refused:
        WAYS_IN[way_in](text, monkeypatch)
    message = str(refused.value)
    assert message.endswith(f"is not a valid duration: {forms(allow_never=True)}")


def test_a_setting_that_cannot_be_never_refuses_never_with_the_same_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVLIFE_MAX_CLOCK_SKEW", "never")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert f"'never' is not a valid duration: {forms(allow_never=False)}" in str(refused.value)


@pytest.mark.parametrize("text", ["0.25", "PT0.25S"])
def test_interval_settings_take_the_same_language_as_seconds(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVLIFE_SWEEP_INTERVAL", text)
    assert Settings().sweep_interval == 0.25


@pytest.mark.parametrize("given", [True, float("nan"), float("inf"), [7], "3600", "never"])
def test_an_event_refuses_what_json_should_not_mean_as_a_duration(given: object) -> None:
    # In JSON, seconds are a number and Never is null: "3600" and "never" are text forms.
    with pytest.raises(DurationError):
        parse_duration(given, allow_never=True)


@pytest.mark.parametrize(
    ("duration", "human", "iso"),
    [
        (timedelta(seconds=10), "10s", "PT10S"),
        (timedelta(days=7), "7d", "P7D"),
        (timedelta(days=1, hours=2), "1d 2h", "P1DT2H"),
        (timedelta(hours=24), "1d", "P1D"),
        (timedelta(minutes=90), "1h 30m", "PT1H30M"),
        (timedelta(milliseconds=500), "0.5s", "PT0.5S"),
        (timedelta(days=36500), "36500d", "P36500D"),
        (timedelta(hours=-1), "-1h", "-PT1H"),
    ],
)
def test_a_duration_prints_one_way_for_people_and_one_way_for_json(
    duration: timedelta, human: str, iso: str
) -> None:
    assert humanize(duration) == human
    assert isoformat(duration) == iso
    if duration > timedelta(0):
        assert parse_duration(iso) == duration  # what JSON output says reads back the same
