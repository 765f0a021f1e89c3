"""One ASTM device link as the engine serves it: store before the final ACK.

`AstmSession` drives an `E1381Link` over an asyncio stream (TCP in either direction, or a
serial port) like `AstmConnection` does, with one rule added: **the frame that completes a
message is not acknowledged until the message is stored.** That frame is the one whose
text ends with the L record (for devices that send several H..L messages in one transfer,
each L frame). Its ACK is held while `TransferHandler.store()` runs; when the store fails
the frame gets a NAK, so the device sends it again (the link takes the repeat as a
duplicate of its last good frame, and the session tries the store once more).

What is stored is the **byte transcript** of the message: ENQ, every frame as it arrived
(checksums, trailers, refused frames and their retransmissions) and every ACK/NAK the
engine answered, up to the frame carrying the L record. The record text can always be
recovered from it (`frames.scan_transcript`, the `astm` payload format); the reverse is not
true, and a checksum quarrel with a vendor needs the bytes. The final ACK and the EOT come
after the commit by construction, so they are not in the stored bytes.

A transfer whose last record is not L (a non-conforming device) is stored when its EOT
arrives; its frames were ACKed before it was stored because nothing earlier said it was
complete. Host queries (a Q record) are requests, not results: their frames are ACKed at
once, and at EOT `TransferHandler.answer_query()` gets the transcript and returns the
records to send back, which go out as the engine's own transfer.

Refused input is kept, not only logged (`TransferHandler.refuse()`, stored as a failed
message blamed on the device): the transcript of a transfer that was aborted (the device
gave up after 6 refused frames, fell silent past the receiver timer, restarted with ENQ or
ended after an ETB frame), the head of an oversized message, and bytes outside any
transfer (proprietary reports some analysers print on the same line), gathered until the
line has been quiet for `noise_quiet` seconds or an ENQ starts a transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Protocol

import structlog

from engine.logging import redact
from plugins.lis_device.astm.e1381 import (
    Discarded,
    E1381Link,
    Event,
    FrameRejected,
    LinkState,
    MessageSent,
    Send,
    SendFailed,
    TransferAborted,
    TransferReceived,
)
from plugins.lis_device.astm.frames import ACK, ENQ, EOT, NAK, STX, frame_end, parse_frame

log = structlog.get_logger(__name__)

READ_SIZE = 65536
_ACK = bytes((ACK,))
_NAK = bytes((NAK,))
_BOUNDARIES = (STX, ENQ, EOT)
_LINE_FILLER = b"\r\n\t \x00\x04\x06\x15"  # trailers, padding, late EOT/ACK/NAK
OVERSIZED_HEAD_BYTES = 64 * 1024


class TransferHandler(Protocol):
    """What a session needs from its source."""

    async def store(self, transcript: bytes) -> bool:
        """Commit one message's transcript; True when stored (the device gets its ACK)."""

    async def answer_query(self, transcript: bytes, text: bytes) -> bytes:
        """The records (each ended by CR) answering a host query; never raises."""

    async def refuse(self, data: bytes, reason: str, *, transcript: bool) -> None:
        """Keep bytes the session refused (an aborted transfer's transcript, or text outside
        any transfer when `transcript` is false) as a failed message blamed on the device;
        never raises."""


@dataclass
class _Inbound:
    """The message being received: its transcript and the text of its accepted frames."""

    transcript: bytearray
    text: bytearray
    last_accepted: bytes | None = None
    stored_frame: bytes | None = None
    refused_store: bool = False
    oversized: bool = False


def _next_unit(buffer: bytearray, max_frame_bytes: int) -> int:
    """Length of the next piece to feed the link: one whole frame with its trailer, one
    ENQ/EOT, or the bytes up to the next boundary; 0 when a frame is still incomplete."""
    first = buffer[0]
    if first in (ENQ, EOT):
        return 1
    if first != STX:
        found = [i for i in (buffer.find(b) for b in _BOUNDARIES) if i >= 0]
        return min(found) if found else len(buffer)
    cut = [i for i in (buffer.find(b, 1) for b in _BOUNDARIES) if i >= 0]
    end = frame_end(buffer)
    if cut and (end is None or min(cut) < end):
        return min(cut)  # the link answers a frame cut short
    if end is None:
        return len(buffer) if len(buffer) > max_frame_bytes else 0
    for trailer in (0x0D, 0x0A):
        if buffer[end : end + 1] == bytes((trailer,)):
            end += 1
    return end


def _last_record(text: bytes) -> bytes:
    lines = [line for line in text.replace(b"\n", b"\r").split(b"\r") if line.strip()]
    return lines[-1].lstrip() if lines else b""


def _field_delimiter(text: bytes) -> bytes:
    start = text.lstrip(b"\r\n ")
    return start[1:2] if start[:1] in (b"H", b"h") else b"|"


def _has_record(text: bytes, kind: bytes) -> bool:
    marker = kind + _field_delimiter(text)
    return any(line.lstrip().startswith(marker) for line in text.replace(b"\n", b"\r").split(b"\r"))


class AstmSession:
    """Serve one device link until the peer closes it or the task is cancelled."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        link: E1381Link,
        handler: TransferHandler,
        *,
        max_message_bytes: int,
        channel: str,
        noise_quiet: float = 2.0,
    ) -> None:
        self.link = link
        self._reader = reader
        self._writer = writer
        self._handler = handler
        self._max_message_bytes = max_message_bytes
        self._channel = channel
        self._buffer = bytearray()
        self._inbound: _Inbound | None = None
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue()
        self._queries: set[asyncio.Task[None]] = set()
        self._busy = asyncio.Lock()  # held while a read is handled: stores and their ACKs
        self._loop = asyncio.get_running_loop()
        self._noise_quiet = noise_quiet
        self._noise = bytearray()
        self._noise_deadline: float | None = None

    async def run(self) -> None:
        read = asyncio.ensure_future(self._reader.read(READ_SIZE))
        queued = asyncio.ensure_future(self._outgoing.get())
        try:
            while True:
                deadlines = [d for d in (self.link.deadline, self._noise_deadline) if d is not None]
                timeout = max(0.0, min(deadlines) - self._loop.time()) if deadlines else None
                done, _ = await asyncio.wait({read, queued}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if queued in done:
                    await self._apply(self.link.send_message(queued.result(), self._loop.time()))
                    queued = asyncio.ensure_future(self._outgoing.get())
                if read in done:
                    data = read.result()
                    if not data:
                        await self._store_noise()
                        return
                    self._buffer += data
                    async with self._busy:
                        await self._feed()
                    read = asyncio.ensure_future(self._reader.read(READ_SIZE))
                await self._apply(self.link.tick(self._loop.time()))
                if self._noise_deadline is not None and self._loop.time() >= self._noise_deadline:
                    await self._store_noise()
        finally:
            for task in (read, queued, *self._queries):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                    await task

    async def quiesce(self) -> None:
        """Wait until the data being handled is stored and answered, and handle no more;
        cancelling the task running `run()` is then safe (no ACK is lost for a stored
        message, so the device does not send it twice)."""
        await self._busy.acquire()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    # -- receiving ---------------------------------------------------------------------

    async def _feed(self) -> None:
        while self._buffer:
            if self.link.state is LinkState.NEUTRAL and self._buffer[0] != ENQ:
                # no frame exists outside a transfer: all up to the next ENQ is noise, even
                # an STX..ETX block that will never get a checksum (proprietary reports)
                enq = self._buffer.find(ENQ)
                length = enq if enq > 0 else len(self._buffer)
            else:
                length = _next_unit(self._buffer, self.link.max_frame_bytes)
            if not length:
                return
            unit = bytes(self._buffer[:length])
            del self._buffer[:length]
            receiving = self.link.state is LinkState.RECEIVING
            if unit[0] == ENQ and self._noise:
                await self._store_noise()  # what came before this transfer is one refusal
            events = self.link.receive(unit, self._loop.time())
            if receiving and unit[0] == STX:
                await self._after_frame(unit, events)
            elif receiving or self.link.state is LinkState.RECEIVING:
                self._record(unit, events)
                await self._apply(events)
            else:
                await self._apply(events)

    def _record(self, unit: bytes, events: list[Event]) -> None:
        """Add a unit and the link's replies to the transcript of the message."""
        if self._inbound is None:
            self._inbound = _Inbound(bytearray(), bytearray())
        self._inbound.transcript += unit
        for event in events:
            if isinstance(event, Send):
                self._inbound.transcript += event.data

    async def _after_frame(self, unit: bytes, events: list[Event]) -> None:
        replies = [event for event in events if isinstance(event, Send)]
        accepted = bool(replies) and replies[-1].data == _ACK
        if self._inbound is None:
            self._inbound = _Inbound(bytearray(), bytearray())
        inbound = self._inbound
        frame = parse_frame(unit[: frame_end(unit) or len(unit)]) if frame_end(unit) else None
        if not accepted or frame is None:
            self._record(unit, events)
            await self._apply(events)
            return
        repeat = frame.raw == inbound.last_accepted
        if not repeat:
            inbound.text += frame.text
            inbound.last_accepted = frame.raw
        if not inbound.oversized and len(inbound.transcript) + len(unit) > self._max_message_bytes:
            inbound.oversized = True
            log.warning(
                "astm message larger than the limit refused",
                channel=self._channel,
                limit=self._max_message_bytes,
            )
        if inbound.oversized:
            await self._answer_held(unit, events, _NAK)
            return
        completes = frame.final and _last_record(bytes(inbound.text)).startswith(
            b"L" + _field_delimiter(bytes(inbound.text))
        )
        if not completes or _has_record(bytes(inbound.text), b"Q"):
            self._record(unit, events)
            await self._apply(events)
            return
        if repeat and inbound.stored_frame == frame.raw:
            self._record(unit, events)  # our ACK was lost; the message is already stored
            await self._apply(events)
            return
        await self._store_held(unit, events, frame.raw)

    async def _store_held(self, unit: bytes, events: list[Event], frame_raw: bytes) -> None:
        """Store the message the frame completes, then ACK it (or NAK when not stored)."""
        inbound = self._inbound
        assert inbound is not None
        held, before = events[-1], events[:-1]
        self._record(unit, before)
        await self._apply(before)
        stored = await self._handler.store(bytes(inbound.transcript))
        # E1381's receiver timer runs from our last reply, which is only being sent now
        self.link.deadline = self._loop.time() + self.link.timers.receiver_idle
        if stored:
            await self._apply([held])
            self._inbound = _Inbound(bytearray(), bytearray(), frame_raw, frame_raw)
            return
        inbound.refused_store = True
        await self._answer_held(b"", [held], _NAK)

    async def _answer_held(self, unit: bytes, events: list[Event], reply: bytes) -> None:
        """Write the link's replies with the last one (its ACK) replaced by `reply`."""
        replaced = [*events[:-1], Send(reply)]
        self._record(unit, replaced)
        await self._apply(replaced)

    async def _transfer_ended(self, event: TransferReceived | TransferAborted) -> None:
        inbound, self._inbound = self._inbound, None
        if isinstance(event, TransferAborted):
            log.warning("astm transfer aborted", channel=self._channel, reason=event.reason)
            await self._handler.refuse(event.transcript, f"ASTM transfer aborted: {event.reason}", transcript=True)
            return
        if inbound is None or not inbound.text:
            return
        text = bytes(inbound.text)
        transcript = bytes(inbound.transcript)
        if inbound.oversized or inbound.refused_store:
            log.warning(
                "astm transfer ended without a stored message; the device sends it again",
                channel=self._channel,
                oversized=inbound.oversized,
            )
            if inbound.oversized:
                head = transcript[:OVERSIZED_HEAD_BYTES]
                limit = self._max_message_bytes
                reason = f"ASTM message larger than {limit} bytes; its first {len(head)} bytes are kept"
                await self._handler.refuse(head, reason, transcript=True)
        elif _has_record(text, b"Q"):
            task = asyncio.create_task(self._answer(transcript, text))
            self._queries.add(task)
            task.add_done_callback(self._queries.discard)
        elif inbound.stored_frame != inbound.last_accepted:
            log.warning("astm transfer ended without an L record; stored at EOT", channel=self._channel)
            await self._handler.store(transcript)

    async def _answer(self, transcript: bytes, text: bytes) -> None:
        answer = await self._handler.answer_query(transcript, text)
        self._outgoing.put_nowait(answer)

    # -- events ------------------------------------------------------------------------

    async def _apply(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, Send):
                self._writer.write(event.data)
            elif isinstance(event, (TransferReceived, TransferAborted)):
                await self._transfer_ended(event)
            elif isinstance(event, MessageSent):
                log.info("astm order download sent", channel=self._channel)
            elif isinstance(event, SendFailed):
                log.warning("astm order download failed", channel=self._channel, reason=event.reason)
            elif isinstance(event, FrameRejected):
                log.warning("astm frame refused", channel=self._channel, reason=event.reason)
            elif isinstance(event, Discarded):
                self._collect_noise(event.data)
        await self._writer.drain()

    # -- text outside any transfer ------------------------------------------------------

    def _collect_noise(self, data: bytes) -> None:
        """Gather bytes outside a transfer until the line is quiet for `noise_quiet`, so a
        proprietary report trickling in over a serial line becomes one refusal, not one
        per read. Stray trailers and late ACK/EOT bytes are not input and are dropped."""
        if not data.strip(_LINE_FILLER) and not self._noise:
            return
        self._noise += data
        self._noise_deadline = self._loop.time() + self._noise_quiet
        if len(self._noise) > self._max_message_bytes:
            self._noise_deadline = self._loop.time()

    async def _store_noise(self) -> None:
        noise, self._noise, self._noise_deadline = bytes(self._noise), bytearray(), None
        if not noise.strip(_LINE_FILLER):
            return
        log.warning(
            "astm bytes outside a transfer refused",
            channel=self._channel,
            bytes=len(noise),
            head=redact(noise[:40].decode("latin-1"), ()),
        )
        await self._handler.refuse(
            noise[: self._max_message_bytes], "text outside any ASTM transfer (no ENQ before it)", transcript=False
        )
