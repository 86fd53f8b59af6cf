"""Checks a process makes before it starts, so that it fails loudly instead of losing work."""

from __future__ import annotations

from redis import Redis
from redis.exceptions import ResponseError

SAFE_EVICTION_POLICIES = frozenset(
    {"noeviction", "volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"}
)
"""Policies that never evict a key without a TTL; Celery's queues have none."""


class PreflightError(RuntimeError):
    """The environment would lose work; the message says what to change."""


def check_broker_eviction(broker_url: str) -> None:
    """Refuse a Redis that may evict keys without a TTL (`allkeys-*`): it can drop queues."""
    client = Redis.from_url(broker_url, socket_connect_timeout=5)
    try:
        policy = client.config_get("maxmemory-policy").get("maxmemory-policy")
    except ResponseError:
        return  # CONFIG is disabled (managed Redis): nothing to read, nothing to refuse
    finally:
        client.close()
    if policy is not None and policy not in SAFE_EVICTION_POLICIES:
        raise PreflightError(
            f"the broker's Redis has maxmemory-policy {policy!r}, which can evict Celery's queues "
            "and lose events; set it to 'noeviction' (CONFIG SET maxmemory-policy noeviction, "
            "and in redis.conf)"
        )
