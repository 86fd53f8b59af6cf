"""`convlife settings preview ACCOUNT [--line LINE] --close-after P1D [--business-hours FILE]`:
what the change would close now, without making it (service/preview.py)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from events.business_hours import BusinessHours
from events.durations import humanize
from events.parsing import printable
from service import ops
from service.errors import UsageError
from service.preview import preview
from service.settings import Settings

NO_BUSINESS_HOURS = "none"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--line", help="preview: a change of this line's overrides")
    parser.add_argument(
        "--business-hours",
        metavar="FILE",
        help="set, preview: business hours from a JSON file (docs/events.md), or 'none' for "
        "every hour",
    )


def run(settings: Settings, args: argparse.Namespace) -> int:
    change: dict[str, Any] = {}
    if args.close_after is not None:
        change["inactivity_close_after"] = ops.parse_duration(args.close_after)
    if args.business_hours is not None:
        change["business_hours"] = business_hours_from(args.business_hours)
    if not change:
        raise UsageError("settings preview needs --close-after and/or --business-hours")
    others = (args.window, args.bot, args.route_to_away_agents, args.warn_before)
    if any(value is not None for value in others) or args.window_counts_business_hours is not None:
        raise UsageError("settings preview changes --close-after and --business-hours only")
    default = ops.worker_defaults(settings).settings
    with ops.store_session(settings) as engine:
        result = preview(
            engine, args.account_id, change, datetime.now(UTC), default, line_id=args.line
        )
    if args.json:
        print(json.dumps(result.as_json()))
        return 0
    where = f"line {args.line} of account" if args.line else "account"
    close_after = result.settings.inactivity_close_after
    hours = "business hours only" if result.settings.business_hours else "every hour"
    print(
        printable(
            f"{where} {args.account_id}, if it closed after "
            f"{'never' if close_after is None else humanize(close_after)} ({hours}):"
        )
    )
    print(f"  would close at once: {result.closes['at_once']}")
    print(f"  then within 1h: {result.closes['within_1h']}")
    print(f"  then within 24h: {result.closes['within_24h']}")
    print(f"  then within 7d: {result.closes['within_7d']}")
    if result.sample:
        print(printable(f"  some closing at once: {', '.join(result.sample)}"))
    if result.lines_on_their_own:
        shown = ", ".join(result.lines_on_their_own)
        print(printable(f"  counted under their own overrides: lines {shown}"))
    print("  nothing was changed (settings set makes the change)")
    return 0


def business_hours_from(value: str) -> BusinessHours | None:
    """`--business-hours`: a JSON file of the events' shape, or `none` (every hour counts)."""
    if value.strip().lower() == NO_BUSINESS_HOURS:
        return None
    try:
        text = Path(value).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--business-hours: cannot read {value}: {error.strerror}") from None
    try:
        return BusinessHours.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(the file)"
        raise UsageError(f"--business-hours {value}: {where}: {first['msg']}") from None
