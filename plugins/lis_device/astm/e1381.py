"""The ASTM E1381 / CLSI LIS01 link layer as a pure state machine: bytes and time in,
events out. No sockets and no clock of its own, so a TCP server, a TCP client or a serial
port can drive it, and tests can walk it through whole sessions in microseconds.

    link = E1381Link(has_priority=False)          # the host (LIS side)
    events = link.receive(data, now)              # bytes read from the device
    events = link.send_message(records, now)      # queue an order download
    events = link.tick(now)                       # call when now >= link.deadline

Events: `Send(data)` bytes to write; `TransferReceived(text, transcript)` a complete
ENQ..EOT transfer (frame texts joined, and every byte both ways in wire order);
`TransferAborted(reason, transcript)` an incomplete transfer dropped; `MessageSent`;
`SendFailed(reason)`; `FrameRejected(reason)` a frame answered with NAK; `Discarded(data)`
bytes that were not part of any transfer (proprietary text on the line).

Rules implemented (device_protocols.md §3):
- establishment: ENQ -> ACK (or NAK when `busy`); frames; EOT ends the transfer.
- receiver: checksum and frame number checked, NAK on a bad frame and the retransmission
  accepted; a repeat of the last good frame (its ACK was lost) is ACKed and not appended;
  ETB frames are joined (a record or a field may be split anywhere); no frame or EOT within
  30 s of the last reply drops the transfer.
- sender: one record per frame group, records over `max_frame_text` split in ETB frames;
  NAK or any other reply -> the frame again, and after the 6th refusal EOT and failure;
  no reply within 15 s -> EOT and failure; NAK to ENQ (receiver busy) -> ENQ again after
  10 s, up to 6 times; EOT in reply to a frame (receiver interrupt) is taken as ACK.
- contention (both sent ENQ): the instrument (`has_priority=True`) waits 1 s and sends
  ENQ again; the host stops, receives the instrument's transfer, and waits 20 s from the
  contention before its own ENQ.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

import structlog

from plugins.lis_device.astm.frames import (
    ACK,
    CLASSIC_FRAME_TEXT,
    ENQ,
    EOT,
    NAK,
    STX,
    frame_end,
    frames_for_message,
    parse_frame,
)

log = structlog.get_logger(__name__)

_EOT = bytes((EOT,))
_ENQ = bytes((ENQ,))
_ACK = bytes((ACK,))
_NAK = bytes((NAK,))


@dataclass(frozen=True, slots=True)
class E1381Timers:
    """Seconds; shorten them in tests through configuration, never by sleeping."""

    sender_reply: float = 15.0
    receiver_idle: float = 30.0
    busy_retry: float = 10.0
    host_contention_hold: float = 20.0
    instrument_contention_retry: float = 1.0


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class TransferReceived:
    text: bytes
    transcript: bytes
    frames: int


@dataclass(frozen=True, slots=True)
class TransferAborted:
    reason: str
    transcript: bytes


@dataclass(frozen=True, slots=True)
class MessageSent:
    transcript: bytes


@dataclass(frozen=True, slots=True)
class SendFailed:
    reason: str
    transcript: bytes


@dataclass(frozen=True, slots=True)
class FrameRejected:
    reason: str


@dataclass(frozen=True, slots=True)
class Discarded:
    data: bytes


Event = (
    Send | TransferReceived | TransferAborted | MessageSent | SendFailed | FrameRejected | Discarded
)


class LinkState(Enum):
    NEUTRAL = "neutral"
    RECEIVING = "receiving"
    AWAIT_ENQ_REPLY = "await_enq_reply"
    AWAIT_FRAME_REPLY = "await_frame_reply"
    WAIT_TO_ENQ = "wait_to_enq"


class E1381Link:
    """One end of an E1381 link (see the module docstring)."""

    MAX_RETRIES = 6

    def __init__(
        self,
        *,
        has_priority: bool = False,
        timers: E1381Timers = E1381Timers(),
        max_frame_text: int = CLASSIC_FRAME_TEXT,
        max_frame_bytes: int = 64_000 + 7,
        verify_checksum: bool = True,
    ) -> None:
        self.has_priority = has_priority
        self.timers = timers
        self.max_frame_text = max_frame_text
        self.max_frame_bytes = max_frame_bytes
        self.verify_checksum = verify_checksum
        self.busy = False
        self.state = LinkState.NEUTRAL
        self.deadline: float | None = None
        self._buffer = bytearray()
        self._transcript = bytearray()
        # receiving
        self._text = bytearray()
        self._expected = 1
        self._last_good: bytes | None = None
        self._frames_received = 0
        self._record_open = False
        self._refused_last = False
        # sending
        self._outbox: deque[bytes] = deque()
        self._frames: list[bytes] = []
        self._frame_index = 0
        self._refusals = 0
        self._enq_attempts = 0
        self._hold_until: float | None = None

    # -- inputs ------------------------------------------------------------------------

    def send_message(self, text: bytes, now: float) -> list[Event]:
        """Queue one message (records each ended by CR) to send as its own transfer."""
        self._outbox.append(text)
        if self.state is LinkState.NEUTRAL:
            return self._maybe_start_sending(now)
        return []

    def receive(self, data: bytes, now: float) -> list[Event]:
        """Bytes read from the peer."""
        events: list[Event] = []
        self._buffer += data
        while self._buffer:
            if self.state is LinkState.RECEIVING:
                if not self._receive_step(now, events):
                    break
            elif self.state in (LinkState.AWAIT_ENQ_REPLY, LinkState.AWAIT_FRAME_REPLY):
                byte = self._buffer.pop(0)
                self._transcript.append(byte)
                self._on_reply(byte, now, events)
            else:
                self._neutral_step(now, events)
        return events

    def tick(self, now: float) -> list[Event]:
        """Handle a passed deadline; harmless to call early."""
        if self.deadline is None or now < self.deadline:
            return []
        events: list[Event] = []
        state = self.state
        self.deadline = None
        if state is LinkState.RECEIVING:
            events.append(
                TransferAborted("receiver timeout: no frame or EOT", self._take_transcript())
            )
            self._reset_receiver()
            self.state = LinkState.NEUTRAL
            events += self._maybe_start_sending(now)
        elif state is LinkState.AWAIT_ENQ_REPLY:
            self._fail_sending("no reply to ENQ", events)
            events += self._maybe_start_sending(now)
        elif state is LinkState.AWAIT_FRAME_REPLY:
            self._fail_sending("no reply to frame", events)
            events += self._maybe_start_sending(now)
        elif state is LinkState.WAIT_TO_ENQ:
            self.state = LinkState.NEUTRAL
            events += self._maybe_start_sending(now)
        return events

    # -- receiving ---------------------------------------------------------------------

    def _neutral_step(self, now: float, events: list[Event]) -> None:
        enq = self._buffer.find(ENQ)
        if enq < 0:
            events.append(Discarded(bytes(self._buffer)))
            self._buffer.clear()
            return
        if enq:
            events.append(Discarded(bytes(self._buffer[:enq])))
        del self._buffer[: enq + 1]
        self._transcript = bytearray(_ENQ)
        if self.busy:
            self._emit(_NAK, events)
            self._transcript.clear()
            return
        self._emit(_ACK, events)
        self._reset_receiver()
        self.state = LinkState.RECEIVING
        self.deadline = now + self.timers.receiver_idle

    def _receive_step(self, now: float, events: list[Event]) -> bool:
        """Consume one unit (frame, EOT, ENQ or noise); False when more bytes are needed."""
        first = self._buffer[0]
        if first == EOT:
            self._take(1)
            reason = self._incomplete_reason()
            if reason:
                events.append(TransferAborted(reason, self._take_transcript()))
            else:
                transcript = self._take_transcript()
                events.append(
                    TransferReceived(bytes(self._text), transcript, self._frames_received)
                )
            self._reset_receiver()
            self.state = LinkState.NEUTRAL
            self.deadline = None
            events += self._maybe_start_sending(now)
            return True
        if first == ENQ:
            self._take(1)
            events.append(TransferAborted("sender restarted with ENQ", self._take_transcript()))
            self._transcript = bytearray(_ENQ)
            self._reset_receiver()
            self._emit(_ACK, events)
            self.deadline = now + self.timers.receiver_idle
            return True
        if first != STX:
            # Frame trailers (CRLF, CR or LF) and line noise between frames.
            found = [i for i in (self._buffer.find(b) for b in (STX, EOT, ENQ)) if i >= 0]
            self._take(min(found) if found else len(self._buffer))
            return True
        end = frame_end(self._buffer)
        interrupted = [i for i in (self._buffer.find(b, 1) for b in (STX, EOT, ENQ)) if i >= 0]
        if interrupted and (end is None or min(interrupted) < end):
            self._take(min(interrupted))
            events.append(FrameRejected("frame cut short by STX, EOT or ENQ"))
            return True
        if end is None:
            if len(self._buffer) > self.max_frame_bytes:
                self._take(len(self._buffer))
                self._reject("frame too large", now, events)
            return False
        raw = self._take(end)
        self._take_trailer()
        frame = parse_frame(raw)
        if frame.number is None or (not frame.checksum_ok and self.verify_checksum):
            self._reject(frame.problem, now, events)
        elif frame.number == self._expected:
            if not frame.checksum_ok:
                log.warning("astm_checksum_ignored", frame=frame.number)
            self._text += frame.text
            self._record_open = not frame.final
            self._last_good = raw
            self._frames_received += 1
            self._expected = (self._expected + 1) % 8
            self._refused_last = False
            self._emit(_ACK, events)
        elif raw == self._last_good:
            self._refused_last = False
            self._emit(_ACK, events)
        else:
            self._reject(f"frame number {frame.number}, expected {self._expected}", now, events)
        self.deadline = now + self.timers.receiver_idle
        return True

    def _incomplete_reason(self) -> str:
        if self._refused_last:
            return "sender ended the transfer after a refused frame"
        if self._record_open:
            return "EOT after an intermediate (ETB) frame: last record incomplete"
        if not self._frames_received:
            return "EOT before any accepted frame"
        return ""

    def _reject(self, reason: str, now: float, events: list[Event]) -> None:
        events.append(FrameRejected(reason))
        self._refused_last = True
        self._emit(_NAK, events)
        self.deadline = now + self.timers.receiver_idle

    def _reset_receiver(self) -> None:
        self._text = bytearray()
        self._expected = 1
        self._last_good = None
        self._frames_received = 0
        self._record_open = False
        self._refused_last = False

    # -- sending -----------------------------------------------------------------------

    def _maybe_start_sending(self, now: float) -> list[Event]:
        if self.state is not LinkState.NEUTRAL or not self._outbox:
            return []
        if self._hold_until is not None and now < self._hold_until:
            self.state = LinkState.WAIT_TO_ENQ
            self.deadline = self._hold_until
            return []
        self._hold_until = None
        events: list[Event] = []
        self._transcript = bytearray()
        self._frames = frames_for_message(self._outbox[0], self.max_frame_text)
        self._frame_index = 0
        self._refusals = 0
        self._enq_attempts += 1
        self._emit(_ENQ, events)
        self.state = LinkState.AWAIT_ENQ_REPLY
        self.deadline = now + self.timers.sender_reply
        return events

    def _on_reply(self, byte: int, now: float, events: list[Event]) -> None:
        if self.state is LinkState.AWAIT_ENQ_REPLY:
            self._on_enq_reply(byte, now, events)
        else:
            self._on_frame_reply(byte, now, events)

    def _on_enq_reply(self, byte: int, now: float, events: list[Event]) -> None:
        if byte == ACK:
            self._enq_attempts = 0
            self._send_current_frame(now, events)
        elif byte == NAK:
            if self._enq_attempts >= self.MAX_RETRIES:
                self._fail_sending("receiver busy: ENQ refused 6 times", events, send_eot=False)
                return
            self.state = LinkState.WAIT_TO_ENQ
            self.deadline = now + self.timers.busy_retry
        elif byte == ENQ:
            self._on_contention(now, events)
        # Anything else in reply to ENQ is line noise: keep waiting for ACK/NAK.

    def _on_contention(self, now: float, events: list[Event]) -> None:
        self._enq_attempts = 0
        if self.has_priority:
            self.state = LinkState.WAIT_TO_ENQ
            self.deadline = now + self.timers.instrument_contention_retry
            return
        log.info("astm_contention_host_yields")
        self._hold_until = now + self.timers.host_contention_hold
        self._transcript = bytearray()
        self.state = LinkState.NEUTRAL
        self.deadline = None

    def _on_frame_reply(self, byte: int, now: float, events: list[Event]) -> None:
        if byte in (ACK, EOT):
            self._frame_index += 1
            self._refusals = 0
            if self._frame_index < len(self._frames):
                self._send_current_frame(now, events)
                return
            self._emit(_EOT, events)
            self._outbox.popleft()
            events.append(MessageSent(self._take_transcript()))
            self.state = LinkState.NEUTRAL
            self.deadline = None
            events += self._maybe_start_sending(now)
            return
        self._refusals += 1
        if self._refusals >= self.MAX_RETRIES:
            self._fail_sending("frame refused 6 times", events)
            events += self._maybe_start_sending(now)
            return
        self._send_current_frame(now, events)

    def _send_current_frame(self, now: float, events: list[Event]) -> None:
        self._emit(self._frames[self._frame_index], events)
        self.state = LinkState.AWAIT_FRAME_REPLY
        self.deadline = now + self.timers.sender_reply

    def _fail_sending(self, reason: str, events: list[Event], *, send_eot: bool = True) -> None:
        if send_eot:
            self._emit(_EOT, events)
        self._outbox.popleft()
        self._enq_attempts = 0
        events.append(SendFailed(reason, self._take_transcript()))
        log.warning("astm_send_failed", reason=reason)
        self.state = LinkState.NEUTRAL
        self.deadline = None

    # -- bytes -------------------------------------------------------------------------

    def _emit(self, data: bytes, events: list[Event]) -> None:
        self._transcript += data
        events.append(Send(data))

    def _take(self, count: int) -> bytes:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        self._transcript += data
        return data

    def _take_trailer(self) -> None:
        """CR LF after the checksum when already here; a late or missing one is skipped later
        as noise, so devices that send CR only, LF only or nothing work too."""
        for byte in (0x0D, 0x0A):
            if self._buffer[:1] == bytes((byte,)):
                self._take(1)

    def _take_transcript(self) -> bytes:
        transcript, self._transcript = bytes(self._transcript), bytearray()
        return transcript
