"""`pacs_worklist`: the engine's DICOM Modality Worklist, fed by the exam orders it routes.

Put it beside the PACS destination on an exam-order channel: every order routed there is
applied to the worklist (new adds, change replaces, cancel removes) and modalities query it
with C-FIND on `port`. The SCP runs only in the daemon: the `hisbridge_startup` hook starts
it and first replays the channel's stored orders (oldest first, up to `replay_limit`), so a
restart serves what was scheduled before; `aclose()` stops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import structlog
from pydantic import Field

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.errors import InputError
from engine.message import Delivery, Payload
from plugins.pacs.model import BUSINESS_KEYS, ExamOrder, order_keys, parse_order

if TYPE_CHECKING:
    from engine.runtime import Engine

log = structlog.get_logger(__name__)


class PacsWorklistConfig(AdapterConfig):
    host: str = Field("0.0.0.0", description="address the worklist SCP listens on")
    port: int = Field(104, ge=0, le=65535, description="DICOM port modalities query (0 picks a free one)")
    ae_title: str = Field("HISBRIDGE_MWL", max_length=16, description="the SCP's AE title")
    default_station_ae: str = Field("", max_length=16, description="ScheduledStationAETitle when an order names none")
    replay_limit: int = Field(5000, ge=0, description="stored orders replayed into the worklist at start-up")


class PacsWorklistAdapter(Adapter):
    name: ClassVar[str] = "pacs_worklist"
    Config: ClassVar[type[AdapterConfig]] = PacsWorklistConfig
    delivery: ClassVar[Delivery] = Delivery.ASYNC
    idempotent: ClassVar[bool] = True  # applying the same order twice leaves the same worklist
    business_keys: ClassVar[tuple[str, ...]] = BUSINESS_KEYS
    description: ClassVar[str] = "DICOM Modality Worklist (C-FIND SCP) built from the exam orders routed to it"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, PacsWorklistConfig)
        super().__init__(config, services)
        self.settings = config
        from plugins.pacs.worklist import Worklist, WorklistScp  # lazily: pynetdicom only where used

        self.worklist = Worklist(default_station_ae=config.default_station_ae)
        self.scp = WorklistScp(self.worklist, ae_title=config.ae_title, host=config.host, port=config.port)
        self.serving = False

    def transform(self, request: Payload) -> Payload:
        order = parse_order(request)
        return Payload.from_json(order.model_dump(mode="json", exclude_none=True))

    def extract_keys(self, request: Payload) -> Mapping[str, str]:
        return order_keys(request)

    async def send(self, request: Payload, wire: Wire) -> Payload:
        wire.sent(request)
        self.worklist.apply(ExamOrder.model_validate_json(request.body))
        answer = Payload.from_json({"worklist_items": len(self.worklist)})
        wire.received(answer)
        return answer

    def start(self) -> None:
        if not self.serving:
            self.scp.start()
            self.serving = True

    async def replay(self, engine: Engine, channel: str) -> int:
        """Apply the channel's stored orders, oldest first; unusable ones were refused at intake."""
        views = await engine.store.list_messages(channel=channel, limit=self.settings.replay_limit)
        applied = 0
        for view in reversed(views):
            raw = await engine.store.get_stage(view.id, "raw")
            if raw is None or view.status in ("failed", "filtered"):
                continue
            try:
                self.worklist.apply(parse_order(raw))
            except InputError:
                continue
            applied += 1
        return applied

    async def aclose(self) -> None:
        if self.serving:
            self.scp.stop()
            self.serving = False


async def start_worklists(engine: Engine) -> None:
    for channel in engine.channels.values():
        for destination in channel.destinations:
            adapter = destination.adapter
            if isinstance(adapter, PacsWorklistAdapter) and not adapter.serving:
                replayed = await adapter.replay(engine, channel.name)
                adapter.start()
                log.info("worklist started", channel=channel.name, port=adapter.scp.port, replayed=replayed)


__all__ = ["PacsWorklistAdapter", "PacsWorklistConfig", "start_worklists"]
