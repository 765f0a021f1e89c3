"""Ask the LIS for a specimen's orders on behalf of an analyser, always answering in time.

Both host queries (ASTM Q record, HL7 QRY^Q02) go through the source's channel as a sync
call (`SourceBinding.call`), so the request is stored, routed to the channel's sync
destination (the LIS or HIS order service) and its reply recorded like any other message.
The request is JSON an order service can use without knowing the device protocol:

    {"kind": "astm_host_query" | "hl7_host_query", "barcodes": ["BC0001"], "tests": [...],
     "instrument": "Mindray", ...the device's own bytes for the record...}

Route it with a destination filter on `$.kind`. The reply is JSON:

    {"orders": [{"specimen_id": "BC0001", "tests": ["GLU", "K"], "priority": "R",
                 "specimen_type": "Serum",
                 "patient": {"practice_id": "P01", "family_name": "...", "sex": "M"}}]}

Whatever goes wrong (LIS down, breaker open or suspended, an error reply, a reply that is
not orders, no answer within `timeout`), `find()` returns no orders and the reason, which
is logged next to the message id, so the device is answered "no orders" before its own
timeout. A call that outlives the timeout keeps running so its outcome is still stored.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from engine.message import Payload
from engine.sources import Call, Outcome
from plugins.lis_device.astm.queries import OrderPatient, OrderRequest

log = structlog.get_logger(__name__)


class _Patient(BaseModel):
    model_config = ConfigDict(extra="ignore")
    practice_id: str = ""
    laboratory_id: str = ""
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""
    sex: str = ""


class _Order(BaseModel):
    model_config = ConfigDict(extra="ignore")
    specimen_id: str
    tests: list[str]
    patient: _Patient = _Patient()
    instrument_specimen_id: str = ""
    priority: str = "R"
    requested_at: str = ""
    collected_at: str = ""
    action_code: str = "N"
    specimen_type: str = ""
    device_fields: dict[str, str] = {}


class _Orders(BaseModel):
    model_config = ConfigDict(extra="ignore")
    orders: list[_Order]


def orders_from_reply(reply: Payload) -> list[OrderRequest]:
    """The orders in the LIS's JSON reply; ValueError when it is not that shape."""
    try:
        parsed = _Orders.model_validate(json.loads(reply.body))
    except (UnicodeDecodeError, json.JSONDecodeError, ValidationError) as exc:
        raise ValueError(f"LIS reply is not an order list: {exc}") from exc
    return [
        OrderRequest(
            specimen_id=order.specimen_id,
            tests=tuple(order.tests),
            patient=OrderPatient(**order.patient.model_dump()),
            instrument_specimen_id=order.instrument_specimen_id,
            priority=order.priority,
            requested_at=order.requested_at,
            collected_at=order.collected_at,
            action_code=order.action_code,
            specimen_type=order.specimen_type,
            device_fields=order.device_fields,
        )
        for order in parsed.orders
    ]


@dataclass(frozen=True, slots=True)
class OrderAnswer:
    """The orders found for the asked barcodes, or why there are none (`reason`)."""

    orders: list[OrderRequest]
    reason: str = ""
    message_id: str | None = None


class OrderLookup:
    """One source's way to the LIS order service (see the module docstring)."""

    def __init__(self, call: Call, *, timeout: float, channel: str) -> None:
        self._call = call
        self._timeout = timeout
        self._channel = channel
        self._pending: set[asyncio.Task[Outcome]] = set()

    async def find(self, request: dict[str, Any], barcodes: list[str]) -> OrderAnswer:
        """The LIS's orders for `barcodes` (all it returned when none were asked)."""
        answer = await self._ask(Payload.from_json(request))
        if answer.reason:
            log.warning(
                "host query answered with no orders",
                channel=self._channel,
                kind=request.get("kind"),
                reason=answer.reason,
                message_id=answer.message_id,
                specimens=len(barcodes),
            )
            return answer
        orders = answer.orders
        if barcodes:
            wanted = set(barcodes)
            orders = [o for o in orders if o.specimen_id in wanted or o.instrument_specimen_id in wanted]
        log.info(
            "host query answered",
            channel=self._channel,
            kind=request.get("kind"),
            specimens=len(barcodes),
            orders=len(orders),
            message_id=answer.message_id,
        )
        return OrderAnswer(orders, "", answer.message_id)

    async def _ask(self, request: Payload) -> OrderAnswer:
        task = asyncio.ensure_future(self._call(request))
        self._pending.add(task)
        task.add_done_callback(self._finished)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError:
            return OrderAnswer([], f"LIS gave no answer within {self._timeout} s")
        except Exception as exc:  # noqa: BLE001 - the device must get an answer whatever failed
            return OrderAnswer([], f"call failed: {exc}")
        if outcome.reply is None or outcome.error is not None:
            reason = (outcome.error or {}).get("reason", f"status {outcome.status}, no reply")
            return OrderAnswer([], str(reason), outcome.message_id)
        try:
            return OrderAnswer(orders_from_reply(outcome.reply), "", outcome.message_id)
        except ValueError as exc:
            return OrderAnswer([], str(exc), outcome.message_id)

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("host query call failed", channel=self._channel, error=str(task.exception()))

    async def drain(self) -> None:
        """Wait for calls that outlived their answer (at stop), so their outcome is stored."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
