"""Reading a stream back from its start, from now, or after an entry id (real Redis)."""

from __future__ import annotations

from redis import Redis

from store.stream_reads import entry_id_of, stream_entries
from tests.support import new_id


def test_a_stream_reads_from_its_start_after_an_entry_id_and_from_now(redis: Redis) -> None:
    stream = new_id("test-stream")
    first = redis.xadd(stream, {"n": "1"})
    redis.xadd(stream, {"n": "2"})
    now = entry_id_of(redis, stream, "now")
    redis.xadd(stream, {"n": "3"})

    def read(start: str) -> list[str]:
        after = entry_id_of(redis, stream, start)
        return [fields["n"] for fields in stream_entries(redis, stream, after, follow=False)]

    assert read("start") == ["1", "2", "3"]
    assert read(str(first)) == ["2", "3"]
    assert [f["n"] for f in stream_entries(redis, stream, now, follow=False)] == ["3"]
    assert read("now") == []
    redis.delete(stream)


def test_an_empty_stream_reads_nothing_from_now(redis: Redis) -> None:
    stream = new_id("test-stream")
    assert entry_id_of(redis, stream, "now") == "0-0"
    assert list(stream_entries(redis, stream, "0-0", follow=False)) == []
