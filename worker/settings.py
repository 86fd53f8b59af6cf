"""All configuration, in one typed object read from `CONVLIFE_*` environment variables.

Built once at start-up (`Settings()`) and passed to whatever needs it; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    # --- HTTP gateway (`convlife gateway`, gateway/) ---
    gateway_secrets: SecretStr | None = Field(
        default=None,
        description="Comma-separated HMAC secrets the gateway accepts (several while a key "
        "rotates). Without one the gateway refuses to start, unless --insecure-no-auth.",
    )
    gateway_retry_after: int = Field(
        default=5, ge=1, description="Retry-After (seconds) of a 503 when the broker is down."
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

    @property
    def gateway_secret_list(self) -> list[str]:
        """The gateway's secrets, blanks dropped (empty: no authentication configured)."""
        raw = "" if self.gateway_secrets is None else self.gateway_secrets.get_secret_value()
        return [secret.strip() for secret in raw.split(",") if secret.strip()]
