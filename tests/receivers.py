"""Webhook receivers for tests: small HTTP servers on 127.0.0.1 in a thread, recording every
request, answering as the test says; and decisions written straight into the store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy.engine import Engine

from events.decisions import ContactRouted, Route
from store import outbox
from tests.support import new_id


@dataclass
class Received:
    at: float
    """time.monotonic() when the request arrived."""
    headers: dict[str, str]
    body: bytes

    @property
    def delivery(self) -> str:
        return self.headers["X-Convlife-Delivery"]


Answer = Callable[[int], int | None]
"""Given how many requests came before this one, the status to answer; None: hang (never
answer until the server stops)."""


@dataclass
class Receiver:
    answer: Answer = lambda _n: 200
    port: int = 0
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # answer at once, as real servers do

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver.lock:
                    n = len(receiver.received)
                    receiver.received.append(
                        Received(time.monotonic(), dict(self.headers.items()), body)
                    )
                status = receiver.answer(n)
                if status is None:
                    receiver.stopping.wait(60)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def deliveries(self) -> list[str]:
        with self.lock:
            return [item.delivery for item in self.received]


@contextmanager
def receiving(answer: Answer = lambda _n: 200) -> Iterator[Receiver]:
    receiver = Receiver(answer).start()
    try:
        yield receiver
    finally:
        receiver.stop()


def commit_decisions(engine: Engine, account: str, count: int, at: datetime) -> list[str]:
    """`count` contact.routed decisions of `account`, committed as ingest commits them."""
    made = [
        ContactRouted(
            decision_id=new_id("d"),
            account_id=account,
            decided_at=at,
            reason="test",
            inbound_event_id=new_id("e"),
            contact_id=f"k{n}",
            line_id="l1",
            route=Route.UNASSIGNED,
        )
        for n in range(count)
    ]
    with engine.begin() as connection:
        outbox.add_decisions(connection, made)
    return [d.decision_id for d in made]
