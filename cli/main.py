"""The `convlife` command."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TextIO

from redis import Redis

from cli import preview as preview_command
from cli import webhooks as webhooks_command
from events.durations import DurationError, humanize
from events.names import DEAD_LETTERS_STREAM, DECISIONS_STREAM, QUEUES
from events.parsing import printable, printable_json
from events.publish import Publisher, PublishError
from observability.health import CHECKS, run_checks
from observability.metrics import serve
from policies import calendar
from policies.configuration import effective, set_by
from policies.inactivity import close_deadline, next_check, warning_at
from policies.routing import why_unavailable
from policies.state import AccountSettings, Agent, Conversation, LineSettings, Status
from service import logs, ops
from service.errors import UsageError, command_error, mask
from service.settings import Settings
from store import history, migrate
from store.stream_reads import entry_id_of, stream_entries
from store.views import ConversationView

ALL_QUEUES = ",".join(QUEUES)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. An operator's mistake or an unreachable service is one line on stderr
    and exit code 2 (service/errors.py says which errors those are); anything else is a bug and
    traces."""
    args = _parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = Settings()
        logs.configure(settings.log_level, settings.log_format)
        result: int = args.command(settings, args)
        return result
    except KeyboardInterrupt:  # Ctrl-C ends `--follow`: not an error, no traceback
        return 130
    except Exception as error:
        failure = command_error(error, **_urls(settings))
        if failure is None:
            raise
        print(f"convlife: {failure}", file=sys.stderr, flush=True)
        return 2


def _urls(settings: Settings | None) -> dict[str, Any]:
    if settings is None:
        return {}
    return {
        "database_url": settings.database_url.get_secret_value(),
        "redis_urls": (settings.broker_url.get_secret_value(), settings.streams_redis_url),
    }


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line (argparse prints the whole usage first), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see: {self.prog} --help)\n")


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def _duration_flag(text: str) -> str:
    """A flag's duration, checked here so a typo is a usage error before anything is sent."""
    try:
        ops.parse_duration(text)
    except DurationError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    publish.add_argument("--batch-size", type=_at_least_one, default=500)

    follow_help = "keep reading new entries"
    from_help = "start, now, or after a stream entry id (default: now with follow, else start)"
    decisions_cmd = command(
        "decisions",
        _decisions,
        "print decisions from the stream; `export`: from the database (every one kept)",
    )
    decisions_cmd.add_argument(
        "action", nargs="?", choices=["export"], help="export: from the database, as JSON Lines"
    )
    decisions_cmd.add_argument("--follow", "-f", action="store_true", help=follow_help)
    decisions_cmd.add_argument("--account", help="only this account's decisions")
    decisions_cmd.add_argument("--from", dest="start", type=_stream_position, help=from_help)
    decisions_cmd.add_argument(
        "--since", type=_moment, help="export: decided at or after (RFC 3339; no offset = UTC)"
    )
    decisions_cmd.add_argument("--until", type=_moment, help="export: decided before this")
    dead = command("dead-letters", _dead_letters, "list, follow or replay refused events")
    dead.add_argument(
        "action",
        nargs="?",
        default="list",
        choices=["list", "follow", "replay"],
        help="list (the default), follow, or replay ID [FILE]",
    )
    dead.add_argument("id", nargs="?", type=int, help="replay: the dead letter's id")
    dead.add_argument(
        "file", nargs="?", help="replay: the fixed event (a JSON file, or - for stdin)"
    )
    dead.add_argument("--limit", type=_at_least_one, default=50)
    dead.add_argument("--account", help="list: only this account's dead letters")
    dead.add_argument("--from", dest="start", type=_stream_position, help=from_help)
    command("reindex", _reindex, "recompute every open conversation's close deadline")

    health = command(
        "health",
        _health,
        "check Redis, database, migrations, beat, Chatwoot delivery; exit 1 if not ok",
    )
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

    gateway = command("gateway", _gateway, "serve the HTTP gateway (POST /v1/events, reads)")
    gateway.add_argument("--host", default="127.0.0.1")
    gateway.add_argument("--port", type=int, default=8000)
    gateway.add_argument("--insecure-no-auth", action="store_true", help="local use only")

    account = command(
        "settings", _settings, "show, set or preview a change of an account's settings"
    )
    account.add_argument("action", choices=["show", "set", "preview"])
    account.add_argument("account_id")
    account.add_argument(
        "--close-after", type=_duration_flag, help="set: P7D, PT24H, seconds (3600), or never"
    )
    account.add_argument(
        "--window", type=_duration_flag, help="set: the reassignment window, likewise"
    )
    account.add_argument("--bot", choices=["on", "off"], help="set: the bot flow")
    account.add_argument(
        "--warn-before",
        type=_duration_flag,
        help="set: a close warning this long before the close (PT5M), or never",
    )
    account.add_argument(
        "--window-counts-business-hours",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="set: whether the reassignment window counts business hours only",
    )
    account.add_argument(
        "--route-to-away-agents",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="set: whether a returning contact goes back to an agent who is away",
    )
    account.add_argument(
        "--json",
        action="store_true",
        help="show, preview: one JSON object, durations in ISO 8601",
    )
    preview_command.add_arguments(account)

    hooks = command("webhooks", _webhooks, "add, list, remove webhooks; show their deliveries")
    webhooks_command.add_arguments(hooks)
    return parser


def _worker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queues", "-Q", default=ALL_QUEUES, help="queues to consume")
    parser.add_argument("--concurrency", "-c", type=_at_least_one, default=None)
    parser.add_argument("--pool", default="prefork", choices=["prefork", "solo", "threads"])


def _worker_argv(settings: Settings, args: argparse.Namespace) -> list[str]:
    argv = ["worker", f"--loglevel={settings.log_level}", f"--queues={args.queues}"]
    argv.append(f"--concurrency={args.concurrency or settings.worker_processes}")
    argv.append(f"--pool={args.pool}")
    return argv


def _announce(settings: Settings) -> None:
    """Say which store and broker a long-running process uses, and publish its defaults."""
    print(
        f"convlife: store {ops.store_name(settings)}, broker "
        f"{mask(settings.broker_url.get_secret_value())}",
        file=sys.stderr,
        flush=True,
    )
    ops.publish_worker_defaults(settings, datetime.now(UTC))


def _celery_app(settings: Settings) -> Any:
    """The Celery app, imported here: Celery stays in worker/, and only the commands that run it
    load it."""
    from worker.app import create_app

    return create_app(settings)


def _run_worker(settings: Settings, argv: list[str]) -> None:
    """A worker of the Celery app in this process, its garbage collector set for a long run."""
    from worker.app import run_worker

    run_worker(_celery_app(settings), argv)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    ops.preflight(settings)
    ops.migrate(settings)
    _announce(settings)
    _run_worker(settings, [*_worker_argv(settings, args), "--beat"])
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    ops.preflight(settings)
    ops.schema_at_head(settings)
    _announce(settings)
    _run_worker(settings, _worker_argv(settings, args))
    return 0


def _beat(settings: Settings, args: argparse.Namespace) -> int:
    # Beat only sends messages: it needs the broker, not the database.
    ops.preflight(settings)
    _celery_app(settings).start(["beat", f"--loglevel={settings.log_level}"])
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    ops.migrate(settings)
    print(f"schema at revision {migrate.head_revision()} in {ops.store_name(settings)}")
    return 0


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    source: TextIO = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    ops.reach_redis(settings.broker_url.get_secret_value())
    publisher = Publisher(settings.broker_url.get_secret_value(), batch_size=args.batch_size)
    lines = 0
    try:
        with source:
            for line in source:
                lines += 1
                if line.strip():
                    # Sent as text: the worker parses it, and dead-letters what is not JSON.
                    publisher.publish(line.strip())
        publisher.close()
    except PublishError as error:
        print(
            f"published {publisher.sent_events} events in {publisher.sent_messages} messages, "
            f"then failed at line {lines}: {error}. Publishing the same input again is safe "
            "(an event id is applied once).",
            file=sys.stderr,
        )
        return 1
    print(f"published {publisher.sent_events} events in {publisher.sent_messages} messages")
    return 0


def _stream_position(text: str) -> str:
    """`--from`: start, now, or a stream entry id (`1700000000000-0`)."""
    if text in ("start", "now") or re.fullmatch(r"\d+(-\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not start, now or a stream entry id")


def _read_stream(
    settings: Settings, stream: str, follow: bool, start: str | None
) -> Iterator[dict[str, str]]:
    """The stream's entries from `start` (start: the oldest kept, now: only new ones, or after an
    entry id; default: now when following, else start), then, with `follow`, each new one."""
    start = start or ("now" if follow else "start")
    redis = Redis.from_url(settings.streams_redis_url, decode_responses=True)
    after = entry_id_of(redis, stream, start)  # before saying so: 'now' is from this moment
    if follow:
        print(f"following {stream} from {start} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    return stream_entries(redis, stream, after, follow)


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
        ops.store_engine(settings),
        Redis.from_url(settings.streams_redis_url),
        Redis.from_url(settings.broker_url.get_secret_value()),
        args.port,
        args.host,
    )
    return 0


def _moment(text: str) -> datetime:
    """A `--since`/`--until` value: RFC 3339 / ISO 8601; without an offset it is UTC."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _decisions(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "export":
        return _decisions_export(settings, args)
    printed = 0
    for fields in _read_stream(settings, DECISIONS_STREAM, args.follow, args.start):
        data = fields.get("data", "{}")
        if args.account and json.loads(data).get("account_id") != args.account:
            continue
        print(printable_json(data), flush=True)
        printed += 1
    if not printed:
        whose = f" of account {args.account}" if args.account else ""
        print(
            f"no decisions{whose} on {DECISIONS_STREAM} from {args.start or 'start'}",
            file=sys.stderr,
        )
    return 0


def _decisions_export(settings: Settings, args: argparse.Namespace) -> int:
    """Decisions from the database (the stream is trimmed), oldest first, one JSON line each."""
    if args.since is None:
        raise UsageError("export needs --since TIME (e.g. 2026-11-25T00:00:00Z)")
    with ops.store_session(settings) as engine:
        for data in history.decisions_between(
            engine, args.since, args.until, account_id=args.account
        ):
            print(printable_json(data))
    return 0


def _dead_letters(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        with ops.store_session(settings) as engine:
            rows = history.newest_dead_letters(engine, args.limit, account_id=args.account)
        for row in rows:
            print(_dead_letter_line(row))
        if not rows:
            whose = f" of account {printable(args.account)}" if args.account else ""
            print(f"no dead letters{whose} in {ops.store_name(settings)}", file=sys.stderr)
        return 0
    if args.action == "follow":
        for fields in _read_stream(settings, DEAD_LETTERS_STREAM, True, args.start):
            print(printable_json(json.dumps(fields, ensure_ascii=False)), flush=True)
        return 0
    if args.id is None:
        raise UsageError("replay needs the dead letter's id (see: convlife dead-letters list)")
    fixed = None
    if args.file is not None:
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
        with source:
            fixed = source.read()
    try:
        event_id = ops.dead_letters_replay(settings, args.id, fixed)
    except (LookupError, ValueError) as error:
        print(printable(f"not replayed: {error}"))
        return 1
    print(f"replayed dead letter {args.id} as event {event_id}")
    return 0


def _dead_letter_line(row: Any) -> str:
    """One dead letter as a JSON line (raw payload cut to 500 characters), control characters
    escaped: the text came from upstream and goes to an operator's terminal."""
    line = {
        "id": row.id,
        "received_at": row.received_at.isoformat(),
        "reason": row.reason,
        "account_id": row.account_id,
        "event_id": row.event_id,
        "error": row.error,
        "replayed_at": row.replayed_at.isoformat() if row.replayed_at else None,
        "raw": row.raw[:500],
    }
    return printable_json(json.dumps(line, ensure_ascii=False))


def _reindex(settings: Settings, args: argparse.Namespace) -> int:
    total = ops.reindex(settings)
    print(f"rescheduled {total} open conversations")
    return 0


def _conversation(settings: Settings, args: argparse.Namespace) -> int:
    view = ops.conversation_view(settings, args.account_id, args.conversation_id)
    if view is None:
        missing = (
            f"no conversation {args.conversation_id} in account {args.account_id} "
            f"(store: {ops.store_name(settings)})"
        )
        print(printable(missing))
        return 1
    print(_explain(view.state, view.close_due_at, view.account, datetime.now(UTC), view.line))
    if view.closing_agent is not None and view.state.closing_agent_id is not None:
        print(
            printable(_closing_agent_line(view.state.closing_agent_id, *view.closing_agent, view))
        )
    for line in _decision_lines(view):
        print(line)
    return 0


def _closing_agent_line(agent_id: str, agent: Agent, open_now: int, view: ConversationView) -> str:
    """Whether the agent who closed it could take the contact back now (presence, capacity),
    as routing would judge it (policies.routing.why_unavailable)."""
    capacity = "no limit" if agent.capacity is None else f"capacity {agent.capacity}"
    state = (
        f"  closing agent {agent_id}: {'active' if agent.active else 'inactive'}, "
        f"{agent.presence.value}, {open_now} open, {capacity}"
    )
    why = why_unavailable(agent_id, agent, open_now, view.settings)
    if why is None:
        return f"{state}; available to take the contact back"
    return f"{state}; not available now ({why})"


def _decision_lines(view: ConversationView) -> list[str]:
    """One line a decision, oldest first; ids and close reasons came from upstream."""
    return [
        printable(f"  decision {made['type']} at {made['decided_at']}: {made['reason']}")
        for made in view.decisions
    ]


def _explain(
    state: Conversation,
    due: datetime | None,
    account: AccountSettings,
    now: datetime,
    line: LineSettings | None = None,
) -> str:
    """What `conversation show` prints; `line` is what the conversation's line overrides."""
    line = line or LineSettings()
    applied = effective(account, line)
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
        # closed_by is set with closed_at; typed optional, so a row without it says so.
        by = (state.closed_by.value if state.closed_by else "unknown") + (
            f" {state.closing_agent_id}" if state.closing_agent_id else ""
        )
        lines.append(f"  closed at {state.closed_at.isoformat()} by {by} ({reason})")
    lines.extend(_deadline_lines(state, due, applied, now, line))
    lines.append(_settings_line(state.line_id, account, line))
    # Every id and the close reason came from upstream: one line each, escapes visible.
    return "\n".join(printable(line) for line in lines)


def _settings_line(line_id: str, account: AccountSettings, line: LineSettings) -> str:
    """The settings that apply to a conversation and where each comes from."""
    applied = effective(account, line)
    shown = {
        "inactivity_close_after": f"close after {_human(applied.inactivity_close_after)}",
        "reassignment_window": f"reassignment window {_human(applied.reassignment_window)}",
        "bot_enabled": f"bot {'on' if applied.bot_enabled else 'off'}",
        "close_warning_before": f"close warning {_warning_setting(applied.close_warning_before)}",
        "route_to_away_agents": f"route to away agents {_yes_no(applied.route_to_away_agents)}",
        "business_hours": _hours_words(applied),
    }
    if not line.values:
        return f"  account settings: {', '.join(shown.values())}"
    for name, value in sorted(line.values.items()):
        shown.setdefault(name, _override_text(name, value))
    parts = [
        f"{text} ({'line' if name in line.values else 'account'})" for name, text in shown.items()
    ]
    return f"  settings (line {line_id} overrides some): {', '.join(parts)}"


def _override_text(name: str, value: Any) -> str:
    """One line override, as `settings show` and `conversation show` print it."""
    if name == "inactivity_close_after":
        return f"close after {_human(value)}"
    if name == "reassignment_window":
        return f"reassignment window {_human(value)}"
    if name == "bot_enabled":
        return f"bot {'on' if value else 'off'}"
    if name == "close_warning_before":
        return f"warning {_human(value)} before the close"
    if name == "business_hours":
        return "every hour counts" if value is None else f"business hours ({value.timezone})"
    return f"{name} {value}"


def _deadline_lines(
    state: Conversation,
    due: datetime | None,
    applied: AccountSettings,
    now: datetime,
    line: LineSettings | None = None,
) -> list[str]:
    """The stored next check (the close, or the close warning before it), the warning's state,
    and, when the settings that apply have changed since it was computed (a default changed
    without `convlife reindex`), what the settings would give instead."""
    if state.status is not Status.OPEN:
        return []
    expected = next_check(state, applied)
    warn_at = warning_at(state, applied)
    warning_pending = due is not None and warn_at is not None and _same(due, warn_at)
    lines = []
    if due is None:
        lines.append("  never closes automatically (no deadline stored)")
    elif warning_pending:
        deadline = close_deadline(state, applied)
        closes = "never" if deadline is None else deadline.isoformat()
        lines.append(f"  closes at {closes}, unless there is activity first")
        lines.append(f"  close warning due at {due.isoformat()}, {_when(due, now)}")
    else:
        lines.append(f"  closes at {due.isoformat()}, {_when(due, now)}")
    lines.extend(_business_hours_lines(state, applied, now))
    if state.close_warned_at is not None:
        lines.append(
            f"  close warning sent at {state.close_warned_at.isoformat()} (for this idle period)"
        )
    if due is not None:
        checked = "the close warning" if warning_pending else "the close"
        lines.append(f"  next check: {due.isoformat()} ({checked})")
    if _same(due, expected):
        return lines
    setting = _human(applied.inactivity_close_after)
    if applied.business_hours is not None and applied.inactivity_close_after is not None:
        setting += " of business hours"
    if applied.close_warning_before is not None:
        setting += f", warn {_human(applied.close_warning_before)} before"
    who = set_by("inactivity_close_after", state.line_id, line or LineSettings())
    whose = "the account's setting" if who == "the account" else f"the setting of {who}"
    then = "never" if expected is None else expected.isoformat()
    what = "next check" if applied.close_warning_before is not None else "closes"
    return [
        *lines,
        f"  but {whose} is now close after {setting} ({what}: {then}): the "
        "deadline was computed under an earlier setting; `convlife reindex` applies the new one",
    ]


def _same(stored: datetime | None, computed: datetime | None) -> bool:
    """Whether a stored time is the computed one (to the second: stores round differently)."""
    if stored is None or computed is None:
        return stored is computed
    return abs(stored - computed) < timedelta(seconds=1)


def _when(at: datetime, now: datetime) -> str:
    left = at - now
    return f"in {humanize(left)}" if left.total_seconds() >= 1 else "now (due; next sweep)"


def _warning_setting(before: timedelta | None) -> str:
    return "none" if before is None else f"{humanize(before)} before the close"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _business_hours_lines(
    state: Conversation, account: AccountSettings, now: datetime
) -> list[str]:
    """With business hours the deadline is far from last activity + setting on the clock: say
    that only business hours count, how much has counted, and whether the timer runs now."""
    hours, close_after = account.business_hours, account.inactivity_close_after
    if hours is None or close_after is None:
        return []
    counted = calendar.counted_between(state.last_activity_at, now, hours)
    running = (
        "open now: the timer runs"
        if calendar.is_open(now, hours)
        else ("closed now: the timer is paused")
    )
    return [
        f"  the deadline counts business hours only ({hours.timezone}): {humanize(counted)} of "
        f"{humanize(close_after)} counted so far; business hours are {running}"
    ]


def _hours_words(account: AccountSettings) -> str:
    hours = account.business_hours
    if hours is None:
        return "every hour counts"
    window = " (the reassignment window too)" if account.window_counts_business_hours else ""
    return f"business hours in {hours.timezone}{window}"


def _human(duration: timedelta | None) -> str:
    return "never" if duration is None else humanize(duration)


def _gateway(settings: Settings, args: argparse.Namespace) -> int:
    from gateway.serve import serve  # imported here: the other commands need no web stack

    return serve(settings, args.host, args.port, insecure_no_auth=args.insecure_no_auth)


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "preview":
        return preview_command.run(settings, args)
    if args.line is not None:
        raise UsageError("--line: only for settings preview")
    away = args.route_to_away_agents
    counts = args.window_counts_business_hours
    changes = {
        "--close-after": args.close_after,
        "--window": args.window,
        "--bot": args.bot,
        "--route-to-away-agents" if away else "--no-route-to-away-agents": away,
        "--warn-before": args.warn_before,
        "--business-hours": args.business_hours,
        "--window-counts-business-hours" if counts else "--no-window-counts-business-hours": counts,
    }
    given = [flag for flag, value in changes.items() if value is not None]
    if args.action == "set":
        if not given:
            raise UsageError(
                "settings set needs at least one of --close-after, --window, --bot, "
                "--[no-]route-to-away-agents, --warn-before, --business-hours, "
                "--[no-]window-counts-business-hours"
            )
        hours = args.business_hours
        event = ops.settings_set(
            settings,
            args.account_id,
            args.close_after,
            args.window,
            args.bot,
            route_to_away_agents=away,
            warn_before=args.warn_before,
            business_hours="unchanged"
            if hours is None
            else preview_command.business_hours_from(hours),
            window_counts_business_hours=counts,
        )
        print(f"published {json.dumps(event)}")
        return 0
    if given:
        raise UsageError(f"{', '.join(given)}: only for settings set (settings show takes --json)")
    view = ops.account_view(settings, args.account_id)
    account = view.settings
    if args.json:
        shown = {
            "account_id": args.account_id,
            "inactivity_close_after": ops.iso_duration(account.inactivity_close_after),
            "reassignment_window": ops.iso_duration(account.reassignment_window),
            "bot_enabled": account.bot_enabled,
            "route_to_away_agents": account.route_to_away_agents,
            "close_warning_before": ops.iso_duration(account.close_warning_before),
            "business_hours": None
            if account.business_hours is None
            else account.business_hours.model_dump(mode="json"),
            "window_counts_business_hours": account.window_counts_business_hours,
            "source": view.source,
            "store": ops.store_name(settings),
            # Only the lines that override a setting; the others follow the account.
            "lines": {
                line_id: ops.overrides_shown(overrides) for line_id, overrides in view.lines.items()
            },
        }
        print(json.dumps(shown))
        return 0
    print(printable(f"account {args.account_id}: {view.source}"))
    print(f"  close after: {_human(account.inactivity_close_after)}")
    print(f"  reassignment window: {_human(account.reassignment_window)}")
    print(f"  bot: {'on' if account.bot_enabled else 'off'}")
    print(f"  route to away agents: {_yes_no(account.route_to_away_agents)}")
    print(f"  close warning: {_warning_setting(account.close_warning_before)}")
    print(f"  counted hours: {_hours_words(account)}")
    if view.lines:
        print("  lines that override settings (the rest of each line follows the account):")
    for line_id, overrides in view.lines.items():
        texts = [_override_text(name, value) for name, value in sorted(overrides.values.items())]
        print(printable(f"    line {line_id}: {', '.join(texts)}"))
    print(f"  store: {ops.store_name(settings)}")
    return 0


def _webhooks(settings: Settings, args: argparse.Namespace) -> int:
    return webhooks_command.run(settings, args)


if __name__ == "__main__":
    raise SystemExit(main())
