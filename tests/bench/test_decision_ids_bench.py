"""`bench.decision_ids` compares like with like: the two feeds make the same decisions, only their
ids differ (random, or in the order of their times), and a run on SQLite stores every batch.

Speed is the benchmark's business, never asserted here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from bench.decision_ids import Feed, ordered_id, random_id, run_store


def test_the_two_feeds_make_the_same_decisions_but_for_their_ids() -> None:
    start = datetime(2026, 11, 27, 5, tzinfo=UTC)
    random_batch = Feed(random_id, start).batch(50)
    ordered_batch = Feed(ordered_id, start).batch(50)
    for a, b in zip(random_batch, ordered_batch, strict=True):
        assert a.model_dump(exclude={"decision_id"}) == b.model_dump(exclude={"decision_id"})
    random_ids = [d.decision_id for d in random_batch]
    ordered_ids = [d.decision_id for d in ordered_batch]
    # Ten decisions a millisecond: in time order to the millisecond, the hash orders the rest.
    assert [i[:13] for i in ordered_ids] == sorted(i[:13] for i in ordered_ids)
    assert random_ids != sorted(random_ids)
    assert len(set(random_ids)) == len(set(ordered_ids)) == 50


def test_a_small_run_on_sqlite_stores_every_batch_and_reports_both_kinds() -> None:
    result = run_store("sqlite", rows=1_000, batches=2)
    assert set(result) == {"random", "ordered", "ratio"}
    assert result["random"] > 0
    assert result["ordered"] > 0
    assert result["ratio"] == result["random"] / result["ordered"]
