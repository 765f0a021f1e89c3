"""The running engine: channels built from config, the store, breakers, metrics.
(Skeleton: these signatures are the contract the API, CLI and plugins code against.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.message import Payload
from engine.sources import Outcome, Receipt

if TYPE_CHECKING:
    import pluggy

    from engine.catalogue import Catalogue
    from engine.config.model import EngineConfig
    from engine.metrics import EngineMetrics
    from engine.resilience.breaker import BreakerBoard
    from engine.store.store import MessageStore


class UnknownChannel(LookupError):
    """No channel of that name is configured."""


class Engine:
    config: EngineConfig
    pm: pluggy.PluginManager
    catalogue: Catalogue
    store: MessageStore
    breakers: BreakerBoard
    metrics: EngineMetrics

    async def call(self, channel: str, payload: Payload, *, caller: str) -> Outcome:
        """Run a message through `channel` and wait for its sync destination's reply.

        Async destinations of the channel are queued in the outbox; when the channel has no
        sync destination the Outcome has status `queued` and no reply. Never raises for a
        bad message: failures come back as an Outcome with `error` =
        {party, rule_id, reason, remedy, destination, http_status}. Raises UnknownChannel."""
        raise NotImplementedError

    async def accept(self, channel: str, payload: Payload, *, caller: str) -> Receipt:
        """Store a message durably and queue its deliveries; returns after the commit."""
        raise NotImplementedError

    async def replay(self, message_id: str, *, by: str) -> str:
        """Run a stored message's raw stage again as a new message linked by parent_id."""
        raise NotImplementedError
