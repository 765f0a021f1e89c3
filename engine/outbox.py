"""The outbox worker: claims queued deliveries and drives them through their breakers.

Claims are leases in the store, so a worker killed mid-delivery loses nothing: its leases
expire and another worker (or the restarted daemon) claims them again. Deliveries to a
destination whose breaker is open are not claimed at all; they drain when it closes.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Mapping

import structlog

from engine.channels import Channel, Destination
from engine.config.model import OutboxWorkerSettings
from engine.pipeline import Pipeline
from engine.store.records import ClaimedDelivery

log = structlog.get_logger(__name__)


class OutboxWorker:
    def __init__(
        self,
        pipeline: Pipeline,
        destinations: Mapping[str, tuple[Channel, Destination]],
        settings: OutboxWorkerSettings,
    ) -> None:
        self.pipeline = pipeline
        self.destinations = destinations
        self.settings = settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def stop(self, *, drain_seconds: float = 10.0) -> None:
        """Stop claiming, let in-flight deliveries finish (their leases cover the rest)."""
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        await self._task
        if self._in_flight:
            done, pending = await asyncio.wait(self._in_flight, timeout=drain_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                claimed = await self._claim()
            except Exception:  # a store hiccup must not kill the worker
                log.exception("outbox claim failed")
                claimed = []
            for item in claimed:
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(item))
                self._in_flight.add(task)
                task.add_done_callback(self._in_flight.discard)
            if len(claimed) < self.settings.batch:
                await self._idle()

    async def _claim(self) -> list[ClaimedDelivery]:
        available = [name for name, (_, dest) in self.destinations.items() if dest.breaker.available]
        if not available:
            return []
        free = max(1, min(self.settings.batch, self._slots_free()))
        return await self.pipeline.store.claim_due(
            self.worker_id, limit=free, lease_seconds=self.settings.lease_seconds, destinations=available
        )

    def _slots_free(self) -> int:
        return self.settings.concurrency - len(self._in_flight)

    async def _idle(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.settings.poll_interval)
        except TimeoutError:
            pass
        self._wake.clear()

    async def _deliver(self, item: ClaimedDelivery) -> None:
        channel, destination = self.destinations[item.destination]
        try:
            await self.pipeline.deliver_claimed(item, destination, channel)
        except Exception:  # the lease expires and the delivery is tried again
            log.exception("outbox delivery failed", message_id=item.message_id, destination=item.destination)
        finally:
            self._slots.release()
