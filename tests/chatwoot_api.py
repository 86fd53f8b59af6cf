"""A fake Chatwoot REST API for tests: a small HTTP server on 127.0.0.1 that checks what
convlife sends against the shapes of Chatwoot's swagger (paths, the `api_access_token` header,
bodies), records every call, and answers as the test says."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATH = re.compile(
    r"^/api/v1/accounts/(?P<account>\d+)/conversations/(?P<conversation>\d+)"
    r"/(?P<what>toggle_status|assignments|messages)$"
)


@dataclass(frozen=True)
class Call:
    account: str
    conversation: str
    what: str
    body: dict[str, Any]
    at: float = 0.0
    """time.time() when it arrived."""

    @property
    def summary(self) -> str:
        """E.g. `toggle_status resolved`, `assignments assignee_id=7`, `messages`."""
        if self.what == "toggle_status":
            return f"toggle_status {self.body['status']}"
        if self.what == "assignments":
            name, value = next(iter(self.body.items()))
            return f"assignments {name}={value}"
        return self.what


def body_problem(what: str, body: Any) -> str | None:
    """Why a body is not one Chatwoot's swagger allows for that path (None: it is)."""
    if not isinstance(body, dict):
        return "the body is not a JSON object"
    if what == "toggle_status":
        if body.get("status") not in ("open", "resolved", "pending", "snoozed"):
            return f"toggle_status takes a status, not {body!r}"
    elif what == "assignments":
        if len(body) != 1 or not any(
            isinstance(body.get(k), int) for k in ("assignee_id", "team_id")
        ):
            return f"assignments takes one integer assignee_id or team_id, not {body!r}"
    elif not isinstance(body.get("content"), str) or body.get("message_type") != "outgoing":
        return f"messages takes content and message_type outgoing, not {body!r}"
    return None


@dataclass
class FakeChatwoot:
    token: str
    gone: set[str] = field(default_factory=set)
    """Conversation ids answered 404 (deleted in Chatwoot)."""
    calls: list[Call] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Requests answered 4xx for a wrong token, path or body, with why."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def summaries(self, conversation: str | None = None, account: str | None = None) -> list[str]:
        return [call.summary for call in self.calls_to(conversation, account)]

    def calls_to(self, conversation: str | None = None, account: str | None = None) -> list[Call]:
        with self.lock:
            return [
                c
                for c in self.calls
                if conversation in (None, c.conversation) and account in (None, c.account)
            ]

    def answer(self, path: str, token: str | None, raw: bytes) -> tuple[int, str | None]:
        if token != self.token:
            return 401, "wrong or missing api_access_token"
        match = PATH.match(path)
        if match is None:
            return 404, f"no route {path}"
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, "the body is not JSON"
        problem = body_problem(match["what"], body)
        if problem is not None:
            return 422, problem
        if match["conversation"] in self.gone:
            return 404, None
        with self.lock:
            self.calls.append(
                Call(match["account"], match["conversation"], match["what"], body, time.time())
            )
        return 200, None

    def start(self) -> FakeChatwoot:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status, problem = fake.answer(self.path, self.headers.get("api_access_token"), raw)
                if problem is not None:
                    with fake.lock:
                        fake.refused.append(f"{status} {self.path}: {problem}")
                payload = b'{"ok": true}' if status == 200 else b'{"error": "refused"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@contextmanager
def fake_chatwoot(token: str) -> Iterator[FakeChatwoot]:
    fake = FakeChatwoot(token).start()
    try:
        yield fake
    finally:
        fake.stop()
