"""Appending decisions to the stream: one script call per batch, and the same entries where the
Redis does not allow scripts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from redis import Redis

from store.streams import append_data


@pytest.fixture
def no_scripts_user(redis_url: str) -> Iterator[Redis]:
    """A client of a Redis user (of this test only) whose ACL denies EVAL and EVALSHA."""
    admin = Redis.from_url(redis_url)
    name, password = f"convlife-test-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin.acl_setuser(
        name,
        enabled=True,
        passwords=[f"+{password}"],
        keys=["*"],
        commands=["+@all", "-eval", "-evalsha"],
    )
    db = admin.connection_pool.connection_kwargs.get("db", 0)
    client = Redis(
        host=admin.connection_pool.connection_kwargs["host"],
        port=admin.connection_pool.connection_kwargs["port"],
        db=db,
        username=name,
        password=password,
    )
    try:
        yield client
    finally:
        client.close()
        admin.acl_deluser(name)
        admin.close()


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
