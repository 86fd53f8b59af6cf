"""The measurements. Each starts its own processes on the Stage and reports figures."""

from __future__ import annotations

import json
import random
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from redis import Redis
from sqlalchemy import create_engine, func, select, text

from bench.harness import REDIS_URL, Stage, celery, convlife, percentile, rss_bytes, wait_until
from events.names import DECISIONS_STREAM, METRICS_EVENTS_KEY
from events.publish import Publisher
from store.tables import conversations, decisions, processed_events

ACCOUNTS = 20
TRICKLE_PER_SECOND = 50
"""Other accounts' events per second during the burst."""


def convlife_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        "CONVLIFE_BROKER_URL": REDIS_URL,
        "CONVLIFE_DATABASE_URL": database_url,
        "CONVLIFE_LOG_LEVEL": "INFO",
        **extra,
    }


def event_stream(n: int, run: str, start: datetime) -> list[dict[str, Any]]:
    """A realistic mix over n/8 conversations in 20 accounts: opens, messages, notes,
    transfers, closes, inbound contacts."""
    events: list[dict[str, Any]] = []
    conversations_count = max(n // 8, 1)
    for i in range(n):
        number = random.randrange(conversations_count)
        account = f"{run}-a{number % ACCOUNTS}"
        at = (start + timedelta(microseconds=i)).isoformat()
        base = {"event_id": f"{run}-{i}", "account_id": account, "occurred_at": at}
        convo = {"conversation_id": f"c{number}", "contact_id": f"k{number}", "line_id": "l1"}
        roll = random.random()
        if roll < 0.10:
            events.append(
                {**base, "type": "contact.inbound", "contact_id": f"k{number}", "line_id": "l1"}
            )
        elif roll < 0.20:
            events.append({**base, **convo, "type": "conversation.opened", "agent_id": "ana"})
        elif roll < 0.25:
            events.append(
                {
                    **base,
                    **convo,
                    "type": "conversation.closed",
                    "closed_by": "agent",
                    "agent_id": "ana",
                    "close_reason": "resolved",
                }
            )
        elif roll < 0.28:
            events.append(
                {**base, **convo, "type": "conversation.transferred", "group_id": "sales"}
            )
        else:
            events.append({**base, **convo, "type": "conversation.message", "sender": "contact"})
    return events


def ingest(
    stage: Stage, database_url: str, n: int, label: str, batch_size: int = 500
) -> dict[str, Any]:
    """Published (in messages of `batch_size` events) -> state committed, through real workers
    (one worker, 2 processes)."""
    stage.fresh_redis()
    env = convlife_env(database_url)
    worker = stage.start(convlife("worker", "-Q", "convlife.events", "-c", "2"), env, f"w-{label}")
    run = f"r{uuid.uuid4().hex[:6]}"
    events = event_stream(n, run, datetime.now(UTC) - timedelta(minutes=5))
    redis = Redis.from_url(REDIS_URL)

    def applied() -> int:
        # The workers' own counter, incremented once per task after its commit: polling it
        # costs the database nothing, unlike a COUNT(*) over the applied ids.
        return sum(int(value) for value in redis.hvals(METRICS_EVENTS_KEY))

    started = time.time()
    with Publisher(REDIS_URL, batch_size=batch_size) as publisher:
        publisher.publish(events)
    published = time.time()
    done = wait_until(lambda: applied() >= n, 600, f"{n} events committed", every=0.05)
    stage.stop_all()
    del worker
    engine = create_engine(database_url)
    with engine.connect() as connection:
        committed = connection.execute(
            select(func.count()).where(processed_events.c.account_id.like(f"{run}-%"))
        ).scalar_one()
    engine.dispose()
    if committed != n:
        raise RuntimeError(f"{n} events published, {committed} applied")
    elapsed = done - started
    return {
        "events": n,
        "batch": batch_size,
        "seconds": round(elapsed, 3),
        "publish_seconds": round(published - started, 3),
        "events_per_second": round(n / elapsed),
    }


def start_noop_worker(stage: Stage) -> subprocess.Popen[bytes]:
    """The baseline's worker: plain Celery (bench/noop_app.py), 2 processes, same broker."""
    worker = stage.start(
        celery("bench.noop_app", "worker", "-Q", "bench.noop", "-c", "2", "--loglevel=WARNING"),
        {"BENCH_REDIS": REDIS_URL},
        "noop",
        ready="",
    )
    time.sleep(3)  # no ready line at WARNING: give the pool time to start
    return worker


def celery_noop(stage: Stage, n: int) -> dict[str, Any]:
    """Baseline: one Celery task per event, a no-op task, same broker, same 2 processes."""
    from bench.noop_app import COUNTER, app

    redis = stage.fresh_redis()
    start_noop_worker(stage)
    events = event_stream(n, "noop", datetime.now(UTC))
    started = time.time()
    with app.producer_or_acquire() as producer:
        for event in events:
            app.send_task("bench.noop", args=[event], producer=producer)
    published = time.time()
    done = wait_until(lambda: int(redis.get(COUNTER) or 0) >= n, 600, "no-op tasks", every=0.1)
    stage.stop_all()
    elapsed = done - started
    return {
        "events": n,
        "seconds": round(elapsed, 3),
        "publish_seconds": round(published - started, 3),
        "publish_per_second": round(n / (published - started)),
        "events_per_second": round(n / elapsed),
    }


def naive_eta(stage: Stage, n: int) -> dict[str, Any]:
    """Baseline: the worker RSS the naive design costs, one 7-day countdown task per open
    conversation, all held in worker memory."""
    from bench.naive_app import SEVEN_DAYS, app

    redis = stage.fresh_redis()
    worker = stage.start(
        celery("bench.naive_app", "worker", "-Q", "bench.naive", "-c", "2", "--loglevel=WARNING"),
        {"BENCH_REDIS": REDIS_URL},
        "naive",
        ready="",
    )
    time.sleep(3)
    before = rss_bytes(worker.pid)
    with app.producer_or_acquire() as producer:
        for i in range(n):
            app.send_task(
                "bench.close_check", args=[f"c{i}"], countdown=SEVEN_DAYS, producer=producer
            )
    wait_until(lambda: redis.llen("bench.naive") == 0, 600, "ETA tasks taken", every=0.2)
    wait_until(lambda: redis.hlen("unacked") >= n, 600, "ETA tasks held", every=0.2)
    time.sleep(2)
    after = rss_bytes(worker.pid)
    stage.stop_all()
    return {
        "pending_eta_tasks": n,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_after_mb": round(after / 2**20, 1),
        "rss_growth_mb": round((after - before) / 2**20, 1),
        "bytes_per_task": round((after - before) / n),
        "extrapolated_growth_for_1m_mb": round((after - before) / n * 1_000_000 / 2**20),
    }


def load_open_conversations(
    database_url: str, account: str, n: int, due: int, window: float, close_after: timedelta
) -> list[tuple[str, datetime]]:
    """Insert n open conversations directly (COPY-speed bulk insert, not through ingest):
    `due` of them reach their deadline spread over the next `window` seconds (starting in 5 s),
    the rest hours away. Returns (conversation_id, deadline) of the due ones."""
    engine = create_engine(database_url)
    now = datetime.now(UTC)
    due_ids = []
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO accounts (account_id, inactivity_close_after, reassignment_window,"
                " bot_enabled, updated_at) VALUES (:a, :c, NULL, false, :t)"
            ),
            {"a": account, "c": close_after, "t": now - timedelta(days=1)},
        )
        rows = []
        # The bulk that is not due first; the due sample last, timed from when it is written,
        # so the load's own duration never counts as lag.
        for i in reversed(range(n)):
            if i < due:
                if i == due - 1:
                    now = datetime.now(UTC)
                deadline = now + timedelta(seconds=5 + window * i / max(due, 1))
                due_ids.append((f"c{i}", deadline))
            else:
                deadline = now + timedelta(hours=1 + 10 * random.random())
            last = deadline - close_after
            rows.append(
                {
                    "account_id": account,
                    "conversation_id": f"c{i}",
                    "contact_id": f"k{i}",
                    "line_id": "l1",
                    "status": "open",
                    "last_activity_at": last,
                    "assignee_bot": False,
                    "close_due_at": deadline,
                }
            )
            if len(rows) >= 20_000 or i == due:
                connection.execute(conversations.insert(), rows)
                rows = []
        if rows:
            connection.execute(conversations.insert(), rows)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE conversations"))
    engine.dispose()
    return due_ids


def close_lag(stage: Stage, open_count: int, due: int, window: float) -> dict[str, Any]:
    """Deadline -> auto_closed on the stream, with `open_count` open conversations; and the
    worker's RSS from 0 open conversations to `open_count`; and Redis bytes per conversation."""
    database_url = stage.fresh_postgres()
    redis = stage.fresh_redis()
    env = convlife_env(database_url)
    worker = stage.start(convlife("worker", "-c", "2"), env, "lag-worker")
    stage.start(convlife("beat"), env, "lag-beat", ready="")
    time.sleep(3)
    rss_empty = rss_bytes(worker.pid)
    redis_before = int(redis.info("memory")["used_memory"])
    close_after = timedelta(days=1)
    loaded_at = time.time()
    targets = dict(
        load_open_conversations(database_url, "lag", open_count, due, window, close_after)
    )
    load_seconds = time.time() - loaded_at
    redis_after = int(redis.info("memory")["used_memory"])
    lags: dict[str, float] = {}
    last_id = "0-0"
    deadline = time.monotonic() + window + 60
    while len(lags) < len(targets) and time.monotonic() < deadline:
        for _stream, entries in redis.xread({DECISIONS_STREAM: last_id}, block=500) or []:
            for entry_id, fields in entries:
                last_id = entry_id.decode()
                decision = orjson.loads(fields[b"data"])
                conversation = decision.get("conversation_id")
                if decision["type"] == "conversation.auto_closed" and conversation in targets:
                    on_stream = int(last_id.split("-")[0]) / 1000
                    lags[conversation] = on_stream - targets[conversation].timestamp()
    rss_loaded = rss_bytes(worker.pid)
    stage.stop_all()
    duplicate_closes = duplicates(database_url, "lag")
    values = list(lags.values())
    return {
        "open_conversations": open_count,
        "load_seconds": round(load_seconds, 1),
        "due_sampled": len(targets),
        "closed": len(lags),
        "lag_p50_s": round(percentile(values, 50), 3),
        "lag_p99_s": round(percentile(values, 99), 3),
        "lag_max_s": round(max(values, default=float("nan")), 3),
        "duplicate_closes": duplicate_closes,
        "lags": sorted(values),
        "worker_rss_empty_mb": round(rss_empty / 2**20, 1),
        "worker_rss_loaded_mb": round(rss_loaded / 2**20, 1),
        "worker_rss_growth_mb": round((rss_loaded - rss_empty) / 2**20, 1),
        "redis_bytes_per_open_conversation": round((redis_after - redis_before) / open_count, 2),
    }


def burst(stage: Stage, size: int) -> dict[str, Any]:
    """A settings change makes `size` conversations due at once; meanwhile other accounts'
    contacts keep writing: how long until every close is on the decision stream, and how late
    the others' decisions."""
    database_url = stage.fresh_postgres()
    redis = stage.fresh_redis()
    env = convlife_env(database_url)
    # The split docs/operations.md gives: an ingest worker of the default concurrency (the
    # CPU count), a niced closer of 2, one beat.
    stage.start(convlife("worker", "-Q", "convlife.events"), env, "burst-ingest")
    # Closers run at a lower CPU priority (as docs/operations.md advises): a burst of closes
    # then takes the CPU that ingest leaves, instead of making other accounts wait.
    stage.start(
        [
            "nice",
            "-n",
            "10",
            *convlife("worker", "-Q", "convlife.closes,convlife.outbox", "-c", "2"),
        ],
        env,
        "burst-closer",
    )
    stage.start(convlife("beat"), env, "burst-beat", ready="")
    time.sleep(2)
    load_open_conversations(database_url, "burst", size, 0, 0, timedelta(days=3650))
    engine = create_engine(database_url)

    def closed() -> int:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).where(
                        decisions.c.account_id == "burst",
                        decisions.c.type == "conversation.auto_closed",
                    )
                ).scalar_one()
            )

    lags: list[float] = []
    sent: dict[str, float] = {}
    # Closes are counted as they reach the stream, which this loop reads anyway: polling the
    # database with a count of 100,000 decisions five times a second was a fifth of
    # PostgreSQL's busy time during the burst, the benchmark slowing what it measures.
    closed_on_stream: set[str] = set()
    publisher = Publisher(REDIS_URL, batch_size=500, linger=0.01)
    started = time.time()
    publisher.publish(
        {
            "event_id": "burst-settings",
            "type": "account.settings_updated",
            "account_id": "burst",
            "occurred_at": datetime.now(UTC).isoformat(),
            "inactivity_close_after": 1,
        }
    )
    publisher.flush()
    last_id, i = "0-0", 0
    finished: float | None = None
    give_up = time.monotonic() + 300
    next_send = time.monotonic()
    while time.monotonic() < give_up:
        # Other accounts write at a steady TRICKLE_PER_SECOND, each event its own message (the
        # worst case for latency): a fixed rate, so the lag measures convlife, not a queue
        # the benchmark itself builds by sending as fast as decisions come back.
        if time.monotonic() >= next_send:
            next_send += 1 / TRICKLE_PER_SECOND
            event_id = f"trickle-{i}"
            sent[event_id] = time.time()
            publisher.publish(
                {
                    "event_id": event_id,
                    "type": "contact.inbound",
                    "account_id": f"other-{i % 5}",
                    "occurred_at": datetime.now(UTC).isoformat(),
                    "contact_id": f"k{i}",
                    "line_id": "l1",
                }
            )
            publisher.flush()
            i += 1
        wait_ms = max(1, int((next_send - time.monotonic()) * 1000))
        for _stream, entries in redis.xread({DECISIONS_STREAM: last_id}, block=wait_ms) or []:
            for entry_id, fields in entries:
                last_id = entry_id.decode()
                decision = orjson.loads(fields[b"data"])
                on_stream = int(last_id.split("-")[0]) / 1000
                if decision["type"] == "contact.routed" and decision["inbound_event_id"] in sent:
                    lags.append(on_stream - sent[decision["inbound_event_id"]])
                elif (
                    decision["type"] == "conversation.auto_closed"
                    and decision["account_id"] == "burst"
                ):
                    closed_on_stream.add(decision["conversation_id"])
                    if finished is None and len(closed_on_stream) >= size:
                        finished = on_stream
        # Done when all are closed and the trickle has caught up (or had 5 s to).
        if finished is not None and (len(lags) >= i - 2 or time.time() - finished > 5):
            break
    publisher.close()
    stage.stop_all()
    result = {
        "conversations_due_at_once": size,
        "all_closed_seconds": round(finished - started, 2) if finished else None,
        "closed": closed(),
        "duplicate_closes": duplicates(database_url, "burst"),
        "other_accounts_events": len(lags),
        "other_lag_p50_s": round(percentile(lags, 50), 3),
        "other_lag_p99_s": round(percentile(lags, 99), 3),
        "other_lag_max_s": round(max(lags, default=float("nan")), 3),
    }
    engine.dispose()
    return result


def duplicates(database_url: str, account: str) -> int:
    """Conversations of the account with more than one auto_closed decision (must be 0)."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        per_conversation = (
            select(decisions.c.conversation_id)
            .where(
                decisions.c.account_id == account, decisions.c.type == "conversation.auto_closed"
            )
            .group_by(decisions.c.conversation_id)
            .having(func.count() > 1)
            .subquery()
        )
        count = int(
            connection.execute(select(func.count()).select_from(per_conversation)).scalar_one()
        )
    engine.dispose()
    return count


HTTP_BATCH = 100
HTTP_CLIENTS = 4
HTTP_SECRET = "bench-secret"


def http_ingest(stage: Stage, database_url: str, n: int, label: str) -> dict[str, Any]:
    """The same ingest as `ingest`, but in through `convlife gateway`: signed POSTs of 100
    events on keep-alive connections (4 client threads), verified, enqueued, then committed by
    the same worker. Reports the end-to-end rate and the rate the gateway answered 202s at."""
    import http.client
    import threading

    from bench.harness import free_port
    from events.signing import signed_headers

    stage.fresh_redis()
    env = convlife_env(database_url)
    stage.start(convlife("worker", "-Q", "convlife.events", "-c", "2"), env, f"w-{label}")
    port = free_port()
    stage.start(
        convlife("gateway", "--host", "127.0.0.1", "--port", str(port)),
        {**env, "CONVLIFE_GATEWAY_SECRETS": HTTP_SECRET},
        f"gateway-{label}",
        ready="Application startup complete",
    )
    run = f"r{uuid.uuid4().hex[:6]}"
    events = event_stream(n, run, datetime.now(UTC) - timedelta(minutes=5))
    bodies = [json.dumps(events[i : i + HTTP_BATCH]).encode() for i in range(0, n, HTTP_BATCH)]
    redis = Redis.from_url(REDIS_URL)
    failures: list[str] = []

    def client(share: list[bytes]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for body in share:
                headers = {"Content-Type": "application/json"}
                headers |= signed_headers(HTTP_SECRET, int(time.time()), body)
                connection.request("POST", "/v1/events", body=body, headers=headers)
                answer = connection.getresponse()
                answer.read()
                if answer.status != 202:
                    failures.append(f"HTTP {answer.status}")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=client, args=(bodies[i::HTTP_CLIENTS],))
        for i in range(HTTP_CLIENTS)
    ]
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answered = time.time()
    if failures:
        stage.stop_all()
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    done = wait_until(
        lambda: sum(int(v) for v in redis.hvals(METRICS_EVENTS_KEY)) >= n,
        600,
        f"{n} events committed",
        every=0.05,
    )
    stage.stop_all()
    engine = create_engine(database_url)
    with engine.connect() as connection:
        committed = connection.execute(
            select(func.count()).where(processed_events.c.account_id.like(f"{run}-%"))
        ).scalar_one()
    engine.dispose()
    if committed != n:
        raise RuntimeError(f"{n} events posted, {committed} applied")
    return {
        "events": n,
        "batch": HTTP_BATCH,
        "clients": HTTP_CLIENTS,
        "requests": len(bodies),
        "seconds": round(done - started, 3),
        "answer_seconds": round(answered - started, 3),
        "accepted_per_second": round(n / (answered - started)),
        "events_per_second": round(n / (done - started)),
    }
