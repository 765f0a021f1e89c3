"""The MLLP sender against a real receiving socket that answers as real receivers do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from engine.adapters.base import Wire
from engine.errors import OutcomeUnknownError, PermanentError, TransientError
from engine.message import Payload
from engine.mllp.framing import MllpDecoder, encode
from engine.mllp.sender import MllpSender, MllpSenderConfig
from engine.transports.http import HttpClients

ORM = (
    b"MSH|^~\\&|HIS|HOSP|PACS|RAD|20261122080000||ORM^O01|ORD0001|P|2.3.1\r"
    b"PID|1||P000123||TEST^PATIENT\rORC|NW|ACC0001\rOBR|1|ACC0001||CT^Chest CT\r"
)

Answer = Callable[[bytes], bytes | None]


def ack(code: str, control_id: str = "ORD0001", text: str = "") -> bytes:
    return (f"MSH|^~\\&|PACS|RAD|HIS|HOSP|20261122080001||ACK^O01|A1|P|2.3.1\r"
            f"MSA|{code}|{control_id}|{text}\r").encode()


class Receiver:
    """A PACS-like MLLP receiver whose answer to each message is scripted."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "Receiver":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = MllpDecoder()
        try:
            while data := await reader.read(65536):
                for message in decoder.feed(data):
                    self.received.append(message)
                    reply = self.answer(message)
                    if reply is not None:
                        writer.write(encode(reply))
                        await writer.drain()
        finally:
            writer.close()


async def send(port: int, services: HttpClients, **config: object) -> tuple[Payload, Wire]:
    sender = MllpSender(MllpSenderConfig(host="127.0.0.1", port=port, **config), services)
    wire = Wire()
    try:
        return await sender.send(Payload(ORM, "application/hl7-v2"), wire), wire
    finally:
        await sender.aclose()
        await sender.aclose()  # idempotent


async def test_accepted_order_records_both_sides_on_the_wire(services: HttpClients) -> None:
    async with Receiver(lambda message: ack("AA")) as receiver:
        reply, wire = await send(receiver.port, services)
    assert receiver.received == [ORM]
    assert wire.current.sent is not None and wire.current.sent.body == ORM
    assert wire.current.ack_code == "AA" and reply.body == ack("AA")


@pytest.mark.parametrize(("code", "error"), [
    ("AE", PermanentError), ("CE", PermanentError), ("AR", TransientError), ("CR", TransientError),
])
async def test_refusals_are_told_apart(services: HttpClients, code: str, error: type[Exception]) -> None:
    async with Receiver(lambda message: ack(code, text="unknown procedure code")) as receiver:
        with pytest.raises(error) as raised:
            await send(receiver.port, services)
    assert raised.value.detail["ack_code"] == code  # type: ignore[attr-defined]
    assert "unknown procedure code" in str(raised.value)


async def test_an_ack_for_another_message_is_refused(services: HttpClients) -> None:
    async with Receiver(lambda message: ack("AA", control_id="SOMETHING-ELSE")) as receiver:
        with pytest.raises(PermanentError, match="answers message 'SOMETHING-ELSE'"):
            await send(receiver.port, services)


async def test_no_ack_in_time_is_an_unknown_outcome(services: HttpClients) -> None:
    async with Receiver(lambda message: None) as receiver:
        with pytest.raises(OutcomeUnknownError) as raised:
            await send(receiver.port, services, ack_timeout=0.2)
    assert raised.value.detail["condition"] == "timeout"
    assert receiver.received == [ORM]


async def test_nobody_listening_is_a_transient_connect_failure(services: HttpClients) -> None:
    async with Receiver(lambda message: None) as receiver:
        port = receiver.port
    with pytest.raises(TransientError) as raised:
        await send(port, services)
    assert raised.value.detail == {"condition": "connect", "exception": "ConnectionRefusedError",
                                   "request_left": False}
