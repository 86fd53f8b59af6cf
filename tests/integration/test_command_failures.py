"""An operator's mistake, or a service that does not answer, stops any `convlife` command with one
line that names the problem and the fix, and exit code 2: never a traceback.

Each case runs the real command as a subprocess: a Redis URL on a closed port, a database that
does not answer, a SQLite file never migrated.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.processes import free_port, run_convlife

SECRET = "s3cr3t-pw"


def one_line_exit_2(done: subprocess.CompletedProcess[str]) -> str:
    """The single line a failed command printed (asserting there is exactly one, on stderr)."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    assert done.stdout == "", output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert SECRET not in output
    return lines[0]


@pytest.fixture
def closed_redis() -> str:
    return f"redis://:{SECRET}@127.0.0.1:{free_port()}/0"


@pytest.fixture
def unreachable_database() -> str:
    return f"postgresql+psycopg://convlife:{SECRET}@127.0.0.1:{free_port()}/convlife"


@pytest.fixture
def migrated_nowhere(tmp_path: Path) -> str:
    """A SQLite file that exists but was never migrated."""
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    return f"sqlite:///{path}"


def env(redis: str, database: str, **extra: str) -> dict[str, str]:
    return {"CONVLIFE_BROKER_URL": redis, "CONVLIFE_DATABASE_URL": database, **extra}


@pytest.mark.parametrize(
    ("command", "variable", "value", "why"),
    [
        ("settings", "CONVLIFE_DEFAULT_REASSIGNMENT_WINDOW", "-PT1H", "is not a valid duration"),
        ("run", "CONVLIFE_DEFAULT_INACTIVITY_CLOSE_AFTER", "P36501D", "at most 100 years"),
        ("beat", "CONVLIFE_SWEEP_INTERVAL", "abc", "is not a valid duration"),
        ("worker", "CONVLIFE_LOG_FORMAT", "xml", "'text' or 'json'"),
    ],
)
def test_an_invalid_variable_is_named_with_why(
    command: str, variable: str, value: str, why: str, redis_url: str, sqlite_url: str
) -> None:
    argv = ["settings", "show", "acme"] if command == "settings" else [command]
    line = one_line_exit_2(run_convlife(argv, env(redis_url, sqlite_url, **{variable: value})))
    assert line.startswith(f"convlife: invalid {variable}: ")
    assert why in line


def test_publishing_a_file_that_does_not_exist(redis_url: str, sqlite_url: str) -> None:
    line = one_line_exit_2(run_convlife(["publish", "nosuch.jsonl"], env(redis_url, sqlite_url)))
    assert line == "convlife: cannot read nosuch.jsonl: No such file or directory"


@pytest.mark.parametrize("size", ["0", "many"])
def test_a_batch_size_under_one_is_a_usage_error(size: str, redis_url: str) -> None:
    line = one_line_exit_2(run_convlife(["publish", "--batch-size", size], env(redis_url, "")))
    assert f"argument --batch-size: '{size}' is not a whole number of at least 1" in line


def test_publishing_to_a_redis_that_does_not_answer_says_so_within_seconds(
    closed_redis: str, sqlite_url: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "contact.inbound"}\n')
    started = time.monotonic()
    line = one_line_exit_2(run_convlife(["publish", str(events)], env(closed_redis, sqlite_url)))
    took = time.monotonic() - started
    port = closed_redis.rsplit(":", 1)[1].split("/")[0]
    assert line.startswith(f"convlife: cannot reach Redis at redis://:***@127.0.0.1:{port}/0: ")
    assert took < 30  # start-up included; the publisher's own retries took 7 s, then traced


@pytest.mark.parametrize(
    "command",
    [
        ["settings", "show", "acme"],
        ["conversation", "show", "acme", "c1"],
        ["reindex"],
        ["dead-letters", "list"],
        ["worker"],
    ],
    ids=" ".join,
)
def test_a_database_never_migrated_says_run_convlife_migrate(
    command: list[str], redis_url: str, migrated_nowhere: str
) -> None:
    line = one_line_exit_2(run_convlife(command, env(redis_url, migrated_nowhere)))
    assert "run `convlife migrate` first" in line


def test_a_sqlite_store_that_does_not_exist_is_not_created_by_reading_it(
    redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "nowhere" / "convlife.db"
    line = one_line_exit_2(
        run_convlife(["settings", "show", "acme"], env(redis_url, f"sqlite:///{path}"))
    )
    assert "does not exist yet: run `convlife migrate` first" in line
    assert not path.exists()


@pytest.mark.parametrize(
    "command", [["settings", "show", "acme"], ["worker"], ["run"]], ids=" ".join
)
def test_a_database_that_does_not_answer_is_named_with_its_password_masked(
    command: list[str], redis_url: str, unreachable_database: str
) -> None:
    line = one_line_exit_2(run_convlife(command, env(redis_url, unreachable_database)))
    port = unreachable_database.rsplit(":", 1)[1].split("/")[0]
    assert line.startswith(
        f"convlife: cannot use the database at postgresql+psycopg://convlife:***@127.0.0.1:{port}"
    )


@pytest.mark.parametrize("value", ["-5", "7days"])
def test_a_bad_duration_flag_is_refused_before_anything_is_sent(
    value: str, redis_url: str, sqlite_url: str
) -> None:
    line = one_line_exit_2(
        run_convlife(
            ["settings", "set", "acme", "--close-after", value], env(redis_url, sqlite_url)
        )
    )
    assert f"argument --close-after: '{value}' is not a valid duration" in line


@pytest.mark.parametrize("command", [["run"], ["worker"], ["beat"], ["decisions"]], ids=" ".join)
def test_a_process_without_a_redis_on_its_url_says_which_url(
    command: list[str], closed_redis: str, sqlite_url: str
) -> None:
    line = one_line_exit_2(run_convlife(command, env(closed_redis, sqlite_url)))
    assert line.startswith("convlife: cannot reach Redis at redis://:***@127.0.0.1:")


def test_health_reports_a_missing_sqlite_store_without_creating_it(
    redis_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "convlife.db"
    done = run_convlife(["health"], env(redis_url, f"sqlite:///{path}"))
    assert done.returncode == 1
    assert f"FAIL database: RuntimeError: no database file at {path}" in done.stdout
    assert done.stderr == ""  # no Alembic INFO lines
    assert not path.exists()


def test_publishing_a_file_that_is_not_utf8_text(
    redis_url: str, sqlite_url: str, tmp_path: Path
) -> None:
    binary = tmp_path / "events.jsonl"
    binary.write_bytes(b"\xff\xfe\n")
    line = one_line_exit_2(run_convlife(["publish", str(binary)], env(redis_url, sqlite_url)))
    assert line.startswith("convlife: the input is not UTF-8 text")


def test_ctrl_c_ends_a_follow_without_a_traceback(redis_url: str, sqlite_url: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "cli.main", "decisions", "--follow"],
        env={**os.environ, **env(redis_url, sqlite_url)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as follower:
        assert follower.stderr is not None
        assert follower.stderr.readline().startswith("following convlife:decisions from now")
        follower.send_signal(signal.SIGINT)
        _out, err = follower.communicate(timeout=20)
    assert follower.returncode == 130
    assert "Traceback" not in err
