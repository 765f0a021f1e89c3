"""ASTM E1381 / CLSI LIS01 frames: checksum, building, and reading frames out of bytes.

A frame is `<STX> FN text <ETB|ETX> C1 C2 <CR><LF>`. FN is one digit, 1..7 then 0, 1, ...
(modulo 8, restarting at 1 after each ENQ). C1 C2 are the sum of the bytes from FN up to
and including ETX/ETB, modulo 256, as two uppercase hex digits. Intermediate frames end in
ETB, the last frame of a record in ETX. Classic E1381 allows 240 text characters per frame
(247 bytes in all); LIS01-A2 allows about 64,000, so the reader accepts large frames.

Devices send CRLF, CR only, LF only or nothing after the checksum, so the reader accepts
any of those; the builder always writes CRLF.
"""

from __future__ import annotations

from dataclasses import dataclass

ENQ = 0x05
ACK = 0x06
NAK = 0x15
EOT = 0x04
STX = 0x02
ETX = 0x03
ETB = 0x17
CR = 0x0D
LF = 0x0A
CLASSIC_FRAME_TEXT = 240


def checksum(body: bytes) -> bytes:
    """C1 C2 for `body` = FN + text + ETX/ETB."""
    return b"%02X" % (sum(body) & 0xFF)


def build_frame(number: int, text: bytes, *, final: bool) -> bytes:
    body = b"%d" % (number % 8) + text + bytes((ETX if final else ETB,))
    return bytes((STX,)) + body + checksum(body) + b"\r\n"


def frames_for_record(
    record: bytes, first_number: int, max_text: int = CLASSIC_FRAME_TEXT
) -> list[bytes]:
    """One record (ending in CR) as frames: ETB frames of `max_text` characters, then ETX."""
    if max_text < 1:
        raise ValueError("max_text must be >= 1")
    chunks = [record[start : start + max_text] for start in range(0, len(record), max_text)] or [
        b""
    ]
    return [
        build_frame(first_number + offset, chunk, final=offset == len(chunks) - 1)
        for offset, chunk in enumerate(chunks)
    ]


def frames_for_message(text: bytes, max_text: int = CLASSIC_FRAME_TEXT) -> list[bytes]:
    """A message (records each ended by CR; LF and CRLF are normalised, LF being restricted
    in frame text) as frames numbered from 1, one record per frame group, as ARCHITECT and
    cobas do."""
    lines = text.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r")
    records = [line + b"\r" for line in lines if line]
    frames: list[bytes] = []
    for record in records:
        frames.extend(frames_for_record(record, len(frames) + 1, max_text))
    return frames


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame read from the wire. `raw` is every byte from STX through the trailer."""

    number: int | None
    text: bytes
    final: bool
    checksum_ok: bool
    raw: bytes

    @property
    def problem(self) -> str:
        if self.number is None:
            return "frame number is not a digit 0-7"
        if not self.checksum_ok:
            return "checksum mismatch"
        return ""


def parse_frame(raw: bytes) -> Frame:
    """Read one frame; `raw` starts at STX and holds the terminator and checksum."""
    ends = [index for index in (raw.find(ETX, 1), raw.find(ETB, 1)) if index >= 0]
    if not ends:
        raise ValueError("frame has no ETX or ETB")
    end = min(ends)
    body = raw[1 : end + 1]
    sent = raw[end + 1 : end + 3]
    digit = body[:1]
    number = int(digit) if digit.isdigit() and int(digit) < 8 else None
    return Frame(
        number=number,
        text=body[1:-1],
        final=raw[end] == ETX,
        checksum_ok=sent.upper() == checksum(body),
        raw=raw,
    )


def frame_end(buffer: bytes | bytearray, start: int = 0) -> int | None:
    """Index just past the checksum of the frame starting at `start` (an STX), or None
    when the frame is not complete yet."""
    ends = [
        index for index in (buffer.find(ETX, start + 1), buffer.find(ETB, start + 1)) if index >= 0
    ]
    if not ends:
        return None
    index = min(ends)
    return index + 3 if index + 3 <= len(buffer) else None


@dataclass(slots=True)
class ScannedTranscript:
    """Record text recovered from framed bytes, and what was wrong with them."""

    text: bytes
    frames: int
    problems: list[str]


def scan_transcript(data: bytes) -> ScannedTranscript:
    """Join the text of every accepted frame in a transcript or framed fixture (ENQ, ACK, EOT
    and trailers are skipped); bad checksums and FN gaps are listed, not fatal.

    In a transcript the receiver's answer follows each frame: a frame answered with NAK was
    refused and its retransmission follows, so its text is left out; a frame repeated after a
    lost ACK (same number, same text) is joined once."""
    text = bytearray()
    problems: list[str] = []
    position = 0
    count = 0
    expected = 1
    last: Frame | None = None
    while True:
        start = data.find(bytes((STX,)), position)
        enq = data.find(bytes((ENQ,)), position)
        if 0 <= enq < (start if start >= 0 else len(data)):
            expected = 1
            last = None
        if start < 0:
            break
        end = frame_end(data, start)
        if end is None:
            problems.append(f"truncated frame at byte {start}")
            break
        frame = parse_frame(data[start:end])
        count += 1
        position = end
        if _answer_after(data, end) == NAK:
            problems.append(f"frame {count}: refused with NAK; its retransmission follows")
            continue
        if last is not None and (frame.number, frame.text) == (last.number, last.text):
            continue
        if frame.problem:
            problems.append(f"frame {count}: {frame.problem}")
        elif frame.number != expected % 8:
            problems.append(f"frame {count}: number {frame.number}, expected {expected % 8}")
        expected = (frame.number if frame.number is not None else expected) + 1
        text += frame.text
        last = frame
    return ScannedTranscript(bytes(text), count, problems)


def _answer_after(data: bytes, end: int) -> int | None:
    """The receiver's byte after the frame ending at `end` (past its CR LF trailer)."""
    while end < len(data) and data[end] in b"\r\n":
        end += 1
    return data[end] if end < len(data) else None
