"""Channels built from config: the source's route through processors to destinations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from engine.adapters.base import Adapter, AdapterServices
from engine.catalogue import Catalogue
from engine.config.loader import adapter_config, processor_config
from engine.config.model import ChannelConfig, DestinationConfig
from engine.message import Delivery, Payload
from engine.processors import Processor
from engine.resilience.breaker import BreakerBoard, DestinationBreaker


@dataclass
class Destination:
    """One subscriber of a channel, with its own adapter, breaker and queue."""

    config: DestinationConfig
    adapter: Adapter
    delivery: Delivery
    breaker: DestinationBreaker

    @property
    def name(self) -> str:
        return self.config.name

    def is_idempotent(self, request: Payload) -> bool:
        return self.adapter.is_idempotent(request)


@dataclass
class Channel:
    config: ChannelConfig
    processors: list[Processor]
    destinations: list[Destination]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def sync_destination(self) -> Destination | None:
        return next((d for d in self.destinations if d.delivery is Delivery.SYNC), None)


def breaker_key(destination: DestinationConfig) -> str:
    return destination.breaker.key or destination.name


def build_channels(
    configs: Mapping[str, ChannelConfig],
    catalogue: Catalogue,
    services: AdapterServices,
    breakers: BreakerBoard,
    base_dir: Path,
) -> dict[str, Channel]:
    """Instantiate every channel's processors and adapters; config is already validated."""
    channels: dict[str, Channel] = {}
    for name, config in configs.items():
        processors = [
            catalogue.processors[spec.name](processor_config(catalogue, spec, base_dir))
            for spec in config.processors
        ]
        destinations = []
        for dest in config.destinations:
            adapter_cls = catalogue.adapters[dest.adapter]
            adapter = adapter_cls(adapter_config(catalogue, dest, base_dir), services)
            destinations.append(
                Destination(
                    config=dest,
                    adapter=adapter,
                    delivery=dest.delivery or adapter_cls.delivery,
                    breaker=breakers.get(breaker_key(dest)),
                )
            )
        channels[name] = Channel(config, processors, destinations)
    return channels


def destinations_by_name(channels: Mapping[str, Channel]) -> dict[str, tuple[Channel, Destination]]:
    return {d.name: (c, d) for c in channels.values() for d in c.destinations}
