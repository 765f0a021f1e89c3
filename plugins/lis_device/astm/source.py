"""ASTM E1381/E1394 sources over TCP: `astm_tcp` (analysers connect to the engine) and
`astm_tcp_client` (the engine connects out to an analyser that listens).

Each device message becomes one stored message whose payload (`application/x-astm`) is
the byte transcript of its transfer; the frame carrying its L record is ACKed only once
`binding.accept()` returned (see `astm.session`). Host queries are answered with the
LIS's orders through `binding.call()` (see `host_query`). What the session refuses (a
transfer aborted after 6 bad frames or a timeout, text outside any transfer) is kept
through `binding.refuse()` as a failed message blamed on the device.

    source:
      kind: astm_tcp
      config: {port: 5000, charset: gb18030, timers: {receiver_idle: 30}}
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
from abc import abstractmethod
from typing import ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import EngineError, InputError
from engine.message import Payload
from engine.sources import Source, SourceBinding, SourceConfig
from plugins.lis_device.astm.e1381 import E1381Link, E1381Timers
from plugins.lis_device.astm.frames import CLASSIC_FRAME_TEXT
from plugins.lis_device.astm.session import AstmSession
from plugins.lis_device.host_query import ASTM_CONTENT_TYPE, HostQueryAnswerer

log = structlog.get_logger(__name__)

STOP_GRACE_SECONDS = 30.0


class AstmTimersConfig(BaseModel):
    """E1381 timers in seconds (shorten them in tests)."""

    model_config = ConfigDict(extra="forbid")
    sender_reply: float = Field(15.0, gt=0, description="wait for the device's ACK/NAK to our ENQ or frame")
    receiver_idle: float = Field(30.0, gt=0, description="wait for the device's next frame or EOT")
    busy_retry: float = Field(10.0, gt=0, description="wait before ENQ again when the device answered NAK (busy)")
    host_contention_hold: float = Field(20.0, gt=0, description="after both sides sent ENQ, wait before our next ENQ")

    def timers(self) -> E1381Timers:
        return E1381Timers(
            sender_reply=self.sender_reply,
            receiver_idle=self.receiver_idle,
            busy_retry=self.busy_retry,
            host_contention_hold=self.host_contention_hold,
        )


class AstmSourceConfig(SourceConfig):
    charset: str = Field("latin-1", description="text encoding of the device (latin-1, gb18030, utf-8)")
    timers: AstmTimersConfig = AstmTimersConfig()
    max_message_bytes: int = Field(
        4 << 20, gt=0, description="a message whose transcript grows past this is refused (NAK)"
    )
    max_frame_text: int = Field(
        CLASSIC_FRAME_TEXT, ge=1, description="frame text size for order downloads (240 classic E1381)"
    )
    verify_checksum: bool = Field(True, description="NAK frames with a wrong checksum; false only for broken devices")
    host_query_timeout: float = Field(
        8.0, gt=0, description="seconds the LIS gets to answer a host query before the device is told 'no orders'"
    )
    lis_name: str = Field("LIS", description="sender name (H-5) in order downloads")
    noise_quiet: float = Field(
        2.0, gt=0, description="seconds of quiet after text outside any transfer before it is stored as refused"
    )

    @field_validator("charset")
    @classmethod
    def _known_codec(cls, value: str) -> str:
        codecs.lookup(value)
        return value


class _ChannelHandler:
    """A session's way into the engine: store transcripts, answer host queries."""

    def __init__(self, binding: SourceBinding, config: AstmSourceConfig, answerer: HostQueryAnswerer) -> None:
        self._binding = binding
        self._config = config
        self._answerer = answerer

    async def store(self, transcript: bytes) -> bool:
        try:
            receipt = await self._binding.accept(Payload(transcript, ASTM_CONTENT_TYPE))
        except EngineError as exc:
            log.error(
                "astm message not stored; NAK so the device sends it again",
                channel=self._binding.channel,
                error=str(exc),
            )
            return False
        except Exception:  # an engine bug must cost a NAK, not the device's line
            log.exception("astm message not stored (unexpected error); NAK", channel=self._binding.channel)
            return False
        if not receipt.accepted:
            # Stored with its failure attributed: a retransmission would be refused again.
            log.warning(
                "astm message stored but refused at intake",
                channel=self._binding.channel,
                message_id=receipt.message_id,
                reason=(receipt.error or {}).get("reason"),
            )
        return True

    async def answer_query(self, transcript: bytes, text: bytes) -> bytes:
        return await self._answerer.answer(transcript, text)

    async def refuse(self, data: bytes, reason: str, *, transcript: bool) -> None:
        content_type = ASTM_CONTENT_TYPE if transcript else "application/octet-stream"
        try:
            receipt = await self._binding.refuse(Payload(data, content_type), InputError(reason, party="device"))
        except EngineError as exc:
            log.error("refused astm input not stored", channel=self._binding.channel, error=str(exc))
            return
        log.info("refused astm input stored", channel=self._binding.channel, message_id=receipt.message_id)


class AstmStreamSource(Source):
    """What the TCP and serial kinds share: one `AstmSession` per open stream."""

    Config: ClassVar[type[SourceConfig]] = AstmSourceConfig

    def __init__(self, config: AstmSourceConfig, binding: SourceBinding) -> None:
        super().__init__(config, binding)
        self.config: AstmSourceConfig = config
        self.answerer = HostQueryAnswerer(
            binding.call,
            timeout=config.host_query_timeout,
            charset=config.charset,
            sender=config.lis_name,
            channel=binding.channel,
        )
        self._handler = _ChannelHandler(binding, config, self.answerer)
        self._sessions: dict[asyncio.Task[None], AstmSession] = {}

    def link(self) -> E1381Link:
        return E1381Link(
            has_priority=False,
            timers=self.config.timers.timers(),
            max_frame_text=self.config.max_frame_text,
            verify_checksum=self.config.verify_checksum,
        )

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        """Run one session to its end; the stream is closed afterwards."""
        task = asyncio.current_task()
        assert task is not None
        session = AstmSession(
            reader,
            writer,
            self.link(),
            self._handler,
            max_message_bytes=self.config.max_message_bytes,
            channel=self.binding.channel,
            noise_quiet=self.config.noise_quiet,
        )
        self._sessions[task] = session
        log.info("astm device connected", channel=self.binding.channel, peer=peer)
        try:
            await session.run()
        except (ConnectionError, OSError) as exc:
            log.info("astm device disconnected", channel=self.binding.channel, peer=peer, error=str(exc))
        finally:
            self._sessions.pop(task, None)
            with contextlib.suppress(asyncio.CancelledError):
                await session.close()

    async def stop_sessions(self) -> None:
        """Let each session finish storing and answering what it is handling, then end it."""
        for task, session in list(self._sessions.items()):
            try:
                await asyncio.wait_for(session.quiesce(), STOP_GRACE_SECONDS)
            except TimeoutError:
                log.warning("astm session still busy at stop; cancelled", channel=self.binding.channel)
            task.cancel()
        await asyncio.gather(*self._sessions, return_exceptions=True)
        await self.answerer.drain()


class AstmLinkKeeper(AstmStreamSource):
    """A source that keeps one link to the analyser open by itself (it dials out or opens a
    port) in a background task, `keep_linked()`, restarted only by `start()`."""

    def __init__(self, config: AstmSourceConfig, binding: SourceBinding) -> None:
        super().__init__(config, binding)
        self._runner: asyncio.Task[None] | None = None

    @abstractmethod
    async def keep_linked(self) -> None:
        """Open the link, serve sessions on it, and open it again whenever it drops."""

    async def start(self) -> None:
        self._runner = asyncio.create_task(self.keep_linked(), name=f"{self.kind}-{self.binding.channel}")

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._runner
        self._runner = None
        await self.stop_sessions()


class AstmTcpServerConfig(AstmSourceConfig):
    host: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 for analysers on the LAN")
    port: int = Field(description="TCP port the analysers connect to", ge=0, le=65535)


class AstmTcpServer(AstmStreamSource):
    """`source: {kind: astm_tcp, config: {port: 5000}}`"""

    kind: ClassVar[str] = "astm_tcp"
    Config = AstmTcpServerConfig
    description: ClassVar[str] = "ASTM E1381/E1394 from analysers connecting over TCP; ACK after store"

    def __init__(self, config: AstmTcpServerConfig, binding: SourceBinding) -> None:
        super().__init__(config, binding)
        self.config: AstmTcpServerConfig = config
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "listener not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accepted, self.config.host, self.config.port)
        log.info("astm listening", channel=self.binding.channel, host=self.config.host, port=self.port)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # stop() cancels sessions; ending this callback task normally keeps asyncio's
        # connection callback from logging the cancellation as an error.
        with contextlib.suppress(asyncio.CancelledError):
            await self.serve(reader, writer, str(writer.get_extra_info("peername")))

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self.stop_sessions()
        await self._server.wait_closed()
        self._server = None


class AstmTcpClientConfig(AstmSourceConfig):
    host: str = Field(description="address of the analyser that listens")
    port: int = Field(description="the analyser's TCP port", gt=0, le=65535)
    connect_timeout: float = Field(5.0, gt=0, description="seconds to wait for the connection")
    reconnect_initial: float = Field(1.0, gt=0, description="first wait before reconnecting, seconds")
    reconnect_max: float = Field(60.0, gt=0, description="cap on the doubling reconnect wait, seconds")


class AstmTcpClient(AstmLinkKeeper):
    """`source: {kind: astm_tcp_client, config: {host: 10.1.2.3, port: 5000}}`: keeps one
    connection to the analyser open, reconnecting with a doubling backoff."""

    kind: ClassVar[str] = "astm_tcp_client"
    Config = AstmTcpClientConfig
    description: ClassVar[str] = "ASTM E1381/E1394 to an analyser that listens on TCP; reconnects"

    def __init__(self, config: AstmTcpClientConfig, binding: SourceBinding) -> None:
        super().__init__(config, binding)
        self.config: AstmTcpClientConfig = config
        self.connections = 0

    async def keep_linked(self) -> None:
        config = self.config
        wait = config.reconnect_initial
        peer = f"{config.host}:{config.port}"
        while True:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(config.host, config.port), config.connect_timeout
                )
            except (OSError, TimeoutError) as exc:
                log.warning(
                    "astm analyser unreachable; retrying",
                    channel=self.binding.channel,
                    peer=peer,
                    error=str(exc) or type(exc).__name__,
                    retry_in=wait,
                )
                await asyncio.sleep(wait)
                wait = min(wait * 2, config.reconnect_max)
                continue
            wait = config.reconnect_initial
            self.connections += 1
            await self.serve(reader, writer, peer)
            log.info("astm analyser closed the connection; reconnecting", channel=self.binding.channel, peer=peer)
            await asyncio.sleep(config.reconnect_initial)
