"""The `convlife` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from redis import Redis
from sqlalchemy import select

from events.names import DEAD_LETTERS_STREAM, DECISIONS_STREAM, QUEUES
from events.publish import Publisher
from store import configuration, conversations, migrate
from store.db import make_engine
from store.tables import decisions
from worker import logs, ops, webhooks_command
from worker.app import create_app
from worker.health import CHECKS, run_checks
from worker.metrics import serve
from worker.preflight import PreflightError, check_broker_eviction
from worker.settings import Settings

ALL_QUEUES = ",".join(QUEUES)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    settings = Settings()
    logs.configure(settings.log_level, settings.log_format)
    result: int = args.command(settings, args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convlife",
        description="Conversation lifecycle: auto-close inactive conversations, route contacts.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(command=handler)
        return sub

    run = command("run", _run, "migrate, then run a worker with beat inside (local use)")
    _worker_options(run)
    worker = command("worker", _worker, "run a worker (production; scale these)")
    _worker_options(worker)
    command("beat", _beat, "run the beat schedule (exactly one per deployment)")
    command("migrate", _migrate, "bring the database schema up to date")

    publish = command("publish", _publish, "send events (JSON Lines) to convlife")
    publish.add_argument("file", nargs="?", default="-", help="a JSON Lines file, or - (stdin)")
    publish.add_argument("--batch-size", type=int, default=500)

    follow_help = "keep reading new entries"
    decisions_cmd = command("decisions", _decisions, "print decisions from the stream")
    decisions_cmd.add_argument("--follow", "-f", action="store_true", help=follow_help)
    decisions_cmd.add_argument("--account", help="only this account's decisions")
    dead = command("dead-letters", _dead_letters, "list, follow or replay refused events")
    dead.add_argument("action", choices=["list", "follow", "replay"])
    dead.add_argument("id", nargs="?", type=int, help="replay: the dead letter's id")
    dead.add_argument(
        "file", nargs="?", help="replay: the fixed event (a JSON file, or - for stdin)"
    )
    dead.add_argument("--limit", type=int, default=50)
    command("reindex", _reindex, "recompute every open conversation's close deadline")

    health = command("health", _health, "check Redis, database, migrations, beat; exit 1 if not ok")
    health.add_argument(
        "--checks",
        default=",".join(CHECKS),
        help=f"comma-separated subset of {','.join(CHECKS)} (default: all)",
    )
    metrics_cmd = command("metrics", _metrics, "serve Prometheus metrics on /metrics")
    metrics_cmd.add_argument("--port", type=int, default=9464)
    metrics_cmd.add_argument("--host", default="0.0.0.0")

    conversation = command("conversation", _conversation, "explain one conversation")
    conversation.add_argument("action", choices=["show"])
    conversation.add_argument("account_id")
    conversation.add_argument("conversation_id")

    account = command("settings", _settings, "show or set an account's settings")
    account.add_argument("action", choices=["show", "set"])
    account.add_argument("account_id")
    account.add_argument("--close-after", help="set: P7D, PT24H, seconds, or never")
    account.add_argument("--window", help="set: reassignment window, or never")
    account.add_argument("--bot", choices=["on", "off"], help="set: the bot flow")

    hooks = command("webhooks", _webhooks, "add, list, remove webhooks; show their deliveries")
    webhooks_command.add_arguments(hooks)
    return parser


def _worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queues", "-Q", default=ALL_QUEUES, help="queues to consume")
    parser.add_argument("--concurrency", "-c", type=int, default=None)
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])


def _worker_argv(settings: Settings, args: argparse.Namespace) -> list[str]:
    argv = ["worker", f"--loglevel={settings.log_level}", f"--queues={args.queues}"]
    concurrency = args.concurrency or settings.concurrency
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    argv.append(f"--pool={args.pool}")
    return argv


def _preflight(settings: Settings) -> None:
    try:
        check_broker_eviction(settings.broker_url.get_secret_value())
    except PreflightError as error:
        logging.getLogger("convlife").critical("refusing to start: %s", error)
        raise SystemExit(2) from None


def _run(settings: Settings, args: argparse.Namespace) -> int:
    _preflight(settings)
    migrate.upgrade(settings.database_url.get_secret_value())
    create_app(settings).worker_main([*_worker_argv(settings, args), "--beat"])
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    _preflight(settings)
    create_app(settings).worker_main(_worker_argv(settings, args))
    return 0


def _beat(settings: Settings, args: argparse.Namespace) -> int:
    _preflight(settings)
    create_app(settings).start(["beat", f"--loglevel={settings.log_level}"])
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    migrate.upgrade(settings.database_url.get_secret_value())
    print(f"schema at revision {migrate.head_revision()}")
    return 0


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    source: TextIO = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    with (
        source,
        Publisher(settings.broker_url.get_secret_value(), batch_size=args.batch_size) as publisher,
    ):
        for line in source:
            if line.strip():
                # Sent as text: the worker parses it, and dead-letters what is not JSON.
                publisher.publish(line.strip())
    print(f"published {publisher.sent_events} events in {publisher.sent_messages} messages")
    return 0


def _read_stream(settings: Settings, stream: str, follow: bool) -> Any:
    redis = Redis.from_url(settings.streams_redis_url, decode_responses=True)
    last = "0-0"
    while True:
        entries: Any = redis.xread({stream: last}, count=1000, block=1000 if follow else None)
        if not entries:
            if follow:
                continue
            return
        for _name, items in entries:
            for entry_id, fields in items:
                last = entry_id
                yield fields


def _health(settings: Settings, args: argparse.Namespace) -> int:
    names = tuple(name.strip() for name in args.checks.split(",") if name.strip())
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        print(f"unknown checks: {', '.join(unknown)} (known: {', '.join(CHECKS)})")
        return 2
    results = run_checks(settings, names, datetime.now(UTC))
    for result in results:
        print(result.line())
    return 0 if all(result.ok for result in results) else 1


def _metrics(settings: Settings, args: argparse.Namespace) -> int:
    serve(
        make_engine(settings.database_url.get_secret_value()),
        Redis.from_url(settings.streams_redis_url),
        Redis.from_url(settings.broker_url.get_secret_value()),
        args.port,
        args.host,
    )
    return 0


def _decisions(settings: Settings, args: argparse.Namespace) -> int:
    for fields in _read_stream(settings, DECISIONS_STREAM, args.follow):
        data = fields.get("data", "{}")
        if args.account and json.loads(data).get("account_id") != args.account:
            continue
        print(data, flush=True)
    return 0


def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        ops.dead_letters_list(settings, args.limit)
        return 0
    if args.action == "follow":
        for fields in _read_stream(settings, DEAD_LETTERS_STREAM, follow=True):
            print(json.dumps(fields, ensure_ascii=False), flush=True)
        return 0
    if args.id is None:
        print("replay needs the dead letter's id (see: convlife dead-letters list)")
        return 2
    fixed = None
    if args.file is not None:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        with source:
            fixed = source.read()
    try:
        event_id = ops.dead_letters_replay(settings, args.id, fixed)
    except (LookupError, ValueError) as error:
        print(f"not replayed: {error}")
        return 1
    print(f"replayed dead letter {args.id} as event {event_id}")
    return 0


def _reindex(settings: Settings, args: argparse.Namespace) -> int:
    total = ops.reindex(settings)
    print(f"rescheduled {total} open conversations")
    return 0


def _conversation(settings: Settings, args: argparse.Namespace) -> int:
    engine = make_engine(settings.database_url.get_secret_value())
    with engine.connect() as connection:
        found = conversations.get(connection, args.account_id, args.conversation_id)
        if found is None:
            print(f"no conversation {args.conversation_id} in account {args.account_id}")
            return 1
        state, due = found
        account = configuration.account_settings(
            connection, [args.account_id], settings.default_account_settings
        )[args.account_id]
        history = connection.execute(
            select(decisions.c.data)
            .where(
                decisions.c.account_id == args.account_id,
                decisions.c.conversation_id == args.conversation_id,
            )
            .order_by(decisions.c.decided_at)
        ).all()
    engine.dispose()
    print(_explain(state, due, account, datetime.now(UTC)))
    for (data,) in history:
        decision = json.loads(data)
        print(f"  decision {decision['type']} at {decision['decided_at']}: {decision['reason']}")
    return 0


def _explain(state: Any, due: datetime | None, account: Any, now: datetime) -> str:
    lines = [
        f"conversation {state.conversation_id} (account {state.account_id}, contact "
        f"{state.contact_id}, line {state.line_id})",
        f"  status: {state.status.value}",
        f"  last activity: {state.last_activity_at.isoformat()}",
    ]
    if state.assignee_agent_id or state.assignee_group_id or state.assignee_bot:
        who = state.assignee_agent_id and f"agent {state.assignee_agent_id}"
        who = who or (state.assignee_group_id and f"group {state.assignee_group_id}") or "bot"
        lines.append(f"  assigned to: {who}")
    if state.closed_at is not None:
        reason = state.close_reason or "no reason"
        by = f"{state.closed_by.value}" + (
            f" {state.closing_agent_id}" if state.closing_agent_id else ""
        )
        lines.append(f"  closed at {state.closed_at.isoformat()} by {by} ({reason})")
    if due is not None:
        left = due - now
        when = f"in {left}" if left.total_seconds() > 0 else "now (due; the next sweep closes it)"
        lines.append(f"  closes at {due.isoformat()}, {when}")
    elif state.status.value == "open":
        lines.append("  never closes automatically (the account's setting is Never)")
    lines.append(
        f"  account settings: close after {account.inactivity_close_after or 'Never'}, "
        f"reassignment window {account.reassignment_window or 'none'}, "
        f"bot {'on' if account.bot_enabled else 'off'}"
    )
    return "\n".join(lines)


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "set":
        try:
            event = ops.settings_set(
                settings, args.account_id, args.close_after, args.window, args.bot
            )
        except ValueError as error:
            print(f"not set: {error}")
            return 2
        print(f"published {json.dumps(event)}")
        return 0
    engine = make_engine(settings.database_url.get_secret_value())
    with engine.connect() as connection:
        account = configuration.account_settings(
            connection, [args.account_id], settings.default_account_settings
        )[args.account_id]
    engine.dispose()

    def iso(value: Any) -> Any:
        return None if value is None else value.total_seconds()

    print(
        json.dumps(
            {
                "account_id": args.account_id,
                "inactivity_close_after_seconds": iso(account.inactivity_close_after),
                "reassignment_window_seconds": iso(account.reassignment_window),
                "bot_enabled": account.bot_enabled,
            }
        )
    )
    return 0


def _webhooks(settings: Settings, args: argparse.Namespace) -> int:
    return webhooks_command.run(settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
