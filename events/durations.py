"""The one duration language: a parser for every way in, a printer for every way out.

Events, `CONVLIFE_*` environment variables and CLI flags all accept the same forms and refuse
the same values with the same message:

- an ISO 8601 duration: `P7D`, `PT24H`, `P1DT2H30M`, `PT0.5S`;
- a number of seconds: a JSON number in an event, a decimal string (`3600`, `0.5`) where the
  way in is text (environment, CLI flags);
- for no limit, where Never is allowed: JSON `null` in an event, `never` where the way in is text.

Bounds: more than zero, at most 100 years (`P36500D`): a longer value is a typo, and dates past
9999 overflow. Out: `humanize` for text a person reads (`10s`, `7d`, `1d 2h`), `isoformat` for
JSON (`PT10S`, `P7D`, `P1DT2H`).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any, NoReturn

from pydantic import TypeAdapter, ValidationError

MAX_DURATION = timedelta(days=36500)
"""The longest duration accepted (100 years)."""

NEVER = "never"

_SECONDS = re.compile(r"^\d+(?:\.\d+)?$")
_iso = TypeAdapter(timedelta)


class DurationError(ValueError):
    """A value that is not a duration of the language; the message says what is accepted."""


def forms(allow_never: bool) -> str:
    """What the language accepts, in words (the tail of every error message)."""
    never = ", or never (null in JSON)" if allow_never else ""
    return (
        "a duration is ISO 8601 (P7D, PT24H) or a number of seconds (3600), more than zero "
        f"and at most 100 years (P36500D){never}"
    )


def parse_duration(
    value: Any, *, allow_never: bool = False, text: bool = False
) -> timedelta | None:
    """The duration `value` denotes, or None for Never (only when `allow_never`).

    `text`: the value came as text (an environment variable, a CLI flag), where seconds are a
    decimal string and Never is `never`; in JSON they are a number and `null`.
    Raises DurationError (a ValueError, so pydantic reports it as a field error) otherwise.
    """
    said_never = text and isinstance(value, str) and value.strip().lower() == NEVER
    if value is None or said_never:
        if allow_never:
            return None
        _refuse(value, allow_never)
    if isinstance(value, bool):  # a bool is an int in Python; `true` is not one second
        _refuse(value, allow_never)
    if isinstance(value, timedelta):
        return _bounded(value, value, allow_never)
    if isinstance(value, int | float):
        return _from_seconds(float(value), value, allow_never)
    if isinstance(value, str):
        stripped = value.strip()
        if text and _SECONDS.match(stripped):
            return _from_seconds(float(stripped), value, allow_never)
        if stripped.upper().startswith("P"):
            try:
                duration: timedelta = _iso.validate_python(stripped.upper())
            except ValidationError:
                _refuse(value, allow_never)
            return _bounded(duration, value, allow_never)
    _refuse(value, allow_never)


def _from_seconds(seconds: float, shown: Any, allow_never: bool) -> timedelta:
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_DURATION.total_seconds():
        _refuse(shown, allow_never)
    return timedelta(seconds=seconds)


def _bounded(duration: timedelta, shown: Any, allow_never: bool) -> timedelta:
    if not timedelta(0) < duration <= MAX_DURATION:
        _refuse(shown, allow_never)
    return duration


def _refuse(value: Any, allow_never: bool) -> NoReturn:
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "…"
    raise DurationError(f"{shown} is not a valid duration: {forms(allow_never)}")


def humanize(duration: timedelta) -> str:
    """`P1DT2H` -> '1d 2h'; sub-second parts are dropped, except under a second ('0.5s', to the ms).

    A negative duration reads with a leading '-' ('-1h'), never as Python's '-1 day, 23:00:00'.
    """
    # Every close's reason humanizes its idle time: written out, without a loop of f-strings.
    total = duration.total_seconds()
    if -1 < total < 1:
        under_a_second = round(total, 3)
        return f"{under_a_second:g}s" if 0 < abs(under_a_second) < 1 else "0s"
    seconds = int(total)
    sign = "-" if seconds < 0 else ""
    minutes, second = divmod(abs(seconds), 60)
    hours, minute = divmod(minutes, 60)
    day, hour = divmod(hours, 24)
    parts = []
    if day:
        parts.append(f"{day}d")
    if hour:
        parts.append(f"{hour}h")
    if minute:
        parts.append(f"{minute}m")
    if second:
        parts.append(f"{second}s")
    return sign + " ".join(parts)


def isoformat(duration: timedelta) -> str:
    """The ISO 8601 form for JSON: 10 s -> 'PT10S', 7 days -> 'P7D', 26 h -> 'P1DT2H'."""
    micros = round(duration.total_seconds() * 1_000_000)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    seconds = micros / 1_000_000
    date = f"{days}D" if days else ""
    time = "".join(f"{amount}{unit}" for amount, unit in ((hours, "H"), (minutes, "M")) if amount)
    if seconds:
        time += f"{seconds:.6f}".rstrip("0").rstrip(".") + "S"
    if not date and not time:
        return "PT0S"
    return f"{sign}P{date}" + (f"T{time}" if time else "")
