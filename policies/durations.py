"""Durations in words, for the `reason` a person reads."""

from __future__ import annotations

from datetime import timedelta


def humanize(duration: timedelta) -> str:
    """`P1DT2H` -> '1d 2h'; sub-second parts are dropped, an empty result reads '0s'."""
    seconds = int(duration.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"
