"""The README's tour, run as written, against a real `convlife run` (SQLite, the suite's Redis):
a newcomer who follows it meets no error, and sees what the comments promise."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.integration.conftest import _start, _stop

ROOT = Path(__file__).resolve().parents[2]


def tour_commands() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = readme.split("## A short tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", tour, re.DOTALL)
    assert block is not None, "the README's tour has no bash block"
    return block.group(1)


@pytest.fixture
def running(redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """`convlife run` (what scripts/run.sh starts) on a SQLite store of its own."""
    database_url = f"sqlite:///{tmp_path / 'convlife.db'}"
    process = _start(database_url, redis_url, tmp_path / "service.log")
    try:
        yield {"CONVLIFE_BROKER_URL": redis_url, "CONVLIFE_DATABASE_URL": database_url}
    finally:
        _stop(process)


def test_the_readme_tour_runs_as_written(running: dict[str, str], tmp_path: Path) -> None:
    workdir = tmp_path / "newcomer"
    workdir.mkdir()
    bin_dir = str(Path(sys.executable).parent)  # as after `source .venv/bin/activate`
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour_commands()],
        cwd=workdir,
        env={**os.environ, **running, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output

    decisions = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    routed = [d for d in decisions if d["type"] == "contact.routed"]
    assert [(d["route"], d["agent_id"]) for d in routed] == [("previous_agent", "bruno")]
    closed = [d for d in decisions if d["type"] == "conversation.auto_closed"]
    assert [d["conversation_id"] for d in closed] == ["c1"]
    [warning] = [d for d in decisions if d["type"] == "conversation.close_warning"]
    assert warning["conversation_id"] == "c1"
    closes_at = datetime.fromisoformat(warning["closes_at"])
    assert closes_at <= datetime.fromisoformat(closed[0]["closed_at"])

    # The preview's figures depend on how soon the worker applied the events (a loaded machine
    # may take longer than the tour's 3 s); tests/service/test_preview.py holds them exact.
    assert "account acme, if it closed after 30m (every hour):\n  would close at once: " in (
        done.stdout
    )

    assert "conversation c1 (account acme" in done.stdout
    assert "  status: closed" in done.stdout
    assert "account acme: set for this account" in done.stdout
    assert "  close after: 10s" in done.stdout
    assert "  reassignment window: 1h" in done.stdout
    assert "no dead letters in" in done.stderr
