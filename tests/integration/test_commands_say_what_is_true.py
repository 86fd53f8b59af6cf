"""Commands that used to mislead: each says what the workers apply, where it read it, and when
there is nothing to show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis

from cli.main import _explain
from events.names import DECISIONS_STREAM, HEARTBEAT_KEY
from observability.health import run_checks
from policies.state import AccountSettings, Conversation, Status
from service.settings import Settings
from tests.processes import RedisServer, convlife, run_convlife, stop, wait_until
from tests.support import new_id

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def env(redis: str, database: str, **extra: str) -> dict[str, str]:
    return {"CONVLIFE_BROKER_URL": redis, "CONVLIFE_DATABASE_URL": database, **extra}


@pytest.fixture
def private_redis(tmp_path: Path) -> object:
    server = RedisServer(tmp_path)
    server.start()
    yield server.url
    server.stop()


def test_settings_show_says_what_the_workers_apply_to_an_account_never_configured(
    private_redis: str, sqlite_url: str, tmp_path: Path
) -> None:
    shell = env(private_redis, sqlite_url)
    before = run_convlife(["settings", "show", "acme"], shell)
    assert before.returncode == 0, before.stderr
    assert "this shell's CONVLIFE_DEFAULT_* apply (no worker has published" in before.stdout
    assert "  bot: off" in before.stdout

    worker = convlife(
        ["worker", "--pool", "solo", "--queues", "convlife.events"],
        env(
            private_redis,
            sqlite_url,
            CONVLIFE_DEFAULT_BOT_ENABLED="true",
            CONVLIFE_DEFAULT_INACTIVITY_CLOSE_AFTER="PT20S",
        ),
        tmp_path / "worker.log",
    )
    try:
        wait_until(lambda: " ready." in (tmp_path / "worker.log").read_text(), 60, "the worker")
    finally:
        stop(worker)

    # The same shell, still without those variables, now shows what the worker applies.
    after = run_convlife(["settings", "show", "acme", "--json"], shell)
    shown = json.loads(after.stdout)
    assert (shown["inactivity_close_after"], shown["bot_enabled"]) == ("PT20S", True)
    assert shown["source"].startswith("never configured: the workers' defaults apply")
    assert shown["store"] == sqlite_url


def test_conversation_show_before_a_reindex_says_the_deadline_is_from_an_earlier_setting() -> None:
    opened = Conversation(
        account_id="acme",
        conversation_id="c1",
        contact_id="maria",
        line_id="sales",
        status=Status.OPEN,
        last_activity_at=T0,
    )
    now_every_20s = AccountSettings(inactivity_close_after=timedelta(seconds=20))
    shown = _explain(opened, None, now_every_20s, T0 + timedelta(seconds=5))
    assert "the account's setting is Never" not in shown
    assert "never closes automatically (no deadline stored)" in shown
    assert "the account's setting is now close after 20s (closes: 2026-03-01T10:00:20" in shown
    assert "`convlife reindex` applies the new one" in shown

    stored = T0 + timedelta(seconds=20)
    agrees = _explain(opened, stored, now_every_20s, T0 + timedelta(seconds=5))
    assert "closes at 2026-03-01T10:00:20+00:00, in 15s" in agrees
    assert "reindex" not in agrees
    assert "close after 20s, reassignment window never" in agrees


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["settings", "set", "acme"], "settings set needs at least one of"),
        (["settings", "show", "acme", "--bot", "on"], "--bot: only for settings set"),
    ],
)
def test_settings_refuses_flags_it_would_ignore(
    argv: list[str], says: str, redis_url: str, sqlite_url: str
) -> None:
    done = run_convlife(argv, env(redis_url, sqlite_url))
    assert (done.returncode, done.stdout) == (2, "")
    assert says in done.stderr


def test_empty_lists_say_they_are_empty(redis_url: str, sqlite_url: str) -> None:
    account = new_id("acct")
    decisions = run_convlife(["decisions", "--account", account], env(redis_url, sqlite_url))
    assert (decisions.returncode, decisions.stdout) == (0, "")
    assert (
        decisions.stderr == f"no decisions of account {account} on {DECISIONS_STREAM} from start\n"
    )
    letters = run_convlife(["dead-letters"], env(redis_url, sqlite_url))  # list is the default
    assert (letters.returncode, letters.stdout) == (0, "")
    assert letters.stderr == f"no dead letters in {sqlite_url}\n"


def test_decisions_follow_starts_from_now_unless_told_otherwise(
    redis_url: str, sqlite_url: str, redis: Redis
) -> None:
    account = new_id("acct")
    old = redis.xadd(DECISIONS_STREAM, {"data": json.dumps({"account_id": account, "n": 1})})
    with subprocess.Popen(
        [sys.executable, "-m", "cli.main", "decisions", "--follow", "--account", account],
        env={**os.environ, **env(redis_url, sqlite_url)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stderr is not None
        assert follower.stdout is not None
        try:
            said = follower.stderr.readline()
            assert said == f"following {DECISIONS_STREAM} from now (Ctrl-C to stop)\n"
            redis.xadd(DECISIONS_STREAM, {"data": json.dumps({"account_id": account, "n": 2})})
            assert json.loads(follower.stdout.readline())["n"] == 2  # not the older n=1
        finally:
            follower.kill()

    from_old = run_convlife(
        ["decisions", "--account", account, "--from", old], env(redis_url, sqlite_url)
    )
    assert [json.loads(line)["n"] for line in from_old.stdout.splitlines()] == [2]
    from_start = run_convlife(["decisions", "--account", account], env(redis_url, sqlite_url))
    assert [json.loads(line)["n"] for line in from_start.stdout.splitlines()] == [1, 2]


def test_health_never_reads_minus_zero_seconds(
    redis_url: str, sqlite_url: str, redis: Redis
) -> None:
    beat = datetime.now(UTC)
    redis.set(HEARTBEAT_KEY, beat.isoformat())
    settings = Settings(broker_url=redis_url, database_url=sqlite_url)  # type: ignore[arg-type]
    [check] = run_checks(settings, ("beat",), beat - timedelta(milliseconds=40))
    assert check.line() == "ok   beat: last successful sweep 0.0s ago"


def test_the_default_store_is_one_file_whatever_directory_a_command_runs_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONVLIFE_DATABASE_URL", raising=False)
    monkeypatch.delenv("CONVLIFE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    seen = set()
    for directory in (tmp_path / "a", tmp_path / "b"):
        directory.mkdir()
        monkeypatch.chdir(directory)
        seen.add(Settings().database_url.get_secret_value())
    assert seen == {f"sqlite:///{tmp_path / 'data' / 'convlife' / 'convlife.db'}"}

    monkeypatch.setenv("CONVLIFE_DATABASE_URL", "sqlite:///here.db")
    assert Settings().database_url.get_secret_value() == f"sqlite:///{tmp_path / 'b' / 'here.db'}"


def test_migrate_creates_the_data_directory_and_says_which_store(
    tmp_path: Path, redis_url: str
) -> None:
    data = tmp_path / "data"
    shell = {"CONVLIFE_BROKER_URL": redis_url, "CONVLIFE_DATA_DIR": str(data)}
    done = run_convlife(["migrate"], shell)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"in sqlite:///{data / 'convlife.db'}")
    assert (data / "convlife.db").exists()
    shown = run_convlife(["settings", "show", "acme"], shell)
    assert shown.returncode == 0, shown.stderr
    assert f"store: sqlite:///{data / 'convlife.db'}" in shown.stdout


def test_conversation_show_says_when_the_close_warning_goes_out_and_when_it_went_out() -> None:
    opened = Conversation(
        account_id="acme",
        conversation_id="c1",
        contact_id="maria",
        line_id="sales",
        status=Status.OPEN,
        last_activity_at=T0,
    )
    warns = AccountSettings(
        inactivity_close_after=timedelta(seconds=20), close_warning_before=timedelta(seconds=5)
    )
    pending = _explain(opened, T0 + timedelta(seconds=15), warns, T0 + timedelta(seconds=5))
    assert "closes at 2026-03-01T10:00:20+00:00, unless there is activity first" in pending
    assert "close warning due at 2026-03-01T10:00:15+00:00, in 10s" in pending
    assert "next check: 2026-03-01T10:00:15+00:00 (the close warning)" in pending
    assert "close warning 5s before the close" in pending
    assert "reindex" not in pending

    warned = replace(opened, close_warned_at=T0 + timedelta(seconds=15))
    sent = _explain(warned, T0 + timedelta(seconds=20), warns, T0 + timedelta(seconds=16))
    assert "closes at 2026-03-01T10:00:20+00:00, in 4s" in sent
    assert "close warning sent at 2026-03-01T10:00:15+00:00 (for this idle period)" in sent
    assert "next check: 2026-03-01T10:00:20+00:00 (the close)" in sent
    assert "reindex" not in sent

    # Stored before the account started warning: the next check the settings give differs.
    stale = _explain(opened, T0 + timedelta(seconds=20), warns, T0 + timedelta(seconds=5))
    assert "close after 20s, warn 5s before (next check: 2026-03-01T10:00:15+00:00)" in stale
