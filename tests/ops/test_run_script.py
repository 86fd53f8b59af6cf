"""`bash scripts/run.sh` where no Redis runs: it starts one, or says how to get one."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from redis import Redis

from tests.processes import free_port, stop, wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_without_redis_server_installed_it_says_how_to_get_one(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with the shell tools the script uses, no redis-server
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "sha256sum", "cut", "rm", "touch", "seq", "sleep"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    port = free_port()
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "run.sh")],
        env={"PATH": str(bin_dir), "CONVLIFE_BROKER_URL": f"redis://127.0.0.1:{port}/0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"run.sh: no Redis answers on 127.0.0.1:{port} and redis-server is not installed: "
        "apt-get install redis-server (or point CONVLIFE_BROKER_URL at a Redis)"
    ]


def test_without_a_redis_answering_it_starts_a_local_one_and_runs(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "run.log"
    env = {
        **os.environ,
        "CONVLIFE_BROKER_URL": url,
        "CONVLIFE_DATABASE_URL": f"sqlite:///{tmp_path / 'convlife.db'}",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run.sh"), "--concurrency", "1"],
            cwd=tmp_path,  # its redis-server writes nothing, but a stray file would land here
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    client = Redis.from_url(url)
    try:
        wait_until(lambda: " ready." in log.read_text(errors="replace"), 90, "convlife run")
        assert "starting a local redis-server" in log.read_text()
        assert client.ping()
    finally:
        stop(process)
        # The redis-server this test made run.sh start; shutdown drops the connection as it stops.
        with contextlib.suppress(Exception):
            client.shutdown(nosave=True)
        client.close()
