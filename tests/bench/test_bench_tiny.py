"""The benchmark runs (tiny size) and is correct: every due conversation closed exactly once,
every inbound contact routed once, to where its state says.

Speed is the benchmark's business, never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(300)
def test_the_tiny_benchmark_closes_every_due_conversation_exactly_once(
    tmp_path: Path, redis_url: str, postgres_url: str
) -> None:
    env = {
        **os.environ,
        "BENCH_REDIS": redis_url.rsplit("/", 1)[0] + "/15",
        "BENCH_POSTGRES_DB": f"convlife_bench_test_{uuid.uuid4().hex[:8]}",
    }
    bench = subprocess.Popen(
        [sys.executable, "-m", "bench", "all", "--tiny", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = bench.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        bench.terminate()  # the benchmark stops what it started on SIGTERM
        output, _ = bench.communicate(timeout=60)
        pytest.fail(f"the tiny benchmark did not finish in 240 s:\n{output[-3000:]}")
    assert bench.returncode == 0, output[-3000:]
    results = json.loads((tmp_path / "latest.json").read_text())

    lag = results["close_lag"]
    assert lag["closed"] == lag["due_sampled"] > 0
    assert lag["duplicate_closes"] == 0
    burst = results["burst"]
    assert burst["closed"] == burst["conversations_due_at_once"]
    assert burst["duplicate_closes"] == 0
    assert burst["other_accounts_events"] > 0
    assert results["ingest_postgresql"]["events"] == results["ingest_sqlite"]["events"] > 0
    assert results["ingest_http"]["events"] == results["ingest_postgresql"]["events"]
    assert results["ingest_postgresql_100"]["batch"] == results["ingest_http"]["batch"] == 100
    for store in ("postgresql", "sqlite"):
        inbound = results[f"run_inbound_{store}"]
        # Each contact's preloaded state implies its route; all three routes occur.
        assert inbound["misrouted"] == inbound["duplicates_on_stream"] == 0
        assert set(inbound["routes"]) == {"previous_agent", "line_owner", "open_conversation"}
        assert sum(inbound["routes"].values()) == inbound["events"] > 0
        closes = results[f"run_closes_{store}"]
        assert closes["closed"] == closes["deadlines"] > 0
        assert closes["duplicates_on_stream"] == closes["duplicate_closes"] == 0
        assert sum(point["count"] for point in closes["lag_over_time"]) == closes["closed"]
    assert (tmp_path / "latest.md").read_text().count("|") > 20
