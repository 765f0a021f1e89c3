"""An ASTM analyser simulator: plays the instrument's end of an E1381 link, byte by byte.

It sends a message the way an instrument does (ENQ, wait for ACK, each frame and wait for
its reply, EOT), resending a frame refused with NAK up to the 6-try limit, and it can
inject faults: a wrong checksum on chosen frames (first try only), a slow final frame, no
EOT. It also receives the host's transfer (an order download), answering ACK. Every byte
both ways is kept with the moment it passed, so a test can check what the host answered
and when.

    analyser = await AstmAnalyser.connect("127.0.0.1", port)
    report = await analyser.send(transfers_of(sample_bytes)[0], Faults(bad_checksum={2}))
    download = await analyser.receive()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from plugins.lis_device.astm.frames import (
    ACK,
    ENQ,
    EOT,
    NAK,
    STX,
    frame_end,
    frames_for_message,
    parse_frame,
)

MAX_TRIES = 6


@dataclass(frozen=True)
class Faults:
    bad_checksum: frozenset[int] = frozenset()  # 1-based frame indexes, corrupted on the first try
    drop_eot: bool = False


NO_FAULTS = Faults()


@dataclass
class SendReport:
    """What happened to one transfer: each frame's replies, and whether all were ACKed."""

    enq_reply: int | None = None
    replies: list[list[int]] = field(default_factory=list)
    completed: bool = False

    @property
    def naks(self) -> int:
        return sum(reply.count(NAK) for reply in self.replies)


def transfers_of(sample: bytes) -> list[list[bytes]]:
    """The frames to send for a sample file: framed files keep their frames exactly (a new
    transfer at each ENQ, or where frame numbers restart at 1); record files are framed
    one record per frame group."""
    if STX not in sample:
        return [frames_for_message(sample)]
    transfers: list[list[bytes]] = []
    current: list[bytes] = []
    position = 0
    while (start := sample.find(STX, position)) >= 0:
        end = frame_end(sample, start)
        if end is None:
            break
        enq = sample.find(ENQ, position, start)
        number = parse_frame(sample[start:end]).number
        if current and (enq >= 0 or number == 1):
            transfers.append(current)
            current = []
        current.append(sample[start:end] + b"\r\n")
        position = end
    if current:
        transfers.append(current)
    return transfers


def corrupt(frame: bytes) -> bytes:
    """The same frame with its checksum off by one."""
    end = frame_end(frame)
    assert end is not None
    wrong = (int(frame[end - 2 : end], 16) + 1) & 0xFF
    return frame[: end - 2] + b"%02X" % wrong + frame[end:]


class AstmAnalyser:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, reply_timeout: float = 15.0
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.reply_timeout = reply_timeout
        self.log: list[tuple[str, bytes, float]] = []  # ("out"|"in", bytes, loop time)
        self._pending = bytearray()
        self._loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, host: str, port: int, *, reply_timeout: float = 15.0) -> AstmAnalyser:
        return cls(*await asyncio.open_connection(host, port), reply_timeout=reply_timeout)

    async def write(self, data: bytes) -> None:
        self.log.append(("out", data, self._loop.time()))
        self.writer.write(data)
        await self.writer.drain()

    async def read_byte(self, timeout: float | None = None) -> int:
        while not self._pending:
            data = await asyncio.wait_for(self.reader.read(65536), timeout or self.reply_timeout)
            if not data:
                raise ConnectionError("host closed the connection")
            self.log.append(("in", data, self._loop.time()))
            self._pending += data
        return self._pending.pop(0)

    async def send(self, frames: list[bytes], faults: Faults = NO_FAULTS) -> SendReport:
        report = SendReport()
        await self.write(bytes((ENQ,)))
        report.enq_reply = await self.read_byte()
        if report.enq_reply != ACK:
            return report
        for index, frame in enumerate(frames, start=1):
            replies: list[int] = []
            report.replies.append(replies)
            for attempt in range(MAX_TRIES):
                bad = attempt == 0 and index in faults.bad_checksum
                await self.write(corrupt(frame) if bad else frame)
                replies.append(await self.read_byte())
                if replies[-1] in (ACK, EOT):
                    break
            else:
                await self.write(bytes((EOT,)))
                return report
        report.completed = True
        if not faults.drop_eot:
            await self.write(bytes((EOT,)))
        return report

    async def receive(self, timeout: float = 15.0) -> bytes:
        """Wait for the host's ENQ, ACK every frame, return the joined frame text at EOT."""
        while await self.read_byte(timeout) != ENQ:
            pass
        await self.write(bytes((ACK,)))
        text = bytearray()
        frame = bytearray()
        while True:
            byte = await self.read_byte(timeout)
            if byte == EOT and not frame:
                return bytes(text)
            if byte == STX or frame:
                frame.append(byte)
                end = frame_end(frame)
                if end is not None:
                    parsed = parse_frame(bytes(frame[:end]))
                    ok = parsed.checksum_ok and parsed.number is not None
                    if ok:
                        text += parsed.text
                    await self.write(bytes((ACK if ok else NAK,)))
                    frame.clear()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
