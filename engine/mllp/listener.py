"""The MLLP listener: HL7 v2 messages from devices into a channel, ACKed only once stored.

Each connection has its own incremental decoder, so several messages in one read, one
message over many reads and junk before a start byte all work. A message is answered only
after `accept()` returned, i.e. after its raw bytes are committed: AA/CA when stored, AR/CR
with an ERR segment when the engine refused it or could not store it. A peer that starts a
block and never ends it is cut off after `receive_timeout`; an oversized block gets an AR.
What the listener refuses (an oversized block's head, bytes outside any block) is kept
through `binding.refuse` as a failed message blamed on the device.
"""

from __future__ import annotations

import asyncio
from typing import ClassVar

import structlog
from pydantic import Field

from engine.errors import EngineError, InputError
from engine.logging import redact
from engine.message import Payload
from engine.mllp.ack import AckError, AckMode, Outcome, acknowledge
from engine.mllp.framing import DEFAULT_MAX_MESSAGE_BYTES, MllpDecoder, MllpFrameTooLarge, encode
from engine.sources import Source, SourceBinding, SourceConfig

log = structlog.get_logger(__name__)

HL7_CONTENT_TYPE = "application/hl7-v2"
READ_SIZE = 65536


class MllpListenerConfig(SourceConfig):
    host: str = Field(
        "127.0.0.1", description="address to listen on; 0.0.0.0 for analysers on the LAN"
    )
    port: int = Field(description="TCP port the devices connect to", ge=0, le=65535)
    charset: str = Field(
        "utf-8", description="charset when MSH-18 is empty (GB18030 for many Chinese analysers)"
    )
    ack_mode: AckMode | None = Field(
        None, description="force original or enhanced ACKs (some devices misuse MSH-15/16)"
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES, gt=0, description="larger blocks are refused with an AR"
    )
    receive_timeout: float = Field(
        30.0, gt=0, description="seconds a started block may wait for its end bytes"
    )
    idle_timeout: float = Field(600.0, gt=0, description="seconds an idle connection is kept open")


class MllpListener(Source):
    """`source: {kind: mllp, config: {port: 2575}}`"""

    kind: ClassVar[str] = "mllp"
    Config = MllpListenerConfig
    description: ClassVar[str] = "HL7 v2 over MLLP from analysers and modalities; ACK after store"

    def __init__(self, config: MllpListenerConfig, binding: SourceBinding) -> None:
        super().__init__(config, binding)
        self.config: MllpListenerConfig = config
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "listener not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._connection, self.config.host, self.config.port
        )
        log.info(
            "mllp listening", channel=self.binding.channel, host=self.config.host, port=self.port
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            await self._serve(reader, writer, MllpDecoder(self.config.max_message_bytes))
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("mllp peer disconnected", peer=str(peer), error=str(exc))
        finally:
            self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decoder: MllpDecoder
    ) -> None:
        while True:
            timeout = (
                self.config.receive_timeout
                if decoder.has_partial_message
                else self.config.idle_timeout
            )
            try:
                data = await asyncio.wait_for(reader.read(READ_SIZE), timeout)
            except TimeoutError:
                if decoder.has_partial_message:
                    partial = decoder.reset()
                    log.warning(
                        "mllp block never ended; connection closed",
                        channel=self.binding.channel,
                        bytes=len(partial),
                        timeout=self.config.receive_timeout,
                    )
                return
            if not data:
                return
            for ack in await self._handle(decoder, data):
                writer.write(encode(ack))
            await writer.drain()

    async def _handle(self, decoder: MllpDecoder, data: bytes) -> list[bytes]:
        """The ACKs to send for the messages this read completed, in order."""
        answers: list[bytes] = []
        while True:
            try:
                messages = decoder.feed(data)
            except MllpFrameTooLarge as exc:
                reason = f"message larger than {exc.limit} bytes"
                await self._refuse(exc.head, f"{reason}; its first {len(exc.head)} bytes are kept")
                answers.append(self._reject(exc.head, reason))
                data = b""  # the decoder kept what followed the oversized block
                continue
            break
        for junk in decoder.pop_discarded():
            log.warning(
                "mllp bytes outside a block discarded",
                channel=self.binding.channel,
                bytes=len(junk),
                head=redact(junk[:40].decode("latin-1"), ()),
            )
            await self._refuse(junk, "bytes outside an MLLP block (no start byte before them)")
        for message in messages:
            ack = await self._accept(message)
            if ack is not None:
                answers.append(ack)
        return answers

    async def _accept(self, message: bytes) -> bytes | None:
        try:
            receipt = await self.binding.accept(Payload(message, HL7_CONTENT_TYPE))
        except EngineError as exc:
            log.error(
                "mllp message not stored; rejected so the device sends it again",
                channel=self.binding.channel,
                error=str(exc),
            )
            return self._reject(message, f"not stored: {exc}")
        if receipt.accepted:
            reply = acknowledge(
                message,
                Outcome.ACCEPT,
                default_charset=self.config.charset,
                mode_override=self.config.ack_mode,
            )
        else:
            reason = (receipt.error or {}).get("reason", "refused")
            reply = acknowledge(
                message,
                Outcome.ERROR,
                error=AckError("207", str(reason)),
                default_charset=self.config.charset,
                mode_override=self.config.ack_mode,
            )
        return reply.payload if reply.send else None

    async def _refuse(self, data: bytes, reason: str) -> None:
        """Keep what the device sent and we could not take, blamed on the device."""
        try:
            await self.binding.refuse(Payload(data, "application/octet-stream"), InputError(reason, party="device"))
        except EngineError as exc:
            log.error("refused mllp bytes not stored", channel=self.binding.channel, error=str(exc))

    def _reject(self, message: bytes, reason: str) -> bytes:
        return acknowledge(
            message,
            Outcome.REJECT,
            error=AckError("207", reason),
            default_charset=self.config.charset,
            mode_override=self.config.ack_mode,
        ).payload
