"""Configuration: YAML under conf/, validated before the daemon starts."""

from engine.config.model import (
    ApiSettings,
    BreakerSettings,
    ChannelConfig,
    DestinationConfig,
    EngineConfig,
    FilterSpec,
    OutboxSettings,
    RetrySettings,
    Secret,
)

__all__ = [
    "ApiSettings",
    "BreakerSettings",
    "ChannelConfig",
    "DestinationConfig",
    "EngineConfig",
    "FilterSpec",
    "OutboxSettings",
    "RetrySettings",
    "Secret",
]
