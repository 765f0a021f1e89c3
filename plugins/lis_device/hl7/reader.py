"""A fast, tolerant HL7 v2 reader: what every message from an analyser goes through.

hl7apy builds a validated object per component (65-100 ms for a 1.5 KB ORU); this reader
splits strings (tens of microseconds) and is lenient where devices are sloppy:

- segments may end with CR, LF or CRLF, blank lines are skipped, the last one may be
  unterminated, and stray MLLP bytes (VT, FS) around the text are ignored;
- separators come from MSH-1/MSH-2, whatever they are;
- the text is decoded with MSH-18 when bytes are given (see engine.mllp.header);
- fields are split eagerly, components only when asked for.

Field paths (used by `get()`, `hisbridge diff` and the per-device configuration):

    PID-5.1        segment PID, field 5, component 1
    OBX[2]-5       second OBX segment, field 5 (occurrences count from 1)
    PID-3(2).1     field 3, second repetition, component 1
    OBR-2.1.2      ... subcomponent 2
    MSH-9.2        MSH counts as HL7 does: MSH-1 is the field separator, MSH-2 the
                   encoding characters, so MSH-9 is the message type

A path that stops above the leaf returns that level's whole text, escapes resolved.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from engine.mllp.header import Hl7HeaderError, MshHeader, Separators, decode_message

_PATH = re.compile(
    r"^\s*(?P<segment>[A-Z0-9]{3})(?:\[(?P<occurrence>\d+)\])?"
    r"(?:-(?P<field>\d+)(?:\((?P<repetition>\d+)\))?"
    r"(?:\.(?P<component>\d+)(?:\.(?P<subcomponent>\d+))?)?)?\s*$"
)
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")
_FRAMING = "\ufeff\x0b\x1c\r\n\t "


@dataclass(frozen=True, slots=True)
class FieldPath:
    """A parsed field path; numbers count from 1, None means 'the whole level'."""

    segment: str
    occurrence: int = 1
    field: int | None = None
    repetition: int | None = None
    component: int | None = None
    subcomponent: int | None = None

    @staticmethod
    @lru_cache(maxsize=1024)
    def parse(text: str) -> FieldPath:
        match = _PATH.match(text)
        if match is None:
            raise ValueError(f"not an HL7 field path: {text!r} (expected e.g. PID-5.1, OBX[2]-5)")
        numbers = {
            key: int(value)
            for key, value in match.groupdict().items()
            if value and key != "segment"
        }
        if any(number < 1 for number in numbers.values()):
            raise ValueError(f"HL7 path numbers count from 1: {text!r}")
        return FieldPath(match["segment"], **numbers)

    def __str__(self) -> str:
        text = self.segment
        if self.occurrence != 1:
            text += f"[{self.occurrence}]"
        if self.field is not None:
            text += f"-{self.field}"
            if self.repetition is not None:
                text += f"({self.repetition})"
            if self.component is not None:
                text += f".{self.component}"
                if self.subcomponent is not None:
                    text += f".{self.subcomponent}"
        return text


def _nth(parts: list[str], number: int) -> str:
    return parts[number - 1] if number <= len(parts) else ""


class Segment:
    """One segment. `fields[n]` is field n as sent (escapes unresolved); `fields[0]` the name."""

    __slots__ = ("codec", "fields", "name", "separators")

    def __init__(self, name: str, fields: list[str], separators: Separators, codec: str) -> None:
        self.name = name
        self.fields = fields
        self.separators = separators
        self.codec = codec

    def __repr__(self) -> str:
        return f"Segment({self.name}, {len(self.fields) - 1} fields)"

    def raw(self, field: int) -> str:
        return self.fields[field] if field < len(self.fields) else ""

    def value(
        self,
        field: int,
        repetition: int | None = None,
        component: int | None = None,
        subcomponent: int | None = None,
    ) -> str:
        """The addressed text with escapes resolved; '' when absent."""
        text = self.raw(field)
        if self.name == "MSH" and field <= 2:
            return text
        s = self.separators
        if repetition is not None or component is not None:
            text = _nth(text.split(s.repetition), repetition or 1)
        if component is not None:
            text = _nth(text.split(s.component), component)
            if subcomponent is not None:
                text = _nth(text.split(s.subcomponent), subcomponent)
        return s.unescape(text, self.codec)

    def components(self, field: int, repetition: int = 1) -> list[str]:
        """The components of one repetition of a field, escapes resolved."""
        s = self.separators
        text = _nth(self.raw(field).split(s.repetition), repetition)
        return [s.unescape(part, self.codec) for part in text.split(s.component)]

    def repetitions(self, field: int) -> list[str]:
        """Every non-empty repetition of a field, escapes resolved (e.g. OBX-8 'H~A')."""
        s = self.separators
        return [s.unescape(rep, self.codec) for rep in self.raw(field).split(s.repetition) if rep]

    def text(self) -> str:
        """The segment as one line of text, as sent."""
        if self.name == "MSH":
            return "MSH" + self.fields[1] + self.fields[1].join(self.fields[2:])
        return self.separators.field.join(self.fields)


class Hl7Message:
    """A parsed HL7 v2 message. Build it with `Hl7Message.parse()`."""

    __slots__ = ("codec", "declared_charset", "header", "segments", "separators", "warnings")

    def __init__(
        self,
        segments: list[Segment],
        header: MshHeader,
        codec: str,
        declared_charset: str,
        warnings: list[str],
    ) -> None:
        self.segments = segments
        self.header = header
        self.separators = header.separators
        self.codec = codec
        self.declared_charset = declared_charset
        self.warnings = warnings

    @classmethod
    def parse(cls, message: bytes | str, default_charset: str = "utf-8") -> Hl7Message:
        """Parse raw bytes (decoded per MSH-18, else `default_charset`) or text.

        Raises Hl7HeaderError (an InputError blaming the device) when there is no MSH.
        """
        warnings: list[str] = []
        if isinstance(message, bytes):
            decoded = decode_message(message, default_charset)
            text, codec, declared = decoded.text, decoded.codec, decoded.declared_charset
            warnings.extend(decoded.warnings)
        else:
            text, codec, declared = message, "utf-8", ""
        text = text.strip(_FRAMING)
        if not text.startswith("MSH") or len(text) < 8:
            raise Hl7HeaderError("message does not start with an MSH segment")
        field_separator = text[3]
        if field_separator.isalnum() or field_separator in "\r\n":
            raise Hl7HeaderError(f"MSH-1 field separator {field_separator!r} is not usable")
        lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
        header_parts = lines[0].split(field_separator)
        separators = Separators.from_msh(field_separator, header_parts[1])
        header_fields = ["MSH", field_separator, *header_parts[1:]]
        header = MshHeader(separators, tuple(header_fields))
        if not declared:
            declared = header.declared_charset
        segments = [Segment("MSH", header_fields, separators, codec)]
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            parts = line.split(field_separator)
            name = parts[0].strip()
            if not _SEGMENT_NAME.match(name):
                warnings.append(f"line {number} does not start with a segment name: {name[:10]!r}")
            parts[0] = name
            segments.append(Segment(name, parts, separators, codec))
        return cls(segments, header, codec, declared, warnings)

    def segments_named(self, name: str) -> list[Segment]:
        return [segment for segment in self.segments if segment.name == name]

    def segment(self, name: str, occurrence: int = 1) -> Segment | None:
        seen = 0
        for segment in self.segments:
            if segment.name == name:
                seen += 1
                if seen == occurrence:
                    return segment
        return None

    def get(self, path: str) -> str:
        """The value at a field path (see the module docstring); '' when absent.

        A path naming only a segment returns the segment's text."""
        where = FieldPath.parse(path)
        segment = self.segment(where.segment, where.occurrence)
        if segment is None:
            return ""
        if where.field is None:
            return segment.text()
        return segment.value(where.field, where.repetition, where.component, where.subcomponent)

    @property
    def message_code(self) -> str:
        return self.header.message_code

    @property
    def trigger_event(self) -> str:
        return self.header.trigger_event

    @property
    def control_id(self) -> str:
        return self.header.control_id

    @property
    def version(self) -> str:
        return self.header.version

    def leaves(self) -> Iterator[tuple[str, str]]:
        """(path, value) for every non-empty leaf in document order, escapes resolved.

        Occurrence, repetition, component and subcomponent numbers are written only where
        that level is really repeated or split, so paths read as people write them."""
        totals: dict[str, int] = {}
        for segment in self.segments:
            totals[segment.name] = totals.get(segment.name, 0) + 1
        seen: dict[str, int] = {}
        for segment in self.segments:
            seen[segment.name] = seen.get(segment.name, 0) + 1
            prefix = segment.name
            if totals[segment.name] > 1:
                prefix += f"[{seen[segment.name]}]"
            yield from _segment_leaves(segment, prefix)


def _segment_leaves(segment: Segment, prefix: str) -> Iterator[tuple[str, str]]:
    s = segment.separators
    for number in range(1, len(segment.fields)):
        text = segment.fields[number]
        if not text:
            continue
        if segment.name == "MSH" and number <= 2:
            yield f"{prefix}-{number}", text
            continue
        repetitions = text.split(s.repetition)
        for rep_number, repetition in enumerate(repetitions, start=1):
            if not repetition:
                continue
            path = f"{prefix}-{number}" + (f"({rep_number})" if len(repetitions) > 1 else "")
            components = repetition.split(s.component)
            for comp_number, component in enumerate(components, start=1):
                if not component:
                    continue
                comp_path = path + (f".{comp_number}" if len(components) > 1 else "")
                subcomponents = component.split(s.subcomponent)
                for sub_number, subcomponent in enumerate(subcomponents, start=1):
                    if not subcomponent:
                        continue
                    sub_path = comp_path + (f".{sub_number}" if len(subcomponents) > 1 else "")
                    if len(subcomponents) > 1 and len(components) == 1:
                        sub_path = f"{path}.1.{sub_number}"
                    yield sub_path, s.unescape(subcomponent, segment.codec)


__all__ = ["FieldPath", "Hl7HeaderError", "Hl7Message", "Segment"]
