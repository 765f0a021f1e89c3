"""Prometheus metrics of one engine, in a registry of its own.

Each `EngineMetrics` owns a `CollectorRegistry` instead of using the process-global one, so
tests (and the CLI) can build many engines in one process without "duplicated timeseries"
errors. The pipeline calls the recording methods on every message: they only look up a
cached labelled child and add to it. Queue gauges are refreshed from the store when the
metrics are scraped, not on every enqueue.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from engine.resilience.breaker import BreakerStatus

log = structlog.get_logger(__name__)

BREAKER_STATE_VALUES: dict[str, int] = {"closed": 0, "half_open": 1, "open": 2, "suspended": 3}

# Sync calls to insurance centres legitimately take seconds; buckets reach a minute.
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class QueueDepthSource(Protocol):
    async def queue_depths(self) -> dict[str, tuple[int, float]]: ...


class EngineMetrics:
    """Counters, gauges and histograms named `hisbridge_*`; `render()` gives the scrape text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._received = Counter(
            "hisbridge_received", "Messages received, per channel",
            ["channel"], registry=self.registry,
        )
        self._deliveries = Counter(
            "hisbridge_deliveries", "Finished deliveries, per channel, destination and final status",
            ["channel", "destination", "status"], registry=self.registry,
        )
        self._delivery_seconds = Histogram(
            "hisbridge_delivery_seconds", "Time from receipt to a delivery's final status",
            ["channel", "destination"], buckets=DELIVERY_BUCKETS, registry=self.registry,
        )
        self._queue_depth = Gauge(
            "hisbridge_queue_depth", "Queued async deliveries, per destination",
            ["destination"], registry=self.registry,
        )
        self._queue_oldest = Gauge(
            "hisbridge_queue_oldest_age_seconds", "Age of the oldest queued delivery, per destination",
            ["destination"], registry=self.registry,
        )
        self._breaker_state = Gauge(
            "hisbridge_breaker_state", "Breaker state: 0 closed, 1 half_open, 2 open, 3 suspended",
            ["breaker"], registry=self.registry,
        )
        self._breaker_transitions = Counter(
            "hisbridge_breaker_transitions", "Breaker state changes, per breaker and new state",
            ["breaker", "to"], registry=self.registry,
        )
        # Labelled children cached by label values: `.labels()` validates on every call.
        self._received_by: dict[str, Counter] = {}
        self._deliveries_by: dict[tuple[str, str, str], Counter] = {}
        self._seconds_by: dict[tuple[str, str], Histogram] = {}
        self._queued_destinations: set[str] = set()

    # --- recording (hot path) -----------------------------------------------------------

    def message_received(self, channel: str) -> None:
        child = self._received_by.get(channel)
        if child is None:
            child = self._received_by[channel] = self._received.labels(channel)
        child.inc()

    def delivery_finished(self, channel: str, destination: str, status: str, seconds: float) -> None:
        key = (channel, destination, status)
        counter = self._deliveries_by.get(key)
        if counter is None:
            counter = self._deliveries_by[key] = self._deliveries.labels(channel, destination, status)
        counter.inc()
        pair = (channel, destination)
        histogram = self._seconds_by.get(pair)
        if histogram is None:
            histogram = self._seconds_by[pair] = self._delivery_seconds.labels(channel, destination)
        histogram.observe(seconds)

    def breaker_state(self, breaker: str, state: str) -> None:
        """A breaker moved to `state`: set its gauge and count the transition."""
        self._set_breaker_gauge(breaker, state)
        self._breaker_transitions.labels(breaker, state).inc()

    def set_queue(self, destination: str, depth: int, oldest_age_seconds: float) -> None:
        self._queued_destinations.add(destination)
        self._queue_depth.labels(destination).set(depth)
        self._queue_oldest.labels(destination).set(oldest_age_seconds)

    # --- scraping -----------------------------------------------------------------------

    async def render(
        self, store: QueueDepthSource, breakers: Iterable[BreakerStatus] = ()
    ) -> bytes:
        """Refresh queue gauges from the store (and breaker gauges from `breakers`, without
        counting transitions), then return the Prometheus text exposition."""
        depths = await store.queue_depths()
        for destination in self._queued_destinations - depths.keys():
            self.set_queue(destination, 0, 0.0)
        for destination, (depth, oldest_age) in depths.items():
            self.set_queue(destination, depth, oldest_age)
        for status in breakers:
            self._set_breaker_gauge(status.name, status.state)
        return generate_latest(self.registry)

    def _set_breaker_gauge(self, breaker: str, state: str) -> None:
        value = BREAKER_STATE_VALUES.get(state)
        if value is None:
            log.warning("unknown breaker state not exported", breaker=breaker, state=state)
            return
        self._breaker_state.labels(breaker).set(value)
