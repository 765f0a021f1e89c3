"""`mllp_lis`: the engine's MLLP listener plus what lab analysers need on top of it.

- **Order queries.** A QRY^Q02 is not a result to store and ACK: the analyser waits on the
  same connection for a QCK^Q02 and, when orders exist, DSR^Q03 messages (see
  `hl7.order_query`). The query goes to the LIS through `OrderLookup` as
  `{"kind": "hl7_host_query", "barcodes": [...], "instrument": ..., "message": <the QRY>}`
  (route it with `{path: $.kind, equals: hl7_host_query}`); whatever goes wrong there,
  the analyser is answered QAK `NF` within `host_query_timeout` and the reason is logged.
- **The analyser's ACKs** to our DSRs (ACK^Q03) are answers, not messages: logged, not
  stored, never acknowledged (an ACK of an ACK would loop with some devices).
- **Our own faults are not the device's.** A message the channel refused at intake with
  party `engine` (an unmapped test code, see `lis_results`) is stored failed and answered
  AA: the device's message was fine, a resend would fail the same way, and an operator
  replays it once conf/ is fixed. Refusals blamed on the device still get AE.

    source:
      kind: mllp_lis
      config: {port: 8750, charset: gb18030, ack_mode: original, host_query_timeout: 5}
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

import structlog
from pydantic import Field

from engine.errors import InputError
from engine.message import Payload
from engine.mllp.listener import MllpListener, MllpListenerConfig
from engine.sources import Receipt, SourceBinding
from plugins.lis_device.hl7.order_query import OrderResponseBuilder, is_order_query, read_order_query
from plugins.lis_device.hl7.reader import Hl7Message
from plugins.lis_device.order_lookup import OrderLookup

log = structlog.get_logger(__name__)

HL7_QUERY_KIND = "hl7_host_query"
_BLOCK_BETWEEN = b"\x1c\r\x0b"


class MllpLisConfig(MllpListenerConfig):
    host_query_timeout: float = Field(
        8.0, gt=0, description="seconds the LIS gets to answer an order query before the device is told 'not found'"
    )


class MllpLisListener(MllpListener):
    """`source: {kind: mllp_lis, config: {port: 8750}}`"""

    kind: ClassVar[str] = "mllp_lis"
    Config = MllpLisConfig
    description: ClassVar[str] = (
        "HL7 v2 over MLLP from lab analysers: results ACKed after store, QRY^Q02 answered with QCK/DSR from the LIS"
    )

    def __init__(
        self,
        config: MllpLisConfig,
        binding: SourceBinding,
        clock: Callable[[], datetime] = datetime.now,
    ) -> None:
        super().__init__(config, _engine_faults_accepted(binding))
        self.config: MllpLisConfig = config
        self._lookup = OrderLookup(binding.call, timeout=config.host_query_timeout, channel=binding.channel)
        self._clock = clock

    async def stop(self) -> None:
        await super().stop()
        await self._lookup.drain()

    async def _accept(self, message: bytes) -> bytes | None:
        try:
            parsed = Hl7Message.parse(message, self.config.charset)
        except InputError:
            return await super()._accept(message)  # the listener answers AR and stores why
        if parsed.message_code == "ACK":
            log.info(
                "analyser acknowledged",
                channel=self.binding.channel,
                ack_code=parsed.get("MSA-1"),
                acknowledged=parsed.get("MSA-2"),
            )
            return None
        if is_order_query(parsed):
            return await self._answer_query(parsed)
        return await super()._accept(message)

    async def _answer_query(self, message: Hl7Message) -> bytes:
        """QCK^Q02 and the DSR^Q03s as one byte string for one MLLP block write: the
        listener wraps a reply in VT ... FS CR, so the blocks in between are closed and
        opened here."""
        query = read_order_query(message)
        request = {
            "kind": HL7_QUERY_KIND,
            "barcodes": query.barcodes,
            "instrument": query.instrument,
            "control_id": query.control_id,
            "message": "\r".join(segment.text() for segment in message.segments),
        }
        found = await self._lookup.find(request, query.barcodes)
        builder = OrderResponseBuilder(query, now=self._clock())
        texts = [builder.query_ack(bool(found.orders)), *builder.order_responses(found.orders)]
        codec = message.codec if message.codec not in ("ascii", "latin-1") else self.config.charset
        return _BLOCK_BETWEEN.join(text.encode(codec, errors="replace") for text in texts)


def _engine_faults_accepted(binding: SourceBinding) -> SourceBinding:
    """The binding with intake refusals blamed on the engine reported as accepted (stored),
    so the listener answers AA (see the module docstring)."""

    async def accept(payload: Payload) -> Receipt:
        receipt = await binding.accept(payload)
        if receipt.error is not None and receipt.error.get("party") == "engine":
            log.warning(
                "analyser message stored failed by the engine's fault; answered AA",
                channel=binding.channel,
                message_id=receipt.message_id,
                rule_id=receipt.error.get("rule_id"),
            )
            return Receipt(receipt.message_id, receipt.channel, receipt.status, None)
        return receipt

    return SourceBinding(binding.channel, accept, binding.call, binding.refuse)
