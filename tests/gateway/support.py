"""A `convlife gateway` in a subprocess, and a client that signs its requests like a platform."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from events.signing import signed_headers
from tests.processes import free_port, stop

SECRET = "test-secret-one"
SECOND_SECRET = "test-secret-two"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """HTTP/1.1 with keep-alive to one gateway; signs each body with `secret` (None: unsigned)."""

    def __init__(self, port: int, secret: str | None = SECRET) -> None:
        self.port = port
        self.secret = secret
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | Any = b"",
        *,
        timestamp: int | None = None,
        secret: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        key = secret or self.secret
        if key is not None:
            sent |= signed_headers(key, int(time.time()) if timestamp is None else timestamp, raw)
        try:
            self._connection.request(method, path, body=raw, headers=sent)
            answer = self._connection.getresponse()
        except (http.client.HTTPException, OSError):
            self._connection.close()  # the server closed a kept-alive connection: once more
            self._connection.request(method, path, body=raw, headers=sent)
            answer = self._connection.getresponse()
        return Response(answer.status, dict(answer.getheaders()), answer.read())

    def post_events(self, events: Any, **kwargs: Any) -> Response:
        return self.request("POST", "/v1/events", events, **kwargs)

    def close(self) -> None:
        self._connection.close()


class GatewayProcess:
    """`convlife gateway` on a free loopback port, against the given broker and database."""

    def __init__(
        self,
        broker_url: str,
        database_url: str,
        log: Path,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.log = log
        self._clients: list[Client] = []
        env = {
            "CONVLIFE_BROKER_URL": broker_url,
            "CONVLIFE_DATABASE_URL": database_url,
            "CONVLIFE_GATEWAY_SECRETS": f"{SECRET}, {SECOND_SECRET}",
            "CONVLIFE_GATEWAY_RETRY_AFTER": "7",
            **(env or {}),
        }
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "gateway", "--port", str(self.port), *extra],
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_healthy(timeout=60)

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited early:\n{self.log.read_text()[-3000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"gateway not healthy in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def client(self, secret: str | None = SECRET) -> Client:
        """A client of this gateway, closed by `close_clients` (or `stop`)."""
        made = Client(self.port, secret)
        self._clients.append(made)
        return made

    def close_clients(self) -> None:
        for made in self._clients:
            made.close()
        self._clients.clear()

    def stop(self) -> None:
        self.close_clients()
        stop(self.process, timeout=10)
        log = self.log.read_text(errors="replace")
        assert "Traceback" not in log, f"the gateway logged a traceback:\n{log[-5000:]}"


def event(account_id: str, event_id: str, **fields: Any) -> dict[str, Any]:
    """A valid `contact.inbound` (or whatever `fields` make it), dated now."""
    return {
        "event_id": event_id,
        "type": "contact.inbound",
        "account_id": account_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "contact_id": "contact-1",
        "line_id": "line-1",
        **fields,
    }
