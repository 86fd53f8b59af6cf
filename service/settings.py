"""All configuration, in one typed object read from `CONVLIFE_*` environment variables.

Built once at start-up (`Settings()`) and passed to whatever needs it; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from events.durations import parse_duration
from policies.delivery import CircuitPolicy, DeliveryConfig, RetryPolicy
from policies.state import AccountSettings


def _duration(value: object) -> timedelta:
    duration = parse_duration(value, text=True)
    assert duration is not None  # parse_duration refuses Never unless allowed
    return duration


def _duration_or_never(value: object) -> timedelta | None:
    return parse_duration(value, allow_never=True, text=True)


def _seconds(value: object) -> float:
    return _duration(value).total_seconds()


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """$XDG_DATA_HOME/convlife, or ~/.local/share/convlife (the XDG default)."""
    base = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "convlife"


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A duration of the one language (events/durations.py): P7D, PT24H, 3600."""

DurationOrNever = Annotated[timedelta | None, BeforeValidator(_duration_or_never)]
"""The same, or `never`."""

Seconds = Annotated[float, BeforeValidator(_seconds)]
"""A duration of the one language, held as float seconds: 0.5 and PT0.5S are the same."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVLIFE_", extra="ignore", frozen=True)

    broker_url: SecretStr = Field(
        default=SecretStr("redis://localhost:6379/0"),
        description="Celery broker (Redis). Secret: it may carry a password; never logged.",
    )
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(os.environ),
        description="Where the default SQLite store lives: $XDG_DATA_HOME/convlife, or "
        "~/.local/share/convlife.",
    )
    database_url: SecretStr = Field(
        default=SecretStr(""),
        description="SQLAlchemy URL of the store: sqlite:///FILE or postgresql+psycopg://...; "
        "default: sqlite:///DATA_DIR/convlife.db. A relative SQLite path is resolved once, "
        "against the directory the process starts in.",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for the decision and dead-letter streams; default: the broker's.",
    )

    default_inactivity_close_after: DurationOrNever = Field(
        default=None, description="Auto-close setting of an account never configured (Never)."
    )
    default_reassignment_window: DurationOrNever = Field(
        default=None, description="Reassignment window of an account never configured (none)."
    )
    default_bot_enabled: bool = False

    sweep_interval: Seconds = Field(
        default=0.5, gt=0, description="Seconds between beat's sweeps for due conversations."
    )
    sweep_batch_size: int = Field(
        default=500, ge=1, description="Conversations closed per txn (a sweep's first batch)."
    )
    sweep_batch_growth: int = Field(
        default=4,
        ge=1,
        description="While a sweep's batches come back full (a backlog), each next one is twice "
        "as large, up to this many times sweep_batch_size. 1: never.",
    )
    sweep_time_budget: Seconds = Field(
        default=5.0, gt=0, description="Seconds one sweep task may keep closing batches."
    )
    sweep_gives_way_at: int = Field(
        default=2,
        ge=0,
        description="Event messages waiting in the events queue (ingest is behind) at which a "
        "sweep gives way after its current batch: a dedicated closer pauses, a worker that also "
        "takes events ends its sweep. Closes can wait, a contact should not. 0: never.",
    )
    relay_interval: Seconds = Field(
        default=2.0, gt=0, description="Seconds between relays of decisions not yet on Redis."
    )
    max_clock_skew: Duration = Field(
        default=timedelta(minutes=5),
        description="An event dated further than this in the future is dead-lettered.",
    )
    max_event_bytes: int = Field(default=64 * 1024, ge=1024)
    idempotency_retention: Duration = Field(
        default=timedelta(days=30),
        description="How long applied event ids are kept to recognise redeliveries.",
    )
    visibility_timeout: int = Field(
        default=60,
        ge=10,
        description="Seconds before Redis redelivers an unacked message (a killed worker's "
        "batch); every task is bounded well under it (worker/celery_config.py).",
    )
    # --- ingest limits and connections (issue 9: the per-message cap, the retry rule) -----
    max_events_per_message: int = Field(
        default=1000,
        ge=1,
        description="Events applied from one message; the rest are dead-lettered for replay.",
    )
    database_pool_size: int = Field(
        default=5,
        ge=1,
        description="PostgreSQL connections each process keeps (and as many again at peak).",
    )
    database_pool_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a task waits for a pooled connection before its batch is retried "
        "(under the tasks' time limit, so the error says what ran out).",
    )
    # ------------------------------------------------------------------------------------
    concurrency: int | None = Field(
        default=None,
        ge=1,
        description="Worker processes (unset: the CPU count, plus one on PostgreSQL).",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Python logging level (any case)."
    )
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per log line, with ids as fields."
    )

    # --- HTTP gateway (`convlife gateway`, gateway/) ---
    gateway_secrets: SecretStr | None = Field(
        default=None,
        description="Comma-separated HMAC secrets the gateway accepts (several while a key "
        "rotates). Without one the gateway refuses to start, unless --insecure-no-auth.",
    )
    gateway_retry_after: int = Field(
        default=5, ge=1, description="Retry-After (seconds) of a 503 when the broker is down."
    )

    @model_validator(mode="after")
    def _store_resolved_once(self) -> Self:
        # The old default, sqlite:///convlife.db, named a different file in every directory a
        # command ran from: `settings show` elsewhere read an empty store. Resolved here, once,
        # every command of a shell reads the same file.
        url = self.database_url.get_secret_value()
        if not url:
            url = f"sqlite:///{self.data_dir.expanduser().resolve() / 'convlife.db'}"
        elif url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            path = url.removeprefix("sqlite:///").partition("?")
            if path[0] and path[0] != ":memory:":
                url = f"sqlite:///{Path(path[0]).resolve()}{path[1]}{path[2]}"
        object.__setattr__(self, "database_url", SecretStr(url))
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def streams_redis_url(self) -> str:
        return (self.redis_url or self.broker_url).get_secret_value()

    @property
    def worker_processes(self) -> int:
        """`concurrency`, or on PostgreSQL one worker process more than the CPUs, on SQLite as
        many as the CPUs.

        A worker process also waits: on the database (each statement's round trip, each
        commit's flush to disk) and on the broker for its next message. With one process per
        CPU (Celery's default) those waits left cores idle on PostgreSQL; one more fills them.
        Default run, PostgreSQL, 100,000 routed inbound on 2 cores, six interleaved pairs:
        1.50-1.85 cores busy with 2 processes (median 1.73), 1.66-1.94 with 3 (median 1.93);
        5,403 against 5,945 events/s on average (1.10x). SQLite writes one transaction at a
        time: a third process only queued for the write turn (two interleaved pairs: 4,524
        events/s with 3 processes, 4,525 with 2) and added its memory (the process tree grew 56
        MB over the run instead of 38)."""
        if self.concurrency:
            return self.concurrency
        cpus = os.cpu_count() or 1
        sqlite = self.database_url.get_secret_value().startswith("sqlite")
        return cpus if sqlite else cpus + 1

    @property
    def default_account_settings(self) -> AccountSettings:
        return AccountSettings(
            inactivity_close_after=self.default_inactivity_close_after,
            reassignment_window=self.default_reassignment_window,
            bot_enabled=self.default_bot_enabled,
        )

    @property
    def gateway_secret_list(self) -> list[str]:
        """The gateway's secrets, blanks dropped (empty: no authentication configured)."""
        raw = "" if self.gateway_secrets is None else self.gateway_secrets.get_secret_value()
        return [secret.strip() for secret in raw.split(",") if secret.strip()]

    # --- webhooks out (webhooks/dispatch.py, policies/delivery.py) --------------------------
    webhook_timeout: Seconds = Field(
        default=10.0, gt=0, description="Seconds a webhook request may take to connect/send/answer."
    )
    webhook_retry_base: Seconds = Field(
        default=5.0, gt=0, description="Seconds before a failed webhook's first retry (x2 each)."
    )
    webhook_retry_max: Seconds = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts of one webhook."
    )
    webhook_give_up_after: Duration = Field(
        default=timedelta(hours=24), description="A delivery still failing this long is given up."
    )
    webhook_dispatch_interval: Seconds = Field(
        default=1.0, gt=0, description="Seconds between beat's webhook dispatch runs."
    )
    webhook_dispatch_budget: Seconds = Field(
        default=10.0, gt=0, description="Seconds one dispatch run keeps claiming new work."
    )
    webhook_endpoint_concurrency: int = Field(
        default=4, ge=1, description="Requests in flight to one endpoint at once."
    )
    webhook_max_in_flight: int = Field(
        default=32, ge=1, description="Requests in flight per dispatcher process (all endpoints)."
    )
    webhook_circuit_failures: int = Field(
        default=5, ge=1, description="Failures in a row after which an endpoint is paused."
    )
    webhook_circuit_cool_down: Duration = Field(
        default=timedelta(seconds=60), description="How long a failing endpoint is paused."
    )

    # --- Chatwoot (gateway/routes/chatwoot.py, connectors/chatwoot/) ---------------------
    chatwoot_webhook_secret: SecretStr | None = Field(
        default=None,
        description="Comma-separated secrets Chatwoot signs its webhooks with (X-Chatwoot-"
        "Signature); without one every Chatwoot webhook is refused (401).",
    )
    chatwoot_allow_unsigned: bool = Field(
        default=False,
        description="UNSAFE: accept Chatwoot webhooks with no signature at all (older Chatwoot "
        "versions do not sign); anyone who reaches the URL can then close conversations.",
    )
    chatwoot_url: str | None = Field(
        default=None,
        description="Chatwoot's base URL (https://chatwoot.example.com): the default of "
        "`convlife webhooks add --chatwoot`.",
    )
    chatwoot_api_token: SecretStr | None = Field(
        default=None,
        description="A Chatwoot access token (header api_access_token): the default of "
        "`convlife webhooks add --chatwoot`. Secret: never logged.",
    )

    @property
    def chatwoot_secret_list(self) -> list[str]:
        """The Chatwoot webhook secrets, blanks dropped (empty: none configured)."""
        secret = self.chatwoot_webhook_secret
        raw = "" if secret is None else secret.get_secret_value()
        return [item.strip() for item in raw.split(",") if item.strip()]

    @property
    def webhook_delivery(self) -> DeliveryConfig:
        return DeliveryConfig(
            timeout=self.webhook_timeout,
            retry=RetryPolicy(
                base=self.webhook_retry_base,
                cap=self.webhook_retry_max,
                give_up_after=self.webhook_give_up_after,
            ),
            circuit=CircuitPolicy(
                failures_to_open=self.webhook_circuit_failures,
                cool_down=self.webhook_circuit_cool_down,
                max_in_flight=self.webhook_endpoint_concurrency,
            ),
            max_in_flight=self.webhook_max_in_flight,
            budget=self.webhook_dispatch_budget,
        )
