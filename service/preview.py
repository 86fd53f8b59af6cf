"""`convlife settings preview`: what a change of the close settings would do now, not doing it.

The settings the change would leave are built as the workers would build them (the account's
stored settings or the defaults, a line's overrides on top), the cutoffs come from
policies.preview, and the counts from store.preview. Lines that override the close setting or the
business hours keep deadlines of their own: an account-wide preview counts each such line under
its own settings, so the figures are what the change would really do.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy.engine import Engine

from policies.configuration import effective
from policies.preview import HORIZONS, horizons
from policies.state import AccountSettings, LineSettings
from store import configuration
from store.preview import count_open_by_activity, lines_overriding

CLOSE_SETTINGS = ("inactivity_close_after", "business_hours")
"""The settings that decide when a conversation closes: what a preview can change."""

SAMPLE_SIZE = 10


@dataclass(frozen=True)
class Preview:
    account_id: str
    line_id: str | None
    now: datetime
    settings: AccountSettings
    """The settings the change would leave (on the line, for a line preview)."""
    closes: dict[str, int]
    """Per horizon (policies.preview.HORIZONS): how many more open conversations would close
    within it than within the one before (`at_once`: at once)."""
    sample: list[str]
    """Some of those that would close at once, oldest activity first."""
    lines_on_their_own: list[str]
    """Lines counted under settings of their own (they override a close setting)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "line_id": self.line_id,
            "now": self.now.isoformat(),
            "close_at_once": self.closes["at_once"],
            "more_within_1h": self.closes["within_1h"],
            "more_within_24h": self.closes["within_24h"],
            "more_within_7d": self.closes["within_7d"],
            "sample": self.sample,
            "lines_on_their_own": self.lines_on_their_own,
            "exact": True,
        }


def preview(
    engine: Engine,
    account_id: str,
    change: dict[str, Any],
    now: datetime,
    default: AccountSettings,
    line_id: str | None = None,
) -> Preview:
    """What `change` (setting name -> new value, names of CLOSE_SETTINGS) would close.

    `default` is the settings of an account never configured (the workers' defaults)."""
    unknown = set(change) - set(CLOSE_SETTINGS)
    if unknown:
        raise ValueError(f"a preview changes {', '.join(CLOSE_SETTINGS)}, not {sorted(unknown)}")
    with engine.connect() as connection:
        account = configuration.account_settings(connection, [account_id], default)[account_id]
        if line_id is not None:
            found = configuration.line_owners(connection, {(account_id, line_id)})
            overrides = found[(account_id, line_id)].overrides
            after = effective(account, LineSettings({**overrides.values, **change}))
            groups: list[tuple[AccountSettings, str | None, Collection[str]]] = [
                (after, line_id, ())
            ]
            own: list[str] = []
        else:
            after = replace(account, **change)
            overriding = {
                line: overrides
                for line, overrides in lines_overriding(connection, account_id).items()
                if set(CLOSE_SETTINGS) & set(overrides.values)
            }
            own = sorted(overriding)
            groups = [(after, None, own)] + [
                (effective(after, overriding[line]), line, ()) for line in own
            ]
        totals = [0] * len(HORIZONS)
        sample: list[str] = []
        for settings, line, excluded in groups:  # the account's lines, then each own line
            cutoffs = [h.last_activity_cutoff for h in horizons(settings, now)]
            counted = count_open_by_activity(
                connection,
                account_id,
                cutoffs,
                line_id=line,
                excluded_lines=excluded,
                sample_size=SAMPLE_SIZE - len(sample),
            )
            totals = [a + b for a, b in zip(totals, counted.cumulative, strict=True)]
            sample.extend(counted.sample)
    more = [totals[0]] + [later - earlier for earlier, later in pairwise(totals)]
    return Preview(
        account_id=account_id,
        line_id=line_id,
        now=now,
        settings=after,
        closes={name: count for (name, _), count in zip(HORIZONS, more, strict=True)},
        sample=sample,
        lines_on_their_own=own,
    )
