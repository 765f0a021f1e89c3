"""An HL7 analyser over MLLP, as the instrument behaves: one connection, each message
answered before the next; an order query (QRY^Q02) answered by a QCK^Q02 and, when the
host found orders, DSR^Q03 messages that the analyser acknowledges one by one (ACK^Q03),
the last one being the DSR whose DSC-1 is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from engine.mllp.ack import AckMode, Outcome, acknowledge
from engine.mllp.framing import MllpDecoder, encode
from plugins.lis_device.hl7.reader import Hl7Message

READ_SIZE = 65536


@dataclass
class QueryAnswer:
    """What the host answered an order query: the QCK, and the DSRs that followed it."""

    query_ack: Hl7Message
    responses: list[Hl7Message] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.query_ack.get("QAK-2") == "OK"


class Hl7Analyser:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
        self._reader = reader
        self._writer = writer
        self._timeout = timeout
        self._decoder = MllpDecoder()
        self._received: list[bytes] = []

    @classmethod
    async def connect(cls, host: str, port: int, *, timeout: float = 30.0) -> Hl7Analyser:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer, timeout)

    async def send(self, message: bytes) -> bytes:
        """Send one message (without MLLP framing) and return the host's first answer."""
        self._writer.write(encode(message))
        await self._writer.drain()
        return await self.receive()

    async def receive(self) -> bytes:
        """The next MLLP block from the host (its content)."""
        while not self._received:
            data = await asyncio.wait_for(self._reader.read(READ_SIZE), self._timeout)
            if not data:
                raise ConnectionError("host closed the connection")
            self._received += self._decoder.feed(data)
        return self._received.pop(0)

    async def query(self, message: bytes) -> QueryAnswer:
        """Send a QRY^Q02; read the QCK and, when orders were found, every DSR, ACKing each."""
        answer = QueryAnswer(Hl7Message.parse(await self.send(message)))
        if not answer.found:
            return answer
        while True:
            raw = await self.receive()
            response = Hl7Message.parse(raw)
            answer.responses.append(response)
            ack = acknowledge(raw, Outcome.ACCEPT, mode_override=AckMode.ORIGINAL)
            self._writer.write(encode(ack.payload))
            await self._writer.drain()
            if not response.get("DSC-1"):
                return answer

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()
