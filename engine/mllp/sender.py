"""The MLLP sender: HL7 v2 messages to a LIS, PACS or device, each confirmed by its ACK.

One connection per destination, one message in flight on it (MLLP has no correlation
other than order). The ACK must name the message it answers (MSA-2 = our MSH-10).
AA/CA → delivered; AE/CE → the receiver refused this message (permanent); AR/CR → the
receiver could not take it now (transient, may be sent again); no ACK in time → the
outcome is unknown (the receiver may have stored it).
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import structlog
from pydantic import Field

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.errors import OutcomeUnknownError, PermanentError, TransientError
from engine.message import Delivery, Payload
from engine.mllp.framing import DEFAULT_MAX_MESSAGE_BYTES, MllpDecoder, encode
from engine.mllp.header import Hl7HeaderError, MshHeader, decode_message
from engine.mllp.listener import HL7_CONTENT_TYPE, READ_SIZE

log = structlog.get_logger(__name__)


class MllpSenderConfig(AdapterConfig):
    host: str = Field(description="receiver address")
    port: int = Field(ge=1, le=65535)
    connect_timeout: float = Field(5.0, gt=0)
    ack_timeout: float = Field(30.0, gt=0, description="seconds to wait for the ACK once the message is sent")
    charset: str = Field("utf-8", description="charset of our messages when MSH-18 is empty")
    idempotent: bool = Field(False, description="the receiver ignores a message id it has seen (safe to resend)")


class MllpSender(Adapter):
    """`adapter: mllp` — `config: {host: 10.1.2.3, port: 2575}`"""

    name: ClassVar[str] = "mllp"
    Config = MllpSenderConfig
    delivery = Delivery.ASYNC
    description: ClassVar[str] = "HL7 v2 over MLLP; waits for and checks the ACK"

    def __init__(self, config: MllpSenderConfig, services: AdapterServices) -> None:
        super().__init__(config, services)
        self.config: MllpSenderConfig = config
        self.idempotent = config.idempotent  # type: ignore[misc]  # instance overrides class
        self._lock = asyncio.Lock()
        self._stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def send(self, request: Payload, wire: Wire) -> Payload:
        control_id = _control_id(request.body, self.config.charset)
        async with self._lock:
            reader, writer = await self._connect()
            wire.sent(request)
            try:
                writer.write(encode(request.body))
                await writer.drain()
                ack = await asyncio.wait_for(_read_one(reader), self.config.ack_timeout)
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError) as exc:
                await self._drop()
                condition = "timeout" if isinstance(exc, TimeoutError) else "reset"
                raise OutcomeUnknownError(
                    f"{condition}: no ACK from {self.config.host}:{self.config.port} ({type(exc).__name__})",
                    detail={"condition": condition, "exception": type(exc).__name__, "request_left": True},
                ) from exc
        code, answered_id, text = _read_ack(ack, self.config.charset)
        wire.received(Payload(ack, HL7_CONTENT_TYPE), ack_code=code)
        detail: dict[str, object] = {"ack_code": code, "ack_text": text, "control_id": control_id}
        if answered_id != control_id:
            raise PermanentError(f"ACK answers message {answered_id!r}, not {control_id!r}", detail=detail)
        if code in ("AE", "CE"):
            raise PermanentError(f"receiver refused the message ({code}): {text}", detail=detail)
        if code in ("AR", "CR"):
            raise TransientError(f"receiver could not take the message now ({code}): {text}", detail=detail)
        if code not in ("AA", "CA"):
            raise PermanentError(f"ACK with unknown code {code!r}", detail=detail)
        return Payload(ack, HL7_CONTENT_TYPE)

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._stream is not None and not self._stream[1].is_closing():
            return self._stream
        try:
            self._stream = await asyncio.wait_for(
                asyncio.open_connection(self.config.host, self.config.port), self.config.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise TransientError(
                f"connect: {self.config.host}:{self.config.port} unreachable ({type(exc).__name__}: {exc})",
                detail={"condition": "connect", "exception": type(exc).__name__, "request_left": False},
            ) from exc
        return self._stream

    async def _drop(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream[1].close()
            try:
                await stream[1].wait_closed()
            except ConnectionError:
                pass

    async def aclose(self) -> None:
        await self._drop()


async def _read_one(reader: asyncio.StreamReader) -> bytes:
    decoder = MllpDecoder(DEFAULT_MAX_MESSAGE_BYTES)
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            raise asyncio.IncompleteReadError(b"", None)
        messages = decoder.feed(data)
        if messages:
            return messages[0]


def _control_id(message: bytes, charset: str) -> str:
    try:
        return MshHeader.parse(decode_message(message, charset).text).field(10)
    except Hl7HeaderError as exc:
        raise PermanentError(f"not an HL7 message: {exc.reason}", detail={"condition": "invalid_message"}) from exc


def _read_ack(ack: bytes, charset: str) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, MSA-3 or ERR text) of an ACK."""
    text = decode_message(ack, charset).text
    try:
        separator = MshHeader.parse(text).separators.field
    except Hl7HeaderError as exc:
        raise PermanentError(
            f"the answer is not an HL7 ACK: {exc.reason}", detail={"condition": "invalid_ack"}
        ) from exc
    for segment in text.replace("\n", "\r").split("\r"):
        if segment.startswith("MSA"):
            fields = segment.split(separator) + ["", "", ""]
            return fields[1], fields[2], fields[3]
    raise PermanentError("the answer has no MSA segment", detail={"condition": "invalid_ack"})
