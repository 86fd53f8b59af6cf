"""Workloads measured as a new user runs convlife: the default `convlife run` (one process tree,
a worker with beat inside, its default concurrency and settings), on either store.

- `inbound_routed`: `contact.inbound` in messages of 500 -> `contact.routed` on the stream, over
  contacts whose state (preloaded through events, untimed) makes a mix of routes.
- `sustained_closes`: N deadlines spread evenly over W seconds (preloaded in bulk, untimed) ->
  `conversation.auto_closed` on the stream: the lag of each close, over time.

Both report the process tree's RSS before and after. Rates are compared with the same run's
Celery no-op rate by the caller (bench/__main__.py).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis import Redis
from sqlalchemy import create_engine, text

from bench.harness import REDIS_URL, Stage, convlife, percentile, rss_bytes, wait_until
from bench.workloads import duplicates
from events.names import DECISIONS_STREAM, METRICS_EVENTS_KEY
from events.publish import Publisher
from store.tables import accounts, conversations

BATCH = 500
ACCOUNTS = 20
WINDOW = "P1D"
"""The accounts' reassignment window: the previous closes (1 h before) are well inside it."""
KINDS = ("previous_agent", "line_owner", "open_conversation")
"""The route each third of the contacts should get, by what was preloaded for them."""


def newcomer_env(database_url: str) -> dict[str, str]:
    """Only what a new user must say: where the broker and the store are. Everything else
    (concurrency, log level, sweep interval) is `convlife run`'s default."""
    return {"CONVLIFE_BROKER_URL": REDIS_URL, "CONVLIFE_DATABASE_URL": database_url}


def convlife_run(
    stage: Stage, database_url: str, label: str, inbound: int, due: int, window: float
) -> dict[str, Any]:
    """One `convlife run` (it migrates, then runs a worker with beat inside) on a fresh Redis db,
    measured twice in turn: `inbound` events routed, then `due` deadlines over `window` seconds.
    One process tree for both, as a new user would leave it running; it starts once, which
    keeps the tiny benchmark short."""
    redis = stage.fresh_redis()
    process = stage.start(convlife("run"), newcomer_env(database_url), f"run-{label}")
    try:
        time.sleep(1)  # the pool's children and beat's first ticks settle before RSS is read
        return {
            "inbound": inbound_routed(redis, process.pid, inbound),
            "closes": sustained_closes(redis, process.pid, database_url, due, window),
        }
    finally:
        stage.stop_all()


def _applied(redis: Redis) -> int:
    return sum(int(value) for value in redis.hvals(METRICS_EVENTS_KEY))


def _entries_added(redis: Redis) -> int:
    """Entries ever added to the decisions stream (Redis 7's count, which trimming never
    lowers)."""
    if not redis.exists(DECISIONS_STREAM):
        return 0
    return int(redis.xinfo_stream(DECISIONS_STREAM)["entries-added"])


def _stream_end(redis: Redis) -> str:
    last = redis.xrevrange(DECISIONS_STREAM, count=1)
    return last[0][0].decode() if last else "0-0"


def preload_events(run: str, contacts: int, now: datetime) -> list[dict[str, Any]]:
    """Configuration and history, as events: each account has a reassignment window and a line
    whose owner is an agent; contact i gets, by i % 3, a conversation an agent closed with a
    reason an hour ago (previous_agent), nothing (line_owner), or an open conversation. (In the
    benchmark each contact then writes several times: a contact's route does not change.)"""
    at = (now - timedelta(hours=2)).isoformat()
    events: list[dict[str, Any]] = []
    for a in range(ACCOUNTS):
        account = f"{run}-a{a}"
        base = {"account_id": account, "occurred_at": at}
        events.append(
            {
                **base,
                "event_id": f"{account}-settings",
                "type": "account.settings_updated",
                "reassignment_window": WINDOW,
            }
        )
        events.append(
            {
                **base,
                "event_id": f"{account}-line",
                "type": "line.updated",
                "line_id": "l1",
                "agent_id": "owner",
            }
        )
    opened_at = (now - timedelta(hours=2)).isoformat()
    closed_at = (now - timedelta(hours=1)).isoformat()
    for i in range(contacts):
        kind = KINDS[i % 3]
        if kind == "line_owner":
            continue
        convo = {
            "account_id": f"{run}-a{i % ACCOUNTS}",
            "conversation_id": f"c{i}",
            "contact_id": f"k{i}",
            "line_id": "l1",
        }
        events.append(
            {
                **convo,
                "event_id": f"{run}-open-{i}",
                "type": "conversation.opened",
                "occurred_at": opened_at,
                "agent_id": f"agent{i % 7}",
            }
        )
        if kind == "previous_agent":
            events.append(
                {
                    **convo,
                    "event_id": f"{run}-close-{i}",
                    "type": "conversation.closed",
                    "occurred_at": closed_at,
                    "closed_by": "agent",
                    "agent_id": f"agent{i % 7}",
                    "close_reason": "resolved",
                }
            )
    return events


def _publish_and_wait(redis: Redis, events: list[dict[str, Any]], what: str) -> None:
    before = _applied(redis)
    with Publisher(REDIS_URL, batch_size=BATCH) as publisher:
        publisher.publish(events)
    wait_until(lambda: _applied(redis) >= before + len(events), 600, what, every=0.1)


def inbound_routed(redis: Redis, pid: int, n: int) -> dict[str, Any]:
    """n `contact.inbound` in messages of 500 -> `contact.routed` on the stream, with the
    default `convlife run`. Timed from the first publish to the last decision's arrival on the
    stream (its entry id is the Redis clock's millisecond). Each route is checked against what
    the contact's preloaded state implies."""
    rss_before = rss_bytes(pid)
    run = f"r{uuid.uuid4().hex[:6]}"
    contacts = max(n // 4, 3)
    now = datetime.now(UTC)
    preload = preload_events(run, contacts, now)
    # Configuration first: conversations are then opened under the window and line it sets.
    _publish_and_wait(redis, preload[: 2 * ACCOUNTS], "configuration applied")
    loaded_at = time.time()
    _publish_and_wait(redis, preload[2 * ACCOUNTS :], "preload applied")
    preload_seconds = time.time() - loaded_at
    inbound = [
        {
            "event_id": f"{run}-in-{j}",
            "type": "contact.inbound",
            "account_id": f"{run}-a{(j % contacts) % ACCOUNTS}",
            "occurred_at": (now + timedelta(microseconds=j)).isoformat(),
            "contact_id": f"k{j % contacts}",
            "line_id": "l1",
        }
        for j in range(n)
    ]
    expected = {event["event_id"]: KINDS[(j % contacts) % 3] for j, event in enumerate(inbound)}
    after = _stream_end(redis)
    added_before = _entries_added(redis)
    routes: dict[str, str] = {}
    duplicates_on_stream = 0
    last_arrival = 0.0
    started = time.time()
    with Publisher(REDIS_URL, batch_size=BATCH) as publisher:
        publisher.publish(inbound)
    # Waited for as the no-op baseline waits for its tasks (one cheap look every 0.1 s), not by
    # reading the stream while the run is timed: reading and parsing each entry as it came took
    # 17-20 µs of CPU per event (~6% of the two cores) from the run being measured. Arrival
    # times are the stream's own entry ids, the same whenever they are read.
    wait_until(
        lambda: _entries_added(redis) >= added_before + n, 600, "decisions on the stream", every=0.1
    )
    give_up = time.monotonic() + 600
    while len(routes) < n and time.monotonic() < give_up:
        for _stream, entries in redis.xread({DECISIONS_STREAM: after}, block=500) or []:
            for entry_id, fields in entries:
                after = entry_id.decode()
                decision = orjson.loads(fields[b"data"])
                event_id = decision.get("inbound_event_id")
                if decision["type"] != "contact.routed" or event_id not in expected:
                    continue
                if event_id in routes:
                    duplicates_on_stream += 1
                routes[event_id] = decision["route"]
                last_arrival = int(after.split("-")[0]) / 1000
    rss_after = rss_bytes(pid)
    if len(routes) < n:
        raise RuntimeError(f"{n} inbound published, {len(routes)} routed on the stream")
    elapsed = last_arrival - started
    misrouted = sum(1 for event_id, route in routes.items() if route != expected[event_id])
    return {
        "events": n,
        "batch": BATCH,
        "contacts": contacts,
        "preload_events": len(preload),
        "preload_seconds": round(preload_seconds, 1),
        "seconds": round(elapsed, 3),
        "events_per_second": round(n / elapsed),
        "routes": dict(Counter(routes.values())),
        "misrouted": misrouted,
        "duplicates_on_stream": duplicates_on_stream,
        **_rss(rss_before, rss_after),
    }


def load_deadlines(
    database_url: str, account: str, n: int, window: float, lead: float
) -> tuple[dict[str, datetime], float]:
    """n open conversations of `account`, inserted in bulk (not through ingest), whose deadlines
    are spread evenly over `window` seconds, the first `lead` seconds after the bulk insert.

    Rows go in with deadlines a day away, then one UPDATE moves them all into place: so the
    bulk insert's own duration never eats into the lead. Returns the deadline of each
    conversation and the seconds the lead had left when the UPDATE committed (below zero: the
    first deadlines passed before the rows were visible, and that shows as lag)."""
    engine = create_engine(database_url)
    close_after = timedelta(days=1)
    parked = datetime.now(UTC) + timedelta(days=1)
    offsets = {f"c{i}": window * i / max(n, 1) for i in range(n)}
    with engine.begin() as connection:
        connection.execute(
            accounts.insert().values(
                account_id=account,
                inactivity_close_after=close_after,
                bot_enabled=False,
                updated_at=parked - timedelta(days=3),
            )
        )
        rows = []
        for conversation_id, offset in offsets.items():
            deadline = parked + timedelta(seconds=offset)
            rows.append(
                {
                    "account_id": account,
                    "conversation_id": conversation_id,
                    "contact_id": f"k{conversation_id}",
                    "line_id": "l1",
                    "status": "open",
                    "last_activity_at": deadline - close_after,
                    "assignee_bot": False,
                    "close_due_at": deadline,
                }
            )
            if len(rows) >= 20_000:
                connection.execute(conversations.insert(), rows)
                rows = []
        if rows:
            connection.execute(conversations.insert(), rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE conversations"))
    # A whole number of seconds, so SQLite can shift its text timestamps keeping the fraction.
    shift = math.ceil((parked - datetime.now(UTC)).total_seconds() - lead)
    start = parked - timedelta(seconds=shift)
    if engine.dialect.name == "sqlite":
        # strftime gets the whole seconds only (substr 1-19): given the fraction it rounds to
        # the millisecond, so a deadline at .9995 s or later came out a whole second late (then
        # the fraction was put back): one conversation a second, closed "late" by 1-1.5 s.
        moved = "strftime('%Y-%m-%d %H:%M:%S', substr({0}, 1, 19), :modifier) || substr({0}, 20)"
    else:
        moved = "{0} - make_interval(secs => :shift)"
    with engine.begin() as connection:
        connection.execute(
            text(
                f"UPDATE conversations SET close_due_at = {moved.format('close_due_at')},"
                f" last_activity_at = {moved.format('last_activity_at')}"
                " WHERE account_id = :a"
            ),
            {"a": account, "shift": shift, "modifier": f"-{shift} seconds"},
        )
    lead_left = (start - datetime.now(UTC)).total_seconds()
    engine.dispose()
    return {c: start + timedelta(seconds=offset) for c, offset in offsets.items()}, lead_left


def sustained_closes(
    redis: Redis, pid: int, database_url: str, n: int, window: float
) -> dict[str, Any]:
    """n deadlines spread evenly over `window` seconds -> `conversation.auto_closed` on the
    stream, with the default `convlife run`: lag = arrival on the stream - deadline, per
    conversation and over time; duplicates on the stream and in the decisions table."""
    rss_before = rss_bytes(pid)
    account = "sustained"
    loaded_at = time.time()
    # The lead covers the UPDATE that puts the deadlines in place (seconds at 100,000s of rows).
    lead = 1 + n / 10_000
    targets, lead_left = load_deadlines(database_url, account, n, window, lead)
    load_seconds = time.time() - loaded_at
    first_deadline = min(targets.values()).timestamp()
    lags: dict[str, float] = {}
    on_stream: Counter[str] = Counter()
    after, last_arrival = _stream_end(redis), first_deadline
    give_up = time.monotonic() + window + 180
    while len(lags) < n and time.monotonic() < give_up:
        for _stream, entries in redis.xread({DECISIONS_STREAM: after}, block=500) or []:
            for entry_id, fields in entries:
                after = entry_id.decode()
                decision = orjson.loads(fields[b"data"])
                conversation = decision.get("conversation_id")
                if decision["type"] != "conversation.auto_closed" or conversation not in targets:
                    continue
                on_stream[conversation] += 1
                arrival = int(after.split("-")[0]) / 1000
                last_arrival = max(last_arrival, arrival)
                lags.setdefault(conversation, arrival - targets[conversation].timestamp())
    time.sleep(1)  # a duplicate relayed late would show up in the stream count too
    for _stream, entries in redis.xread({DECISIONS_STREAM: after}) or []:
        for _entry_id, fields in entries:
            decision = orjson.loads(fields[b"data"])
            if decision["type"] == "conversation.auto_closed":
                on_stream[decision.get("conversation_id")] += 1
    rss_after = rss_bytes(pid)
    values = list(lags.values())
    return {
        "deadlines": n,
        "window_s": window,
        "demand_per_second": round(n / window) if window else n,
        "load_seconds": round(load_seconds, 1),
        "lead_left_s": round(lead_left, 2),
        "closed": len(lags),
        "lag_p50_s": round(percentile(values, 50), 3),
        "lag_p99_s": round(percentile(values, 99), 3),
        "lag_max_s": round(max(values, default=float("nan")), 3),
        # From the first deadline to the last close: the rate convlife kept while it was due.
        "closes_per_second": round(len(lags) / max(last_arrival - first_deadline, window, 0.001)),
        "duplicates_on_stream": sum(count - 1 for count in on_stream.values() if count > 1),
        "duplicate_closes": duplicates(database_url, account),
        "lag_over_time": _over_time(
            [(targets[c].timestamp() - first_deadline, lag) for c, lag in lags.items()], window
        ),
        **_rss(rss_before, rss_after),
    }


def _over_time(points: list[tuple[float, float]], window: float) -> list[dict[str, float]]:
    """Lag by deadline, in at most 100 bins of the window: [{t, count, p50, p99, max}], t the
    bin's start in seconds after the first deadline. Bins, not points: the JSON stays small at
    100,000 closes."""
    width = max(window / 100, 0.1)
    bins: dict[int, list[float]] = {}
    for offset, lag in points:
        bins.setdefault(int(offset / width), []).append(lag)
    return [
        {
            "t": round(index * width, 2),
            "count": len(lags),
            "p50": round(percentile(lags, 50), 3),
            "p99": round(percentile(lags, 99), 3),
            "max": round(max(lags), 3),
        }
        for index, lags in sorted(bins.items())
    ]


def _rss(before: int, after: int) -> dict[str, float]:
    return {
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "rss_growth_mb": round((after - before) / 2**20, 1),
    }
