"""Tell HIS when an invoice message is finished: its status and the bill's identifiers.

The observer hook `hisbridge_message_finished` carries no payload, so the notifier reads the
stored reply (`invoice_view`) and passes it on, one of two ways:

* `callback_channel`: handed to that channel as a new message (`engine.accept`), so the
  callback is stored, retried, breaker-guarded and attributed like any delivery. Only the
  moment between the invoice's final write and this hand-over is unguarded;
* `callback_url`: posted directly, best effort: `callback_attempts` tries, then a log line;
  callbacks not yet made when the daemon stops are dropped (HIS can still poll).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from engine import hookimpl
from engine.config.secrets import resolve
from engine.errors import AdapterError, ConfigError
from engine.message import Delivery, Payload
from engine.transports import translate_errors
from plugins.e_invoice.adapter import EInvoiceConfig
from plugins.e_invoice.results import ADAPTER_NAME, invoice_view

if TYPE_CHECKING:
    from engine.runtime import Engine

log = structlog.get_logger(__name__)

CALLBACK_BACKOFF_SECONDS = 0.5
CALLER = "e_invoice.callback"


class CallbackTarget:
    def __init__(self, config: EInvoiceConfig) -> None:
        self.channel = config.callback_channel
        self.url = config.callback_url
        self.attempts = config.callback_attempts
        self.timeout = config.timeout
        self.headers = {}
        if config.callback_token is not None:
            self.headers["Authorization"] = f"Bearer {resolve(config.callback_token, config._base_dir)}"


class InvoiceCallbacks:
    """A plugin object registered at start-up when some e_invoice destination has a callback."""

    def __init__(self, engine: Engine, targets: dict[tuple[str, str], CallbackTarget]) -> None:
        self.engine = engine
        self.targets = targets
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def for_engine(cls, engine: Engine) -> InvoiceCallbacks | None:
        """The notifier for the engine's channels, or None when no destination wants one.
        ConfigError when a callback_channel names no channel (start-up fails, naming it)."""
        targets: dict[tuple[str, str], CallbackTarget] = {}
        for name, channel in engine.channels.items():
            for destination in channel.destinations:
                config = destination.adapter.config
                if (destination.config.adapter != ADAPTER_NAME or destination.delivery is not Delivery.ASYNC
                        or not isinstance(config, EInvoiceConfig)):
                    continue
                if config.callback_channel is not None and config.callback_channel not in engine.channels:
                    raise ConfigError([f"channels.{name}.destinations.{destination.config.name}.config."
                                       f"callback_channel: no channel named {config.callback_channel!r}"])
                if config.callback_url is not None or config.callback_channel is not None:
                    targets[(name, destination.config.name)] = CallbackTarget(config)
        return cls(engine, targets) if targets else None

    @hookimpl
    def hisbridge_message_finished(
        self, message_id: str, channel: str, destination: str, status: str, verdict: dict[str, Any] | None
    ) -> None:
        target = self.targets.get((channel, destination))
        if target is None:
            return
        task = asyncio.get_running_loop().create_task(self._notify(target, message_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @hookimpl
    def hisbridge_shutdown(self, engine: Engine) -> None:
        for task in self._pending:
            task.cancel()
        engine.pm.unregister(self)

    async def _notify(self, target: CallbackTarget, message_id: str) -> None:
        body = await invoice_view(self.engine, message_id)
        if body is None:
            return
        if target.channel is not None:
            receipt = await self.engine.accept(target.channel, Payload.from_json(body), caller=CALLER)
            log.debug("e-invoice callback queued", message_id=message_id, callback_message_id=receipt.message_id)
            return
        await self._post(target, message_id, body)

    async def _post(self, target: CallbackTarget, message_id: str, body: dict[str, Any]) -> None:
        assert target.url is not None
        client = self.engine.http.http_client(timeout=target.timeout)
        for attempt in range(1, target.attempts + 1):
            try:
                with translate_errors():
                    response = await client.post(target.url, json=body, headers=target.headers)
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
            except AdapterError as exc:
                problem = str(exc)
            log.warning("e-invoice callback failed", message_id=message_id, attempt=attempt, problem=problem)
            if attempt < target.attempts:
                await asyncio.sleep(CALLBACK_BACKOFF_SECONDS * attempt)
        log.error("e-invoice callback given up; HIS must poll", message_id=message_id)


__all__ = ["InvoiceCallbacks"]
