"""Payload formats for `hisbridge show` and `hisbridge diff`: HL7 v2 and ASTM.

HL7 paths are field paths (`PID-5.1`, `OBX[2]-5`, `PID-3(2).1`); ASTM paths are record
paths (`R[2].4`, `O.5(2).4`). Both formats read what the device put on the wire: HL7 with
or without MLLP framing (charset from MSH-18), ASTM as bare records or as a whole E1381
transcript (ENQ, frames, checksums, EOT), whose frame problems are listed as
`E1381.problem[n]` so a diff shows a bad checksum next to the values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import ClassVar

from engine.errors import InputError
from engine.formats.base import PayloadFormat
from plugins.lis_device.astm.frames import scan_transcript
from plugins.lis_device.astm.records import AstmDelimiters, AstmMessage
from plugins.lis_device.hl7.reader import Hl7Message

_CONTROL_SPLIT = re.compile(rb"([\x00-\x1f])")
_LINE_STARTERS = frozenset((0x02, 0x04, 0x05, 0x06, 0x15))
_LEADING = b"\x0b\x1c\r\n\t \xef\xbb\xbf"
_CONTROL_NAMES = {
    0x02: "<STX>",
    0x03: "<ETX>",
    0x04: "<EOT>",
    0x05: "<ENQ>",
    0x06: "<ACK>",
    0x0D: "<CR>",
    0x0A: "<LF>",
    0x15: "<NAK>",
    0x17: "<ETB>",
}


class Hl7Format(PayloadFormat):
    name: ClassVar[str] = "hl7"
    content_types: ClassVar[tuple[str, ...]] = ("application/hl7-v2", "x-application/hl7-v2+er7")

    def sniff(self, body: bytes) -> bool:
        start = body.lstrip(_LEADING)
        return start.startswith(b"MSH") and len(start) > 8 and not start[3:4].isalnum()

    def _parse(self, body: bytes) -> Hl7Message:
        try:
            return Hl7Message.parse(body)
        except InputError as exc:
            raise ValueError(str(exc)) from exc

    def flatten(self, body: bytes) -> Iterable[tuple[str, str]]:
        return list(self._parse(body).leaves())

    def render(self, body: bytes) -> str:
        return "\n".join(segment.text() for segment in self._parse(body).segments)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


class AstmFormat(PayloadFormat):
    name: ClassVar[str] = "astm"
    content_types: ClassVar[tuple[str, ...]] = ("application/x-astm",)

    def sniff(self, body: bytes) -> bool:
        if b"\x02" in body[:64] and scan_transcript(body).text.startswith(b"H"):
            return True
        start = _decode(body[:64].lstrip(_LEADING))
        try:
            AstmDelimiters.from_header(start)
        except InputError:
            return False
        return True

    def _read(self, body: bytes) -> tuple[AstmMessage, list[str]]:
        problems: list[str] = []
        text = body
        if b"\x02" in body:
            scanned = scan_transcript(body)
            if scanned.frames:
                text, problems = scanned.text, scanned.problems
        try:
            return AstmMessage.parse(_decode(text)), problems
        except InputError as exc:
            raise ValueError(str(exc)) from exc

    def flatten(self, body: bytes) -> Iterable[tuple[str, str]]:
        message, problems = self._read(body)
        pairs = list(message.leaves())
        pairs += [(f"E1381.problem[{n}]", text) for n, text in enumerate(problems, start=1)]
        return pairs

    def render(self, body: bytes) -> str:
        message, _ = self._read(body)
        records = "\n".join(record.text() for record in message.records)
        if b"\x02" not in body:
            return records
        return "\n".join(_transcript_lines(body)) + "\n\n" + records


def _transcript_lines(body: bytes) -> Iterator[str]:
    """The transcript with control characters named, one frame or reply per line."""
    line: list[str] = []
    for piece in _CONTROL_SPLIT.split(body):
        if not piece:
            continue
        code = piece[0]
        if len(piece) == 1 and code < 0x20:
            if code in _LINE_STARTERS and line:
                yield "".join(line)
                line = []
            line.append(_CONTROL_NAMES.get(code, f"<{code:02X}>"))
        else:
            line.append(_decode(piece))
    if line:
        yield "".join(line)
