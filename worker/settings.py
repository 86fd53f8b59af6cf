"""All configuration, in one typed object read from `CONVLIFE_*` environment variables.

Built once at start-up (`Settings()`) and passed to whatever needs it; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from policies.delivery import CircuitPolicy, DeliveryConfig, RetryPolicy
from policies.state import AccountSettings

_NEVER = {"", "never", "null", "none", "off"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVLIFE_", extra="ignore", frozen=True)

    broker_url: SecretStr = Field(
        default=SecretStr("redis://localhost:6379/0"),
        description="Celery broker (Redis). Secret: it may carry a password; never logged.",
    )
    database_url: SecretStr = Field(
        default=SecretStr("sqlite:///convlife.db"),
        description="SQLAlchemy URL of the store: sqlite:///FILE or postgresql+psycopg://...",
    )
    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis for the decision and dead-letter streams; default: the broker's.",
    )

    default_inactivity_close_after: timedelta | None = Field(
        default=None, description="Auto-close setting of an account never configured (Never)."
    )
    default_reassignment_window: timedelta | None = Field(
        default=None, description="Reassignment window of an account never configured (none)."
    )
    default_bot_enabled: bool = False

    sweep_interval: float = Field(
        default=0.5, gt=0, description="Seconds between beat's sweeps for due conversations."
    )
    sweep_batch_size: int = Field(default=500, ge=1, description="Conversations closed per txn.")
    sweep_time_budget: float = Field(
        default=5.0, gt=0, description="Seconds one sweep task may keep closing batches."
    )
    relay_interval: float = Field(
        default=2.0, gt=0, description="Seconds between relays of decisions not yet on Redis."
    )
    max_clock_skew: timedelta = Field(
        default=timedelta(minutes=5),
        description="An event dated further than this in the future is dead-lettered.",
    )
    max_event_bytes: int = Field(default=64 * 1024, ge=1024)
    idempotency_retention: timedelta = Field(
        default=timedelta(days=30),
        description="How long applied event ids are kept to recognise redeliveries.",
    )
    visibility_timeout: int = Field(
        default=3600, ge=10, description="Seconds before Redis redelivers an unacked message."
    )
    concurrency: int | None = Field(default=None, ge=1, description="Worker processes.")
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object per log line, with ids as fields."
    )

    @field_validator("default_inactivity_close_after", "default_reassignment_window", mode="before")
    @classmethod
    def _never(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in _NEVER:
            return None
        return value

    @property
    def streams_redis_url(self) -> str:
        return (self.redis_url or self.broker_url).get_secret_value()

    @property
    def default_account_settings(self) -> AccountSettings:
        return AccountSettings(
            inactivity_close_after=self.default_inactivity_close_after,
            reassignment_window=self.default_reassignment_window,
            bot_enabled=self.default_bot_enabled,
        )

    # --- webhooks out (webhooks/dispatch.py, policies/delivery.py) --------------------------
    webhook_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a webhook request may take to connect/send/answer."
    )
    webhook_retry_base: float = Field(
        default=5.0, gt=0, description="Seconds before a failed webhook's first retry (x2 each)."
    )
    webhook_retry_max: float = Field(
        default=3600.0, gt=0, description="Longest wait between two attempts of one webhook."
    )
    webhook_give_up_after: timedelta = Field(
        default=timedelta(hours=24), description="A delivery still failing this long is given up."
    )
    webhook_dispatch_interval: float = Field(
        default=1.0, gt=0, description="Seconds between beat's webhook dispatch runs."
    )
    webhook_dispatch_budget: float = Field(
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
    webhook_circuit_cool_down: timedelta = Field(
        default=timedelta(seconds=60), description="How long a failing endpoint is paused."
    )

    @field_validator("webhook_give_up_after", "webhook_circuit_cool_down", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        # "86400" or "2.5" read as seconds, beside ISO 8601 ("PT24H", "P1D").
        if isinstance(value, str):
            try:
                return timedelta(seconds=float(value))
            except ValueError:
                return value
        return value

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
