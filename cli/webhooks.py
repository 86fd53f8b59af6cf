"""`convlife webhooks add|list|remove|deliveries`: argument parsing and printing only; the
operations are in webhooks/manage.py (the gateway's routes call the same functions)."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from service.settings import Settings
from store.db import make_engine
from store.webhooks import STATUSES
from webhooks import manage

ACTIONS = ("add", "list", "remove", "deliveries")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("id", nargs="?", type=int, help="remove: the subscription's id")
    parser.add_argument("--url", help="add: where to POST decisions (http:// or https://)")
    parser.add_argument("--account", help="add: only this account's decisions (default: all)")
    known = ",".join(manage.DECISION_TYPES)
    parser.add_argument(
        "--types",
        help=f"add: comma-separated decision types of {known} (default: all)",
    )
    parser.add_argument("--secret", help="add: the HMAC secret the receiver verifies with")
    parser.add_argument(
        "--chatwoot",
        action="store_true",
        help="add: carry decisions out on Chatwoot (its REST API) instead of POSTing them; "
        "--url defaults to CONVLIFE_CHATWOOT_URL, --token to CONVLIFE_CHATWOOT_API_TOKEN. "
        "Again with a new token: replaces it and resumes a subscription paused on a 401",
    )
    parser.add_argument(
        "--token", help="add --chatwoot: a Chatwoot access token (default: from the settings)"
    )
    parser.add_argument("--subscription", type=int, help="deliveries: of this subscription only")
    parser.add_argument("--status", choices=STATUSES, help="deliveries: in this status only")
    parser.add_argument("--limit", type=int, default=50, help="deliveries: at most this many")


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one `convlife webhooks` action; prints JSON lines, or a one-line error (exit 2)."""
    engine = make_engine(settings.database_url.get_secret_value())
    try:
        if args.action == "add" and args.chatwoot:
            return _add_chatwoot(settings, engine, args)
        return _ACTIONS[args.action](engine, args)
    except (manage.InvalidSubscription, LookupError) as error:
        print(f"webhooks {args.action}: {error}")
        return 2
    finally:
        engine.dispose()


def _add(engine: Any, args: argparse.Namespace) -> int:
    if not args.url or not args.secret:
        raise manage.InvalidSubscription("add needs --url and --secret")
    subscription = manage.add(
        engine,
        url=args.url,
        secret=args.secret,
        now=datetime.now(UTC),
        account_id=args.account,
        types=args.types,
    )
    print(json.dumps(subscription))
    return 0


def _add_chatwoot(settings: Settings, engine: Any, args: argparse.Namespace) -> int:
    url = args.url or settings.chatwoot_url
    token = args.token or (
        settings.chatwoot_api_token.get_secret_value() if settings.chatwoot_api_token else None
    )
    if not url or not token:
        raise manage.InvalidSubscription(
            "add --chatwoot needs --url and --token (or CONVLIFE_CHATWOOT_URL and "
            "CONVLIFE_CHATWOOT_API_TOKEN)"
        )
    subscription = manage.connect_chatwoot(
        engine, url=url, token=token, now=datetime.now(UTC), account_id=args.account
    )
    print(json.dumps(subscription))
    return 0


def _list(engine: Any, args: argparse.Namespace) -> int:
    for subscription in manage.list_all(engine):
        print(json.dumps(subscription))
    return 0


def _remove(engine: Any, args: argparse.Namespace) -> int:
    if args.id is None:
        raise manage.InvalidSubscription("remove needs the subscription's id (see: webhooks list)")
    manage.remove(engine, args.id)
    print(f"removed webhook subscription {args.id}")
    return 0


def _deliveries(engine: Any, args: argparse.Namespace) -> int:
    for delivery in manage.deliveries(
        engine, subscription_id=args.subscription, status=args.status, limit=args.limit
    ):
        print(json.dumps(delivery))
    return 0


_ACTIONS = {"add": _add, "list": _list, "remove": _remove, "deliveries": _deliveries}
