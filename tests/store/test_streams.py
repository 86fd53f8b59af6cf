"""Appending decisions to the stream: one script call per batch, and the same entries where the
Redis does not allow scripts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from store.streams import append_data
from tests.support import redis_user_denied


@pytest.fixture
def no_scripts_user(redis_url: str) -> Iterator[Redis]:
    """A client of a Redis user (of this test only) whose ACL denies EVAL and EVALSHA."""
    with redis_user_denied(redis_url, "eval", "evalsha") as url:
        client = Redis.from_url(url)
        try:
            yield client
        finally:
            client.close()


def entries(client: Redis, stream: str) -> list[bytes]:
    return [fields[b"data"] for _, fields in client.xrange(stream)]


def test_values_are_appended_in_order_one_entry_each(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    stream = f"test:stream:{uuid.uuid4().hex}"
    try:
        append_data(client, stream, ["a", "b", "c"])
        append_data(client, stream, [])
        assert entries(client, stream) == [b"a", b"b", b"c"]
    finally:
        client.delete(stream)
        client.close()


def test_a_redis_that_denies_scripts_gets_the_same_entries_one_xadd_each(
    no_scripts_user: Redis,
) -> None:
    stream = f"test:stream:{uuid.uuid4().hex}"
    try:
        append_data(no_scripts_user, stream, ["first", "second"])
        assert entries(no_scripts_user, stream) == [b"first", b"second"]
    finally:
        no_scripts_user.delete(stream)
