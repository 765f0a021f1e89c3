"""What every exam-order destination shares, whatever it speaks (REST, SOAP, HL7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from engine.adapters.base import Adapter
from engine.message import Delivery, Payload
from plugins.pacs.model import BUSINESS_KEYS, order_keys, parse_order


class OrderAdapter(Adapter):
    """Indexes every order by accession number, requested procedure and scheduled step.
    Not instantiated on its own: a concrete adapter still implements `send`."""

    business_keys: ClassVar[tuple[str, ...]] = BUSINESS_KEYS

    def extract_keys(self, request: Payload) -> Mapping[str, str]:
        return order_keys(request)


class JsonOrderAdapter(OrderAdapter):
    """An order destination fed the validated order as JSON (REST, SOAP), stored and forwarded."""

    delivery: ClassVar[Delivery] = Delivery.ASYNC
    idempotent: ClassVar[bool] = False

    def transform(self, request: Payload) -> Payload:
        order = parse_order(request)
        return Payload.from_json(order.model_dump(mode="json", exclude_none=True))
