"""Answer an analyser's host query (ASTM Q record) with the LIS's orders, in time, always.

The query goes through the source's channel as a sync call (`SourceBinding.call`), so it
is stored, routed to the channel's sync destination (the LIS or HIS order service) and its
reply recorded like any other message. The request is JSON an order service can use
without knowing ASTM, carrying the device's bytes losslessly (latin-1) for the record:

    {"kind": "astm_host_query", "barcodes": ["BC0001"], "tests": ["ALL"],
     "instrument": "Mindray", "status_code": "O", "transcript": "\u0005\u00021H|..."}

Route it with a destination filter `{path: $.kind, equals: astm_host_query}` (and keep
results away from the order service with `{path: H.2, regex: .}`). The reply is JSON:

    {"orders": [{"specimen_id": "BC0001", "tests": ["GLU", "K"], "priority": "R",
                 "specimen_type": "Serum",
                 "patient": {"practice_id": "P01", "family_name": "...", "sex": "M"}}]}

and becomes an order download (H, P, O ... L). Whatever goes wrong (LIS down, breaker
open, an error reply, a reply that is not orders, no answer within `timeout`) the device
gets H + `L|1|I` ("no information") before its own timeout, and the reason is logged
next to the message id; a call that outlives the timeout keeps running so its outcome is
still stored.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from engine.errors import InputError
from engine.message import Payload
from engine.sources import Call, Outcome
from plugins.lis_device.astm.queries import (
    OrderPatient,
    OrderRequest,
    build_order_download,
    read_queries,
)
from plugins.lis_device.astm.records import STANDARD_DELIMITERS, AstmMessage

log = structlog.get_logger(__name__)

ASTM_CONTENT_TYPE = "application/x-astm"
QUERY_KIND = "astm_host_query"


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
        )
        for order in parsed.orders
    ]


class HostQueryAnswerer:
    """Turns one query transcript into the records to send back (see module docstring)."""

    def __init__(
        self,
        call: Call,
        *,
        timeout: float,
        charset: str,
        sender: str,
        channel: str,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        self._call = call
        self._timeout = timeout
        self._charset = charset
        self._sender = sender
        self._channel = channel
        self._clock = clock
        self._pending: set[asyncio.Task[Outcome]] = set()

    async def answer(self, transcript: bytes, text: bytes) -> bytes:
        try:
            query = AstmMessage.parse(text, self._charset)
        except InputError as exc:
            log.warning("astm host query unreadable; answered no orders", channel=self._channel, error=str(exc))
            return self._download([], None)
        queries = read_queries(query)
        barcodes = [code for q in queries for code in q.barcodes]
        header = query.record("H")
        request = {
            "kind": QUERY_KIND,
            "barcodes": barcodes,
            "tests": [test for q in queries for test in q.test_ids if test],
            "instrument": header.value(5, component=1) if header is not None else "",
            "status_code": queries[0].status_code if queries else "",
            "transcript": transcript.decode("latin-1"),
        }
        orders: list[OrderRequest] = []
        try:
            orders = await self._ask(Payload.from_json(request))
        except _NoOrders as exc:
            log.warning(
                "astm host query answered with no orders",
                channel=self._channel,
                reason=exc.reason,
                message_id=exc.message_id,
                specimens=len(barcodes),
            )
        if barcodes:
            wanted = set(barcodes)
            orders = [o for o in orders if o.specimen_id in wanted or o.instrument_specimen_id in wanted]
        log.info("astm host query answered", channel=self._channel, specimens=len(barcodes), orders=len(orders))
        return self._download(orders, query)

    async def _ask(self, request: Payload) -> list[OrderRequest]:
        task = asyncio.ensure_future(self._call(request))
        self._pending.add(task)
        task.add_done_callback(self._finished)
        try:
            outcome = await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError:
            raise _NoOrders(f"LIS gave no answer within {self._timeout} s", None) from None
        except Exception as exc:  # the device must get an answer whatever failed
            raise _NoOrders(f"call failed: {exc}", None) from exc
        if outcome.reply is None or outcome.error is not None:
            reason = (outcome.error or {}).get("reason", f"status {outcome.status}, no reply")
            raise _NoOrders(str(reason), outcome.message_id)
        try:
            return orders_from_reply(outcome.reply)
        except ValueError as exc:
            raise _NoOrders(str(exc), outcome.message_id) from exc

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("astm host query call failed", channel=self._channel, error=str(task.exception()))

    async def drain(self) -> None:
        """Wait for calls that outlived their answer (at stop), so their outcome is stored."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    def _download(self, orders: list[OrderRequest], query: AstmMessage | None) -> bytes:
        header = query.record("H") if query is not None else None
        download = build_order_download(
            orders,
            now=self._clock(),
            delimiters=query.delimiters if query is not None else STANDARD_DELIMITERS,
            sender=self._sender,
            receiver=header.value(5, component=1) if header is not None else "",
        )
        return download.text().encode(self._charset)


class _NoOrders(Exception):
    def __init__(self, reason: str, message_id: str | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id
