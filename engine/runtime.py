"""The running engine: channels built from config, the store, breakers, outbox, sources.

Everything that serves messages (the HIS API, listeners, plugin routes, the CLI's replay)
goes through `Engine`, so storage, breakers and attribution always apply.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pluggy
import structlog

from engine.attribution.rules import FaultRule
from engine.catalogue import Catalogue
from engine.channels import Channel, breaker_key, build_channels, destinations_by_name
from engine.config.loader import source_config
from engine.config.model import BreakerSettings, EngineConfig
from engine.delivery import utcnow
from engine.formats.registry import FormatRegistry
from engine.message import Payload, StageName
from engine.metrics import EngineMetrics
from engine.outbox import OutboxWorker
from engine.pipeline import Pipeline
from engine.resilience.breaker import BreakerBoard
from engine.resilience.shared_state import redis_url
from engine.sources import Outcome, Receipt, Source, SourceBinding
from engine.store.store import MessageStore
from engine.transports.http import HttpClients

log = structlog.get_logger(__name__)

PRUNE_EVERY_SECONDS = 3600.0
SUSPENSIONS_REFRESH_SECONDS = 2.0


class UnknownChannel(LookupError):
    """No channel of that name is configured."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"no channel named {name!r}; configured channels: {', '.join(known) or 'none'}")


class Engine:
    """Build with `await Engine.start(...)`, stop with `await engine.stop()`."""

    def __init__(
        self, config: EngineConfig, pm: pluggy.PluginManager, catalogue: Catalogue,
        store: MessageStore, base_dir: Path,
    ) -> None:
        self.config = config
        self.pm = pm
        self.catalogue = catalogue
        self.store = store
        self.base_dir = base_dir
        self.metrics = EngineMetrics()
        self.formats = FormatRegistry(catalogue.formats)
        self.http = HttpClients()
        self.breakers = BreakerBoard(
            self._breaker_settings(), on_transition=self._on_transition, on_followed=self._drain_if_closed
        )
        self.channels: dict[str, Channel] = {}
        self.sources: list[Source] = []
        self.outbox: OutboxWorker | None = None
        self._background: list[asyncio.Task[None]] = []
        self.pipeline: Pipeline

    @classmethod
    async def start(
        cls, config: EngineConfig, *, pm: pluggy.PluginManager, catalogue: Catalogue, base_dir: Path,
        rules: list[FaultRule] | None = None, run_outbox: bool = True, run_sources: bool = True,
    ) -> "Engine":
        store = await MessageStore.open(config.store.url)
        engine = cls(config, pm, catalogue, store, base_dir)
        try:
            await engine._start(rules or [], run_outbox=run_outbox, run_sources=run_sources)
        except BaseException:
            await engine.stop()
            raise
        return engine

    async def _start(self, extra_rules: list[FaultRule], *, run_outbox: bool, run_sources: bool) -> None:
        self.breakers.apply_suspensions(await self.store.suspensions())
        shared = self.config.breakers.shared_state
        if shared is not None:
            await self.breakers.share(shared, redis_url(shared, self.base_dir))
        self.channels = build_channels(self.config.channels, self.catalogue, self.http, self.breakers, self.base_dir)
        self.pipeline = Pipeline(
            channels=self.channels, store=self.store, formats=self.formats,
            rules=[*self.catalogue.fault_rules, *extra_rules], metrics=self.metrics, pm=self.pm,
        )
        outbox = OutboxWorker(self.pipeline, destinations_by_name(self.channels), self.config.outbox)
        self.pipeline.wake_outbox = outbox.wake
        self.outbox = outbox
        self.pm.hook.hisbridge_startup(engine=self)
        if run_outbox:
            outbox.start()
            self._background.append(asyncio.create_task(self._prune_periodically(), name="prune"))
            self._background.append(asyncio.create_task(self._follow_suspensions(), name="suspensions"))
        if run_sources:
            await self._start_sources()

    async def stop(self) -> None:
        """Stop listeners, drain in-flight deliveries, close transports and the store."""
        for source in reversed(self.sources):
            await source.stop()
        self.sources.clear()
        if self.outbox is not None:
            await self.outbox.stop()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self.channels:
            self.pm.hook.hisbridge_shutdown(engine=self)
        for channel in self.channels.values():
            for destination in channel.destinations:
                await destination.adapter.aclose()
        self.channels = {}
        await self.http.aclose()
        await self.breakers.aclose()
        await self.store.close()

    # --- messages -----------------------------------------------------------------------

    def channel(self, name: str) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise UnknownChannel(name, sorted(self.channels)) from None

    async def call(self, channel: str, payload: Payload, *, caller: str) -> Outcome:
        """Run a message through `channel`; wait for its sync destination's reply if any."""
        return await self.pipeline.call(self.channel(channel), payload, source=f"api:{caller}")

    async def accept(self, channel: str, payload: Payload, *, caller: str) -> Receipt:
        """Store a message durably and queue every delivery; returns after the commit."""
        return await self.pipeline.accept(self.channel(channel), payload, source=caller)

    async def replay(self, message_id: str, *, by: str) -> Outcome:
        """Run a stored message's raw bytes again as a new message linked to the original."""
        original = await self.store.get_message(message_id)
        if original is None:
            raise LookupError(f"no message {message_id}")
        raw = await self.store.get_stage(message_id, StageName.RAW.value)
        if raw is None:
            raise LookupError(f"message {message_id} has no stored raw stage (storage mode metadata)")
        return await self.pipeline.call(
            self.channel(original.channel), raw, source=f"replay:{by}", parent_id=message_id
        )

    # --- breakers -----------------------------------------------------------------------

    async def suspend(self, breaker: str, *, reason: str, by: str) -> None:
        """Open a destination's breaker by hand; persisted, so it survives a restart."""
        self.breakers.get(breaker)
        await self.store.suspend(breaker, reason=reason, by=by)
        self.breakers.suspend(breaker, reason, by)

    async def resume(self, breaker: str, *, by: str) -> None:
        self.breakers.get(breaker)
        await self.store.resume(breaker)
        self.breakers.resume(breaker)
        log.info("breaker resumed by operator", breaker=breaker, by=by)

    def _breaker_settings(self) -> dict[str, BreakerSettings]:
        settings: dict[str, BreakerSettings] = {}
        for channel in self.config.channels.values():
            for destination in channel.destinations:
                settings.setdefault(breaker_key(destination), destination.breaker)
        return settings

    async def _on_transition(self, breaker: str, old: str, new: str, reason: str) -> None:
        self.metrics.breaker_state(breaker, new)
        log.warning("breaker state changed", breaker=breaker, old=old, new=new, reason=reason)
        await self.store.record_breaker_event(breaker, old, new, reason)
        await self._drain_if_closed(breaker, old, new, reason)

    async def _drain_if_closed(self, breaker: str, old: str, new: str, reason: str) -> None:
        """A breaker closed, here or (shared) on another engine node: drain its backlog now."""
        if new == "closed" and self.outbox is not None:
            behind = [d.name for c in self.channels.values() for d in c.destinations
                      if breaker_key(d.config) == breaker]
            await self.store.expedite(behind)
            self.outbox.wake()

    # --- background ---------------------------------------------------------------------

    async def _start_sources(self) -> None:
        for channel in self.channels.values():
            spec = channel.config.source
            if spec.kind == "http":
                continue
            source_cls = self.catalogue.sources[spec.kind]
            binding = SourceBinding(
                channel=channel.name,
                accept=partial(self.pipeline.accept, channel, source=spec.kind),
                call=partial(self.pipeline.call, channel, source=spec.kind),
                refuse=partial(self.pipeline.refuse, channel, source=spec.kind),
            )
            source = source_cls(source_config(self.catalogue, channel.config, self.base_dir), binding)
            await source.start()
            self.sources.append(source)

    async def _follow_suspensions(self) -> None:
        """Apply suspensions made elsewhere (the CLI, another node) to this node's breakers."""
        while True:
            await asyncio.sleep(SUSPENSIONS_REFRESH_SECONDS)
            try:
                persisted = await self.store.suspensions()
            except Exception:  # keep the current state until the store answers
                log.exception("reading suspensions failed")
                continue
            for status in self.breakers.states():
                if status.name in persisted and status.state != "suspended":
                    self.breakers.apply_suspensions({status.name: persisted[status.name]})
                elif status.name not in persisted and status.state == "suspended":
                    self.breakers.resume(status.name)

    async def prune(self, *, older_than: datetime) -> tuple[int, int]:
        """Delete finished messages received before `older_than`, then the attachments
        (blobs) no remaining message names; returns both counts."""
        messages = await self.store.prune(older_than=older_than)
        if messages:
            log.info("pruned finished messages", count=messages, older_than=older_than.isoformat())
        return messages, await self.store.prune_blobs(older_than=older_than)

    async def _prune_periodically(self) -> None:
        while True:
            try:
                await self.prune(older_than=utcnow() - timedelta(days=self.config.store.retention_days))
            except Exception:  # pruning is housekeeping; try again next round
                log.exception("pruning failed")
            await asyncio.sleep(PRUNE_EVERY_SECONDS)
