"""Durations in words, for the `reason` a person reads: the one printer of events/durations.py."""

from __future__ import annotations

from events.durations import humanize

__all__ = ["humanize"]
