"""The configuration schema. Field descriptions feed the generated reference docs."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.message import Delivery, StorageMode


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretRef(Strict):
    """A secret is never written in a file: it names where to read it from."""

    env: str | None = Field(None, alias="$env", description="environment variable holding it")
    file: str | None = Field(None, alias="$file", description="file holding it (trailing newline dropped)")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _exactly_one(self) -> "SecretRef":
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of $env or $file")
        return self


Secret = SecretRef
"""Type of every secret-bearing field; the loader resolves it and rejects literals."""


class BreakerSettings(Strict):
    key: str | None = Field(
        None, description="breaker shared by destinations with the same key; defaults to the destination name"
    )
    fail_max: int = Field(5, gt=0, description="consecutive transient failures that open the breaker")
    reset_timeout: float = Field(30.0, gt=0, description="seconds open before one probe call is let through")
    slow_call_seconds: float | None = Field(None, gt=0, description="a call slower than this counts as a failure")


class RetrySettings(Strict):
    attempts: int = Field(3, ge=1, description="tries per delivery attempt, used only when the adapter is idempotent")
    initial_backoff: float = Field(0.2, ge=0, description="seconds before the first retry")
    max_backoff: float = Field(5.0, gt=0, description="cap on the exponential backoff, seconds")


class OutboxSettings(Strict):
    max_attempts: int = Field(50, gt=0, description="deliveries tried this often are marked dead")
    max_age_seconds: float = Field(3 * 86400, gt=0, description="deliveries older than this are marked dead")
    initial_backoff: float = Field(1.0, gt=0, description="seconds before the first redelivery")
    max_backoff: float = Field(300.0, gt=0, description="cap on the redelivery backoff, seconds")


class FilterSpec(Strict):
    """Deliver only messages whose field at `path` (in the payload format's path syntax:
    `$.infno` for JSON, `MSH-9.1` for HL7) matches."""

    path: str
    equals: str | None = None
    any_of: list[str] | None = Field(None, alias="in")
    regex: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_condition(self) -> "FilterSpec":
        given = [c for c in (self.equals, self.any_of, self.regex) if c is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of equals, in, regex")
        return self


class DestinationConfig(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="unique across all channels")
    adapter: str = Field(description="registered adapter name (see `hisbridge plugins`)")
    delivery: Delivery | None = Field(None, description="override the adapter's sync/async default")
    filter: FilterSpec | None = None
    breaker: BreakerSettings = BreakerSettings()
    retry: RetrySettings = RetrySettings()
    outbox: OutboxSettings = OutboxSettings()
    config: dict[str, Any] = Field(default_factory=dict, description="the adapter's own settings")


class SourceSpec(Strict):
    kind: str = Field("http", description="registered source kind; `http` is the engine's API")
    config: dict[str, Any] = Field(default_factory=dict)


class ProcessorSpec(Strict):
    name: str
    config: dict[str, Any] = Field(default_factory=dict)


class ChannelConfig(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    content_type: str = Field("application/json", description="content type of messages from the source")
    source: SourceSpec = SourceSpec()
    processors: list[ProcessorSpec] = Field(default_factory=list)
    destinations: list[DestinationConfig] = Field(min_length=1)
    storage: StorageMode = StorageMode.FULL


class ApiToken(Strict):
    name: str
    role: Literal["his", "operator"]
    token: SecretRef


class ApiSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8700, ge=0, le=65535)
    max_body_bytes: int = Field(1 << 20, gt=0)
    tokens: list[ApiToken] = Field(default_factory=list)


class StoreSettings(Strict):
    url: str = Field(
        "sqlite:///var/hisbridge.db",
        description="SQLAlchemy URL; relative SQLite paths are under the config's base dir",
    )
    retention_days: float = Field(30, gt=0, description="finished messages older than this are pruned")


class OutboxWorkerSettings(Strict):
    poll_interval: float = Field(0.2, gt=0)
    batch: int = Field(100, gt=0)
    lease_seconds: float = Field(60, gt=0, description="a claimed delivery not finished in this time is claimed again")
    concurrency: int = Field(16, gt=0)


class LoggingSettings(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    redact_fields: list[str] = Field(default_factory=lambda: ["name", "psn_name", "patient_name", "phone", "tel"])


class SharedBreakerState(Strict):
    """Breaker state shared by every engine node through Redis: one node's failures open
    the breaker for all, one probe runs across the cluster, a close is seen by all. When
    Redis cannot be reached each node falls back to its own breakers until it is back."""

    url: SecretRef | str = Field(
        description=(
            "`redis://`, `rediss://` or `unix://` URL, plain or as a secret;"
            " one holding a password must be a secret"
        ),
        examples=["redis://127.0.0.1:6379/0", {"$env": "HISBRIDGE_REDIS_URL"}],
    )
    key_prefix: str = Field(
        "hisbridge:breakers", min_length=1,
        description="Redis keys and the change channel start with this; nodes sharing state use the same",
    )
    probe_lease_seconds: float = Field(
        30.0, gt=0, description="a probe not reported back in this time (its node died) frees the slot"
    )
    resync_seconds: float = Field(
        2.0, gt=0, description="re-read every breaker's shared state this often (changes also arrive at once)"
    )
    timeout_seconds: float = Field(
        0.5, gt=0, description="a Redis command slower than this counts as Redis being down"
    )
    reconnect_seconds: float = Field(2.0, gt=0, description="while Redis is down, try it again this often")

    @field_validator("url")
    @classmethod
    def _plain_url_without_password(cls, url: SecretRef | str) -> SecretRef | str:
        if isinstance(url, str):
            parts = urlsplit(url)
            if parts.scheme not in ("redis", "rediss", "unix"):
                raise ValueError("must be a redis://, rediss:// or unix:// URL")
            if parts.password:
                raise ValueError("holds a password: give the URL as {$env: NAME} or {$file: PATH}")
        return url


class BreakersSettings(Strict):
    shared_state: SharedBreakerState | None = Field(
        None, description="share breaker state between engine nodes through Redis; a URL alone is enough"
    )

    @field_validator("shared_state", mode="before")
    @classmethod
    def _url_alone(cls, value: Any) -> Any:
        return {"url": value} if isinstance(value, str) else value


class EngineConfig(Strict):
    store: StoreSettings = StoreSettings()
    api: ApiSettings = ApiSettings()
    outbox: OutboxWorkerSettings = OutboxWorkerSettings()
    logging: LoggingSettings = LoggingSettings()
    breakers: BreakersSettings = BreakersSettings()
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
