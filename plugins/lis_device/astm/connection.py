"""Drive an E1381Link over an asyncio stream: the glue every ASTM transport shares.

TCP server, TCP client and (later) a serial port all end up with a reader and a writer;
this class feeds what is read into the link, writes what the link says, calls `tick()`
when the link's deadline passes (using the event loop's clock), and hands completed
transfers to the caller. Messages to send are queued and go out one transfer each, when
the line is free; `send()` waits for the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

from plugins.lis_device.astm.e1381 import (
    Discarded,
    E1381Link,
    Event,
    FrameRejected,
    MessageSent,
    Send,
    SendFailed,
    TransferAborted,
    TransferReceived,
)

log = structlog.get_logger(__name__)

READ_SIZE = 65536
Inbound = TransferReceived | TransferAborted | Discarded
InboundHandler = Callable[[Inbound], Awaitable[None]]


class AstmConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: E1381Link,
        on_inbound: InboundHandler,
    ) -> None:
        self.link = link
        self._reader = reader
        self._writer = writer
        self._on_inbound = on_inbound
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        self._waiting: deque[asyncio.Future[MessageSent | SendFailed]] = deque()
        self._loop = asyncio.get_running_loop()

    async def send(self, text: bytes) -> MessageSent | SendFailed:
        """Queue one message (records ended by CR) and wait until it was sent or gave up."""
        outcome: asyncio.Future[MessageSent | SendFailed] = self._loop.create_future()
        self._waiting.append(outcome)
        self._outgoing.put_nowait(text)
        return await outcome

    async def run(self) -> None:
        """Serve the link until the peer closes the connection (or the task is cancelled)."""
        read = asyncio.ensure_future(self._reader.read(READ_SIZE))
        queued = asyncio.ensure_future(self._outgoing.get())
        try:
            while True:
                timeout = None
                if self.link.deadline is not None:
                    timeout = max(0.0, self.link.deadline - self._loop.time())
                done, _ = await asyncio.wait(
                    {read, queued}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                now = self._loop.time()
                if queued in done:
                    await self._apply(self.link.send_message(queued.result(), now))
                    queued = asyncio.ensure_future(self._outgoing.get())
                if read in done:
                    data = read.result()
                    if not data:
                        return
                    await self._apply(self.link.receive(data, now))
                    read = asyncio.ensure_future(self._reader.read(READ_SIZE))
                await self._apply(self.link.tick(self._loop.time()))
        finally:
            for task in (read, queued):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task
            while self._waiting:
                pending = self._waiting.popleft()
                if not pending.done():
                    pending.set_result(SendFailed("connection closed", b""))

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def _apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Send):
                self._writer.write(event.data)
            elif isinstance(event, (MessageSent, SendFailed)):
                if self._waiting:
                    self._waiting.popleft().set_result(event)
            elif isinstance(event, FrameRejected):
                log.warning("astm_frame_rejected", reason=event.reason)
            else:
                await self._on_inbound(event)
        await self._writer.drain()
