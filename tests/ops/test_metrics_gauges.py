"""The database gauges cost a bounded number of index reads per scrape, whatever the data, and a
flood of scrapes within the cache window costs none (issue 9, item 7: anyone who reaches the
port must not be able to drive database load)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import create_engine, delete, event, func, insert, select, text
from sqlalchemy.engine import Engine

from events.decisions import ContactRouted, Route
from events.names import HEARTBEAT_KEY
from observability import metrics
from observability.metrics import ConvlifeCollector, DatabaseGauges, read_database_gauges
from store import outbox
from store.migrate import upgrade
from store.tables import conversations, dead_letters, decision_outbox, due_scans
from tests.conftest import IN_CI, POSTGRES_ADMIN
from tests.support import new_id

LONG_AGO = datetime(2001, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this module's own: the gauges count every row of a table, and the
    rows these tests commit (due conversations, unpublished decisions) must not reach the sweeps
    and relays that other modules' tests run on the suite's shared database."""
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"convlife_test_gauges_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:
        admin.dispose()
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN} is not reachable: {error}")
        pytest.skip(f"PostgreSQL at {POSTGRES_ADMIN} is not reachable: {error}")
    url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement the engine sends, except SQLite's BEGIN IMMEDIATE."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield sent
    event.remove(engine, "before_cursor_execute", record)


def add_conversations(
    engine: Engine, n: int, *, status: str = "open", due_at: datetime | None = None
) -> None:
    account = new_id("acct")
    rows = [
        {
            "account_id": account,
            "conversation_id": new_id("conv"),
            "contact_id": new_id("contact"),
            "line_id": "line-1",
            "status": status,
            "last_activity_at": LONG_AGO,
            "assignee_bot": False,
            "close_due_at": due_at,
        }
        for _ in range(n)
    ]
    with engine.begin() as connection:
        connection.execute(insert(conversations), rows)


def add_decisions(engine: Engine, n: int, *, published: bool) -> None:
    made = [
        ContactRouted(
            decision_id=new_id("decision")[:36],
            account_id=new_id("acct"),
            decided_at=LONG_AGO,
            reason="test",
            inbound_event_id=new_id("e"),
            contact_id=new_id("contact"),
            line_id="line-1",
            route=Route.BOT,
        )
        for _ in range(n)
    ]
    with engine.begin() as connection:
        stored = outbox.add_decisions(connection, made, LONG_AGO)  # in the outbox: unpublished
        if published:  # as the relay leaves it: its outbox row deleted
            first = decision_outbox.c.first_decision_id
            connection.execute(delete(decision_outbox).where(first == min(stored)))


def add_dead_letters(engine: Engine, n: int, *, published: bool) -> None:
    rows = [
        {
            "received_at": LONG_AGO,
            "error": "not JSON",
            "raw": "x",
            "published_at": LONG_AGO if published else None,
        }
        for _ in range(n)
    ]
    with engine.begin() as connection:
        connection.execute(insert(dead_letters), rows)


def families(collector: ConvlifeCollector) -> dict[str, float]:
    """Each single-sample family's value, by name."""
    values = {}
    for family in collector.collect():
        if len(family.samples) == 1:
            values[family.name] = family.samples[0].value
    return values


def test_the_gauges_are_exact_on_small_data(engine: Engine) -> None:
    now = LONG_AGO + timedelta(minutes=10)
    before = read_database_gauges(engine, now)
    add_conversations(engine, 2, due_at=LONG_AGO)  # due 10 minutes ago
    add_conversations(engine, 1, due_at=LONG_AGO + timedelta(minutes=9))  # due 1 minute ago
    add_conversations(engine, 4, due_at=now + timedelta(days=1))  # not due yet
    add_conversations(engine, 3, status="closed")
    add_decisions(engine, 2, published=False)
    add_decisions(engine, 5, published=True)
    add_dead_letters(engine, 1, published=False)
    add_dead_letters(engine, 2, published=True)

    after = read_database_gauges(engine, now)

    assert after.open_conversations - before.open_conversations == 7
    assert after.due_not_closed - before.due_not_closed == 3
    assert after.outbox_backlog - before.outbox_backlog == 3
    # Every decision waits for the webhook fan-out, on the stream or not: none has run here.
    assert after.webhook_fan_out_backlog - before.webhook_fan_out_backlog == 7
    assert after.oldest_due_seconds >= 600


def test_nothing_due_reads_zero_and_the_oldest_due_age_is_measured_from_now(
    engine: Engine,
) -> None:
    long_before = LONG_AGO - timedelta(days=365 * 30)
    assert read_database_gauges(engine, long_before).due_not_closed == 0
    assert read_database_gauges(engine, long_before).oldest_due_seconds == 0

    add_conversations(engine, 1, due_at=long_before - timedelta(seconds=90))

    gauges = read_database_gauges(engine, long_before)
    assert gauges.due_not_closed == 1
    assert gauges.oldest_due_seconds == pytest.approx(90)


def test_a_pending_due_scan_counts_as_due_since_the_change_that_made_it(
    engine: Engine,
) -> None:
    # The conversations a settings change made due at once keep their stored deadline until
    # the sweep takes them: the oldest-due age must still see them.
    long_before = LONG_AGO - timedelta(days=365 * 40)
    account = new_id("acct")
    with engine.begin() as connection:
        connection.execute(
            insert(due_scans).values(
                account_id=account, line_id="", since=long_before - timedelta(seconds=45)
            )
        )
    try:
        assert read_database_gauges(engine, long_before).oldest_due_seconds == pytest.approx(45)
    finally:  # the database is the module's: the other tests must not see the scan
        with engine.begin() as connection:
            connection.execute(delete(due_scans).where(due_scans.c.account_id == account))


def test_counts_stop_at_the_cap_so_a_count_reads_a_bounded_number_of_index_entries(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "GAUGE_COUNT_CAP", 5)
    due_at = LONG_AGO - timedelta(days=1000)
    add_conversations(engine, 8, due_at=due_at)

    gauges = read_database_gauges(engine, due_at + timedelta(seconds=1))

    assert gauges.due_not_closed == 5
    assert gauges.outbox_backlog <= 10


def test_a_scrape_runs_a_bounded_number_of_statements_whatever_the_data(
    engine: Engine, redis: Redis, statements: list[str]
) -> None:
    collector = ConvlifeCollector(engine, redis, redis)
    families(collector)
    few = len(statements)
    add_conversations(engine, 300, due_at=LONG_AGO)
    add_decisions(engine, 50, published=False)
    statements.clear()

    families(collector)

    assert 1 <= len(statements) <= 3, statements
    assert len(statements) == few
    assert not any("count(*)" in s.lower() and "limit" not in s.lower() for s in statements)


def test_scrapes_within_the_cache_window_run_no_statement(
    engine: Engine, redis: Redis, statements: list[str]
) -> None:
    clock = FakeClock()
    collector = ConvlifeCollector(engine, redis, redis, cache_seconds=5, clock=clock)
    first = families(collector)
    assert statements
    statements.clear()

    for _ in range(50):
        clock.now += 0.09
        assert families(collector)["convlife_due_not_closed"] == first["convlife_due_not_closed"]
    assert statements == []

    clock.now += 5
    families(collector)
    assert 1 <= len(statements) <= 3


def test_concurrent_scrapes_share_one_reading(
    engine: Engine, redis: Redis, statements: list[str]
) -> None:
    collector = ConvlifeCollector(engine, redis, redis, cache_seconds=5)
    families(collector)
    one_round = len(statements)
    statements.clear()
    collector._cached = None  # the next scrape must read; the others then share its reading

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: families(collector), range(64)))

    assert len(statements) == one_round


def test_the_last_sweep_gauge_reads_the_heartbeat_as_unix_time(
    engine: Engine, redis: Redis
) -> None:
    collector = ConvlifeCollector(engine, redis, redis)
    swept_at = datetime.now(UTC) - timedelta(seconds=42)
    redis.set(HEARTBEAT_KEY, swept_at.isoformat())

    value = families(collector)["convlife_last_sweep_timestamp_seconds"]

    assert value == pytest.approx(swept_at.timestamp())


@pytest.mark.parametrize("stored", [None, "not a time"])
def test_no_readable_heartbeat_reads_zero_so_the_stale_beat_alert_fires(
    engine: Engine, redis: Redis, stored: str | None
) -> None:
    collector = ConvlifeCollector(engine, redis, redis)
    redis.delete(HEARTBEAT_KEY)
    if stored is not None:
        redis.set(HEARTBEAT_KEY, stored)

    assert families(collector)["convlife_last_sweep_timestamp_seconds"] == 0


def test_open_conversations_on_a_large_postgresql_table_come_from_planner_statistics(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, statements: list[str]
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no planner statistics; it counts up to the cap")
    add_conversations(engine, 30)
    add_conversations(engine, 12, status="closed")
    with engine.begin() as connection:
        connection.execute(text("ANALYZE conversations"))
        exact = connection.execute(
            select(func.count()).where(conversations.c.status == "open")
        ).scalar_one()
    monkeypatch.setattr(metrics, "SMALL_TABLE_BYTES", -1)  # treat the table as large
    statements.clear()

    gauges: DatabaseGauges = read_database_gauges(engine, LONG_AGO)

    # ANALYZE samples every row of a table this small, so the estimate is the count.
    assert gauges.open_conversations == exact
    assert not any("conversations.status" in s for s in statements), statements


def test_an_estimate_without_statistics_is_not_a_number_rather_than_a_scan(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    monkeypatch.setattr(metrics, "SMALL_TABLE_BYTES", -1)
    never_analyzed = "SELECT -1::real AS reltuples, 0 AS relpages, 1 AS bytes, 8192 AS block_size,"
    never_analyzed += " NULL::real AS open_fraction, false AS analyzed"
    monkeypatch.setattr(metrics, "_POSTGRESQL_OPEN_ESTIMATE", text(never_analyzed))

    assert math.isnan(read_database_gauges(engine, LONG_AGO).open_conversations)
