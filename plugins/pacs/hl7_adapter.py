"""`pacs_hl7`: HIS exam orders to a PACS/RIS as HL7 ORM^O01 over MLLP, ACK checked.

The engine's MLLP sender does the wire work (one message in flight, MSA-2 must name our
MSH-10, AE refuses with its text, AR may pass); this adapter only turns the order HIS
posted into the ORM^O01 message, which is then the `transformed` and `sent` stage.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from engine.adapters.base import AdapterServices
from engine.message import Payload
from engine.mllp.listener import HL7_CONTENT_TYPE
from engine.mllp.sender import MllpSender, MllpSenderConfig
from plugins.pacs.model import parse_order
from plugins.pacs.order_adapter import OrderAdapter
from plugins.pacs.orm import build_orm


class PacsHl7Config(MllpSenderConfig):
    sending_application: str = Field("HIS", description="MSH-3")
    sending_facility: str = Field("HOSPITAL", description="MSH-4")
    receiving_application: str = Field("PACS", description="MSH-5")
    receiving_facility: str = Field("RADIOLOGY", description="MSH-6")


class PacsHl7Adapter(OrderAdapter, MllpSender):
    name: ClassVar[str] = "pacs_hl7"
    Config = PacsHl7Config
    description: ClassVar[str] = "exam orders (new/change/cancel) as HL7 ORM^O01 over MLLP, ACK checked"

    def __init__(self, config: PacsHl7Config, services: AdapterServices) -> None:
        super().__init__(config, services)
        self.order_settings = config

    def transform(self, request: Payload) -> Payload:
        order = parse_order(request)
        settings = self.order_settings
        message = build_orm(
            order,
            sending=(settings.sending_application, settings.sending_facility),
            receiving=(settings.receiving_application, settings.receiving_facility),
        )
        return Payload(message.encode("utf-8"), HL7_CONTENT_TYPE)


__all__ = ["PacsHl7Adapter", "PacsHl7Config"]
