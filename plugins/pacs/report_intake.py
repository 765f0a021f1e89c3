"""What every PACS report source does before a report becomes a message.

1. The accession number must be one the engine routed an exam order for (a message on an
   order channel, not refused at intake); otherwise the report is refused (`UnknownAccession`).
2. Each attachment is stored once in the engine's blob store; the message carries references.
3. The report is stored through the channel (`binding.accept`); a refusal is stored too
   (`binding.refuse`), attributed to the sender, and the sender gets a clear negative answer.

Sources get the running engine (its store and channels) through `engine_for(channel)` when
they start: the plugin's `hisbridge_startup` hook binds each report channel to its engine just
before the engine starts its sources, and `hisbridge_shutdown` releases it. (The Source
contract hands a source only its binding; an engine reference there would replace this.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

import structlog
from pydantic import Field

from engine.errors import EngineError, InputError
from engine.message import Payload, Status
from engine.sources import Receipt, SourceBinding, SourceConfig
from plugins.pacs.attachments import InlineAttachment
from plugins.pacs.order_adapter import OrderAdapter
from plugins.pacs.worklist_adapter import PacsWorklistAdapter

if TYPE_CHECKING:
    from engine.runtime import Engine

log = structlog.get_logger(__name__)

REPORT_SOURCE_KINDS = frozenset({"pacs_oru", "pacs_report_http"})
UNROUTED = frozenset({Status.FAILED.value, Status.FILTERED.value})
ACCESSION_LOOKUP_LIMIT = 10
REFUSED_HEAD_BYTES = 64 * 1024
"""Of refused input larger than the attachment limit, only this head is stored."""

_engines: dict[str, Engine] = {}


class UnknownAccession(InputError):
    """A report for an exam the engine never routed an order for."""


class ReportSourceConfig(SourceConfig):
    """What both report source kinds share."""

    max_attachment_bytes: int = Field(
        10 * 1024 * 1024, gt=0, description="largest PDF or image accepted in one report (bytes, decoded; "
        "base64 makes it a third larger on the wire)"
    )
    check_accession: bool = Field(
        True, description="refuse reports whose accession number no order channel of this engine routed"
    )
    order_channels: list[str] | None = Field(
        None, description="channels whose orders make an accession number known; default every channel "
        "with a pacs order or worklist destination",
    )
    party: Literal["third_party", "device"] = Field(
        "third_party", description="who is blamed for a refused report: the PACS (third_party) or a device"
    )


def bind_engine(engine: Engine) -> None:
    for channel in engine.channels.values():
        if channel.config.source.kind in REPORT_SOURCE_KINDS:
            _engines[channel.name] = engine


def release_engine(engine: Engine) -> None:
    for name in [name for name, bound in _engines.items() if bound is engine]:
        del _engines[name]


def engine_for(channel: str) -> Engine:
    try:
        return _engines[channel]
    except KeyError:
        raise EngineError(f"report channel {channel} has no running engine (the pacs plugin is not loaded?)") from None


class ReportIntake:
    """One report source's checks and storage, over its channel's binding."""

    def __init__(self, config: ReportSourceConfig, binding: SourceBinding) -> None:
        self.config = config
        self.binding = binding
        self._engine: Engine | None = None

    def attach(self) -> None:
        """Take the running engine of this source's channel (call from the source's start())."""
        self._engine = engine_for(self.binding.channel)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise EngineError(f"report source of {self.binding.channel} used before it started")
        return self._engine

    def order_channels(self) -> set[str]:
        if self.config.order_channels is not None:
            return set(self.config.order_channels)
        return {
            channel.name for channel in self.engine.channels.values()
            if any(isinstance(d.adapter, OrderAdapter | PacsWorklistAdapter) for d in channel.destinations)
        }

    async def check_accession(self, accession: str) -> None:
        if not self.config.check_accession:
            return
        channels = self.order_channels()
        for channel in sorted(channels):
            views = await self.engine.store.list_messages(
                channel=channel, key=("accession_number", accession), limit=ACCESSION_LOOKUP_LIMIT
            )
            if any(view.status not in UNROUTED for view in views):
                return
        raise UnknownAccession(
            f"no exam order with accession number {accession} was routed by this engine "
            f"(order channels: {', '.join(sorted(channels)) or 'none'})",
            field="accession_number", party=self.config.party,
        )

    async def take(
        self, message: Payload, accession: str, attachments: Iterable[InlineAttachment], *, received: Payload
    ) -> tuple[Receipt, InputError | None]:
        """Store the report (`message`, attachments already replaced by references) once its
        accession is known and its attachments are stored; else refuse what was `received`.
        Returns the receipt and, when this step refused the report, why."""
        try:
            if not accession:
                raise InputError("accession number is required", field="accession_number", party=self.config.party)
            await self.check_accession(accession)
        except InputError as exc:
            return await self.refuse(received, exc), exc
        store = self.engine.store
        for attachment in attachments:
            await store.put_blob(attachment.data, attachment.content_type)
        return await self.binding.accept(message), None

    async def refuse(self, received: Payload, error: InputError) -> Receipt:
        """Store refused input as a failed message blamed on the sender, and say why in the log."""
        kept = received
        if len(received.body) > self.config.max_attachment_bytes:
            kept = Payload(received.body[:REFUSED_HEAD_BYTES], received.content_type, received.headers)
        receipt = await self.binding.refuse(kept, error)
        log.warning("pacs report refused", channel=self.binding.channel, message_id=receipt.message_id,
                    field=error.field, reason=error.reason[:200])
        return receipt


__all__ = [
    "REPORT_SOURCE_KINDS",
    "ReportIntake",
    "ReportSourceConfig",
    "UnknownAccession",
    "bind_engine",
    "engine_for",
    "release_engine",
]
