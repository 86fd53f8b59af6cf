"""What the routes share at run time: settings, the broker enqueuer, the database, Redis.

Built by `create_app` when the server starts (its lifespan), never at import time, and closed
when it stops. Routes get it with `Depends(gateway_of)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from redis import Redis
from sqlalchemy.engine import Engine

from gateway.enqueue import Enqueuer
from service.settings import Settings
from store.db import make_engine


@dataclass
class Gateway:
    settings: Settings
    secrets: list[str]
    """The HMAC secrets accepted; empty only when started with --insecure-no-auth."""
    enqueuer: Enqueuer
    engine: Engine
    broker: Redis
    """The broker's Redis, for the readiness probe."""

    @classmethod
    def build(cls, settings: Settings, *, insecure_no_auth: bool = False) -> Gateway:
        secrets = [] if insecure_no_auth else settings.gateway_secret_list
        broker_url = settings.broker_url.get_secret_value()
        return cls(
            settings=settings,
            secrets=secrets,
            enqueuer=Enqueuer(broker_url),
            # Pinged at every checkout: a request that meets a connection the database killed
            # a moment ago is answered with an error, not retried (a worker's batch would be).
            engine=make_engine(settings.database_url.get_secret_value(), ping_after_rest=0.0),
            broker=Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2),
        )

    def close(self) -> None:
        self.enqueuer.close()
        self.engine.dispose()
        self.broker.close()


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway
