"""Decisions carried out on Chatwoot: the real dispatcher, a real database (SQLite and
PostgreSQL, one per test), real Redis for the echo record, and a fake Chatwoot API on
127.0.0.1 that checks paths, the token header and bodies."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis import Redis
from sqlalchemy.engine import Engine

from events.decisions import AutoClosed, ContactRouted, Decision, Route
from observability.health import run_checks
from service.settings import Settings
from store import outbox
from store import webhooks as store
from store.migrate import upgrade
from tests.chatwoot_api import fake_chatwoot
from tests.integration.webhook_support import FAST, fresh, utcnow, wait_for
from tests.processes import run_convlife
from tests.support import new_id
from webhooks import chatwoot_echo, manage
from webhooks.dispatch import Dispatcher

__all__ = ["fresh"]

TOKEN = "cw-token-0123456789"


@contextmanager
def dispatching(engine: Engine, echo_redis_url: str, tick: float = 0.1) -> Iterator[None]:
    """A dispatcher run every `tick` seconds in a thread, as beat sends the task."""
    dispatcher = Dispatcher(FAST, echo_redis_url=echo_redis_url)
    stopping = threading.Event()

    def beat() -> None:
        while not stopping.is_set():
            dispatcher.run(engine, utcnow)
            stopping.wait(tick)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(timeout=30)
        dispatcher.close()


def chatwoot_id() -> str:
    return str(random.randint(1, 10_000_000))


def commit(engine: Engine, decision: Decision) -> None:
    """Store a decision as ingest does (with its outbox rows, which the fan-out reads)."""
    with engine.begin() as connection:
        outbox.add_decisions(connection, [decision])


def auto_closed(account: str, conversation: str) -> AutoClosed:
    now = utcnow()
    return AutoClosed(
        decision_id=new_id("d"),
        account_id=account,
        decided_at=now,
        reason="inactive for 1h",
        conversation_id=conversation,
        contact_id="57",
        line_id="3",
        last_activity_at=now - timedelta(hours=1),
        closed_at=now,
        inactivity_close_after=timedelta(hours=1),
    )


def routed(account: str, conversation: str, route: Route, agent: str | None) -> ContactRouted:
    return ContactRouted(
        decision_id=new_id("d"),
        account_id=account,
        decided_at=utcnow(),
        reason="test",
        inbound_event_id=f"cw:c{conversation}:m{chatwoot_id()}:inbound",
        contact_id="57",
        line_id="3",
        route=route,
        agent_id=agent,
    )


def statuses(engine: Engine, subscription: int) -> list[tuple[str, int, int | None]]:
    with engine.connect() as connection:
        rows = store.deliveries(connection, subscription_id=subscription)
    return [(row.status, row.attempts, row.last_status_code) for row in rows]


def connect(engine: Engine, url: str, account: str, token: str = TOKEN) -> int:
    made = manage.connect_chatwoot(engine, url=url, token=token, now=utcnow(), account_id=account)
    return int(made["id"])


def test_an_auto_close_becomes_one_resolve_with_the_token_recorded_for_its_echo(
    fresh: Engine, redis_url: str
) -> None:
    account, conversation = chatwoot_id(), chatwoot_id()
    with fake_chatwoot(TOKEN) as chatwoot:
        subscription = connect(fresh, chatwoot.url, account)
        commit(fresh, auto_closed(account, conversation))
        with dispatching(fresh, redis_url):
            wait_for(
                lambda: statuses(fresh, subscription)[:1] == [("delivered", 1, 200)],
                15,
                "delivered",
            )
        assert chatwoot.summaries(conversation) == ["toggle_status resolved"]
        assert chatwoot.refused == []
    recorded = chatwoot_echo.recent(Redis.from_url(redis_url), account, conversation)
    assert [call.action for call in recorded] == ["resolve"]


def test_a_contact_routed_to_its_previous_agent_is_assigned_and_an_unassigned_one_calls_nothing(
    fresh: Engine, redis_url: str
) -> None:
    account, back, anew = chatwoot_id(), chatwoot_id(), chatwoot_id()
    with fake_chatwoot(TOKEN) as chatwoot:
        subscription = connect(fresh, chatwoot.url, account)
        commit(fresh, routed(account, back, Route.PREVIOUS_AGENT, "7"))
        commit(fresh, routed(account, anew, Route.UNASSIGNED, None))
        with dispatching(fresh, redis_url):
            wait_for(
                lambda: [s for s, _, _ in statuses(fresh, subscription)] == ["delivered"] * 2,
                15,
                "both delivered",
            )
        assert chatwoot.summaries() == ["assignments assignee_id=7"]
        assert chatwoot.summaries(back) == ["assignments assignee_id=7"]


def test_a_404_is_recorded_and_dropped_not_retried(fresh: Engine, redis_url: str) -> None:
    account, conversation = chatwoot_id(), chatwoot_id()
    with fake_chatwoot(TOKEN) as chatwoot:
        chatwoot.gone.add(conversation)
        subscription = connect(fresh, chatwoot.url, account)
        commit(fresh, auto_closed(account, conversation))
        with dispatching(fresh, redis_url):
            wait_for(lambda: bool(statuses(fresh, subscription)), 15, "a delivery")
            wait_for(lambda: statuses(fresh, subscription)[0][0] != "pending", 15, "an attempt")
            # Retries of a failed delivery come after 0.5 s here: give it time to (not) retry.
            time.sleep(1.5)  # a failed delivery is retried after 0.5 s here: none may come
        assert statuses(fresh, subscription) == [("given_up", 1, 404)]
        with fresh.connect() as connection:
            (item,) = store.subscriptions(connection)
        assert item.consecutive_failures == 0
        assert item.paused_until is None


def test_a_401_pauses_the_subscription_health_says_so_and_a_new_token_resumes_it(
    fresh: Engine, redis_url: str
) -> None:
    account, conversation = chatwoot_id(), chatwoot_id()
    settings = Settings(
        database_url=fresh.url.render_as_string(hide_password=False),
        broker_url=redis_url,
    )
    with fake_chatwoot(TOKEN) as chatwoot:
        subscription = connect(fresh, chatwoot.url, account, token="an-old-revoked-token")
        commit(fresh, auto_closed(account, conversation))
        with dispatching(fresh, redis_url):
            wait_for(lambda: bool(statuses(fresh, subscription)), 15, "a delivery")
            wait_for(lambda: statuses(fresh, subscription)[0][2] == 401, 15, "a 401")
            (check,) = run_checks(settings, ("chatwoot",), datetime.now(UTC))
            assert not check.ok
            assert "401" in check.detail
            assert f"subscription {subscription}" in check.detail
            with fresh.connect() as connection:
                (item,) = store.subscriptions(connection)
            assert item.paused_reason == "unauthorized"
            assert item.paused_until is not None
            assert chatwoot.summaries() == []
            assert connect(fresh, chatwoot.url, account) == subscription  # the new token
            wait_for(lambda: statuses(fresh, subscription)[0][0] == "delivered", 15, "delivered")
        assert chatwoot.summaries(conversation) == ["toggle_status resolved"]
    (check,) = run_checks(settings, ("chatwoot",), datetime.now(UTC))
    assert check.ok, check.detail


def test_a_decision_about_ids_chatwoot_cannot_take_is_dropped_with_the_reason(
    fresh: Engine, redis_url: str
) -> None:
    account = chatwoot_id()
    with fake_chatwoot(TOKEN) as chatwoot:
        subscription = connect(fresh, chatwoot.url, account)
        commit(fresh, auto_closed(account, "not-a-chatwoot-id"))
        with dispatching(fresh, redis_url):
            wait_for(
                lambda: statuses(fresh, subscription)[:1] == [("given_up", 1, None)], 15, "dropped"
            )
        assert chatwoot.summaries() == []
    with fresh.connect() as connection:
        (delivery,) = store.deliveries(connection, subscription_id=subscription)
    assert "not a decision Chatwoot can take" in (delivery.last_error or "")


def test_a_dispatcher_without_an_echo_record_does_not_call_chatwoot(fresh: Engine) -> None:
    account = chatwoot_id()
    with fake_chatwoot(TOKEN) as chatwoot:
        subscription = connect(fresh, chatwoot.url, account)
        commit(fresh, auto_closed(account, chatwoot_id()))
        dispatcher = Dispatcher(FAST)
        try:
            dispatcher.run(fresh, utcnow)
        finally:
            dispatcher.close()
        assert chatwoot.summaries() == []
    assert statuses(fresh, subscription)[0][0] == "failed"


def test_webhooks_add_chatwoot_takes_url_and_token_from_the_settings_and_never_prints_the_token(
    redis_url: str, tmp_path: Path
) -> None:
    database = f"sqlite:///{tmp_path / 'convlife.db'}"
    upgrade(database)
    base = {"CONVLIFE_BROKER_URL": redis_url, "CONVLIFE_DATABASE_URL": database}
    missing = run_convlife(["webhooks", "add", "--chatwoot"], base)
    assert missing.returncode == 2
    assert "needs --url and --token" in missing.stdout
    settings = {
        **base,
        "CONVLIFE_CHATWOOT_URL": "https://chatwoot.example.com/",
        "CONVLIFE_CHATWOOT_API_TOKEN": TOKEN,
    }
    done = run_convlife(["webhooks", "add", "--chatwoot", "--account", "5"], settings)
    assert done.returncode == 0, done.stdout + done.stderr
    added = json.loads(done.stdout)
    assert (added["kind"], added["url"], added["account_id"]) == (
        "chatwoot",
        "https://chatwoot.example.com",
        "5",
    )
    assert TOKEN not in done.stdout + done.stderr
    again = run_convlife(
        ["webhooks", "add", "--chatwoot", "--account", "5", "--token", "t2"], settings
    )
    assert json.loads(again.stdout)["id"] == added["id"]  # the same Chatwoot: token replaced
