"""ASTM E1394 / CLSI LIS2-A2 records: delimiters, parsing, paths, escapes and building.

A message is H ... L, one record per line ending in CR (LF and CRLF are accepted too).
The four delimiters are the four characters after `H`: field, repeat, component, escape
(`H|\\^&` normally; GeneXpert `H|@^\\`, Beckman DxH `H|\\!~`). A header written with the
repeat character doubled (`H|\\\\^&`, a fixture quoting bug) is read as `|\\^&`.

Fields are numbered as E1394 numbers them: field 1 is the record type, field 2 the
sequence number (in H: the delimiter definition), so `R-4` is the measured value.

Record paths (used by `get()`, `hisbridge diff` and per-device settings):

    R.4            the first R record, field 4
    R[2].4         the second R record in the message (counted over the whole message,
                   not by the R-2 sequence number, which restarts under each O)
    R[2].3.4       ... component 4 (the manufacturer's test code in ^^^code)
    O.5(2).4       field 5, second repeat, component 4

Escapes use the escape delimiter: &F& &S& &R& &E& and &Xhh..& are resolved (with `&` as
the escape character); others are left as sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from engine.errors import InputError

RECORD_TYPES = frozenset("HPOQRCMLS")
_PATH = re.compile(
    r"^\s*(?P<record>[A-Z])(?:\[(?P<occurrence>\d+)\])?"
    r"(?:\.(?P<field>\d+)(?:\((?P<repeat>\d+)\))?(?:\.(?P<component>\d+))?)?\s*$"
)


class AstmFormatError(InputError):
    """The text is not an ASTM E1394 message (no H record, bad delimiters)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, field="ASTM", party="device")


@dataclass(frozen=True, slots=True)
class AstmDelimiters:
    field: str = "|"
    repeat: str = "\\"
    component: str = "^"
    escape: str = "&"

    @classmethod
    def from_header(cls, header: str) -> AstmDelimiters:
        """Read the delimiters from the text of an H record."""
        if len(header) < 5 or header[0] not in "Hh":
            raise AstmFormatError("first record is not an H record with delimiters")
        field = header[1]
        end = header.find(field, 2)
        definition = header[2 : end if end >= 0 else 5]
        unique = "".join(dict.fromkeys(definition))
        if len(unique) != 3 or field in unique or field.isalnum():
            raise AstmFormatError(
                f"H record delimiters {header[1:6]!r} are not four distinct characters"
            )
        return cls(field, unique[0], unique[1], unique[2])

    @property
    def definition(self) -> str:
        """H-2 as written after `H|`: repeat, component, escape."""
        return self.repeat + self.component + self.escape

    def escape_text(self, text: str) -> str:
        esc = self.escape
        table = {
            esc: f"{esc}E{esc}",
            self.field: f"{esc}F{esc}",
            self.component: f"{esc}S{esc}",
            self.repeat: f"{esc}R{esc}",
        }
        if not any(char in text for char in table):
            return text
        return "".join(table.get(char, char) for char in text)

    def unescape(self, text: str, encoding: str = "latin-1") -> str:
        esc = self.escape
        if esc not in text:
            return text
        named = {"F": self.field, "S": self.component, "R": self.repeat, "E": esc}
        out: list[str] = []
        position = 0
        while True:
            start = text.find(esc, position)
            end = text.find(esc, start + 1) if start >= 0 else -1
            if start < 0 or end < 0:
                out.append(text[position:])
                return "".join(out)
            code = text[start + 1 : end]
            resolved = named.get(code)
            if resolved is None and code[:1] == "X" and len(code) % 2 == 1 and len(code) > 1:
                try:
                    resolved = bytes.fromhex(code[1:]).decode(encoding)
                except (ValueError, LookupError):
                    resolved = None
            if resolved is None:
                # Not an escape sequence: keep the escape character as data and go on
                # from the next one (`&` is common in free text such as `A&B`).
                out.append(text[position : start + 1])
                position = start + 1
                continue
            out.append(text[position:start])
            out.append(resolved)
            position = end + 1


STANDARD_DELIMITERS = AstmDelimiters()


@dataclass(frozen=True, slots=True)
class RecordPath:
    record: str
    occurrence: int = 1
    field: int | None = None
    repeat: int | None = None
    component: int | None = None

    @staticmethod
    @lru_cache(maxsize=1024)
    def parse(text: str) -> RecordPath:
        match = _PATH.match(text)
        if match is None:
            raise ValueError(f"not an ASTM record path: {text!r} (expected e.g. R[2].4, O.5(2).4)")
        numbers = {
            key: int(value) for key, value in match.groupdict().items() if value and key != "record"
        }
        if any(number < 1 for number in numbers.values()):
            raise ValueError(f"ASTM path numbers count from 1: {text!r}")
        return RecordPath(match["record"], **numbers)

    def __str__(self) -> str:
        text = self.record + (f"[{self.occurrence}]" if self.occurrence != 1 else "")
        if self.field is not None:
            text += f".{self.field}"
            if self.repeat is not None:
                text += f"({self.repeat})"
            if self.component is not None:
                text += f".{self.component}"
        return text


def _nth(parts: list[str], number: int) -> str:
    return parts[number - 1] if number <= len(parts) else ""


class AstmRecord:
    """One record. `fields[n - 1]` is field n as sent; `fields[0]` is the record type."""

    __slots__ = ("delimiters", "encoding", "fields")

    def __init__(
        self, fields: list[str], delimiters: AstmDelimiters, encoding: str = "latin-1"
    ) -> None:
        self.fields = fields
        self.delimiters = delimiters
        self.encoding = encoding

    @property
    def type(self) -> str:
        return self.fields[0][:1].upper()

    def __repr__(self) -> str:
        return f"AstmRecord({self.text()[:40]!r})"

    def raw(self, field: int) -> str:
        return self.fields[field - 1] if 0 < field <= len(self.fields) else ""

    def value(self, field: int, repeat: int | None = None, component: int | None = None) -> str:
        """The addressed text, escapes resolved; '' when absent. H-2 is returned as sent."""
        text = self.raw(field)
        if self.type == "H" and field <= 2:
            return text
        d = self.delimiters
        if repeat is not None or component is not None:
            text = _nth(text.split(d.repeat), repeat or 1)
        if component is not None:
            text = _nth(text.split(d.component), component)
        return d.unescape(text, self.encoding)

    def components(self, field: int, repeat: int = 1) -> list[str]:
        d = self.delimiters
        text = _nth(self.raw(field).split(d.repeat), repeat)
        return [d.unescape(part, self.encoding) for part in text.split(d.component)]

    def repeats(self, field: int) -> list[str]:
        """Non-empty repeats of a field as sent (components not split)."""
        return [part for part in self.raw(field).split(self.delimiters.repeat) if part]

    def text(self) -> str:
        return self.delimiters.field.join(self.fields)


class AstmMessage:
    """A parsed H ... L message. Build it with `AstmMessage.parse()`."""

    __slots__ = ("delimiters", "records", "warnings")

    def __init__(
        self, records: list[AstmRecord], delimiters: AstmDelimiters, warnings: list[str]
    ) -> None:
        self.records = records
        self.delimiters = delimiters
        self.warnings = warnings

    @classmethod
    def parse(cls, message: bytes | str, encoding: str = "latin-1") -> AstmMessage:
        """Parse joined record text (frames already removed). Bytes are decoded with the
        device's `encoding`. Raises AstmFormatError when the text is not ASTM at all."""
        text = message.decode(encoding, errors="replace") if isinstance(message, bytes) else message
        lines = [
            line
            for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
            if line.strip()
        ]
        if not lines:
            raise AstmFormatError("no records")
        header = lines[0].lstrip()
        delimiters = AstmDelimiters.from_header(header)
        if header[1:].startswith(delimiters.field + delimiters.repeat * 2):
            header = "H" + delimiters.field + delimiters.definition + header[6:]
        lines[0] = header
        warnings: list[str] = []
        records: list[AstmRecord] = []
        for number, line in enumerate(lines, start=1):
            fields = line.split(delimiters.field)
            kind = fields[0].strip()
            if len(kind) != 1 or kind.upper() not in RECORD_TYPES:
                warnings.append(f"record {number} has unknown type {kind[:10]!r}")
            fields[0] = kind
            records.append(AstmRecord(fields, delimiters, encoding))
        if records[-1].type != "L":
            warnings.append("message does not end with an L record")
        return cls(records, delimiters, warnings)

    def records_of(self, kind: str) -> list[AstmRecord]:
        return [record for record in self.records if record.type == kind]

    def record(self, kind: str, occurrence: int = 1) -> AstmRecord | None:
        seen = 0
        for record in self.records:
            if record.type == kind:
                seen += 1
                if seen == occurrence:
                    return record
        return None

    def get(self, path: str) -> str:
        """The value at a record path (module docstring); '' when absent."""
        where = RecordPath.parse(path)
        record = self.record(where.record, where.occurrence)
        if record is None:
            return ""
        if where.field is None:
            return record.text()
        return record.value(where.field, where.repeat, where.component)

    def text(self) -> str:
        """The records joined as they go on the wire: each ended by CR."""
        return "".join(record.text() + "\r" for record in self.records)

    def leaves(self) -> Iterator[tuple[str, str]]:
        """(path, value) for every non-empty leaf, numbering only what repeats."""
        totals: dict[str, int] = {}
        for record in self.records:
            totals[record.type] = totals.get(record.type, 0) + 1
        seen: dict[str, int] = {}
        d = self.delimiters
        for record in self.records:
            kind = record.type or "?"
            seen[kind] = seen.get(kind, 0) + 1
            prefix = kind + (f"[{seen[kind]}]" if totals.get(kind, 0) > 1 else "")
            for number in range(2, len(record.fields) + 1):
                text = record.raw(number)
                if not text:
                    continue
                if kind == "H" and number == 2:
                    yield f"{prefix}.2", text
                    continue
                repeats = text.split(d.repeat)
                for repeat_number, repeat in enumerate(repeats, start=1):
                    path = f"{prefix}.{number}" + (f"({repeat_number})" if len(repeats) > 1 else "")
                    components = repeat.split(d.component)
                    for component_number, component in enumerate(components, start=1):
                        if component:
                            leaf = path + (f".{component_number}" if len(components) > 1 else "")
                            yield leaf, d.unescape(component, record.encoding)


FieldValue = str | Sequence[str] | None


def build_record(
    kind: str, values: dict[int, FieldValue], delimiters: AstmDelimiters = STANDARD_DELIMITERS
) -> AstmRecord:
    """A record from field values keyed by E1394 field number (2 and up).

    A str is free text (escaped); a sequence of str is the components of one field, each
    escaped; use `repeat_field()` to join repeats. Fields not given are empty.
    """
    width = max(max(values, default=1), 2 if kind == "H" else 1)
    fields = [kind] + [""] * (width - 1)
    d = delimiters
    for number, value in values.items():
        if number < 2:
            raise ValueError("field 1 is the record type")
        if value is None:
            continue
        if isinstance(value, RawField):
            fields[number - 1] = value.text
        elif isinstance(value, str):
            fields[number - 1] = d.escape_text(value)
        else:
            fields[number - 1] = d.component.join(d.escape_text(part) for part in value)
    if kind == "H":
        fields[1] = d.definition
    return AstmRecord(fields, d)


class RawField(str):
    """Field text already composed with delimiters (not escaped again by build_record)."""

    @property
    def text(self) -> str:
        return str(self)


def repeat_field(items: Sequence[Sequence[str]], delimiters: AstmDelimiters) -> RawField:
    """Several component lists joined as repeats of one field (`^^^A\\^^^B`)."""
    d = delimiters
    return RawField(
        d.repeat.join(d.component.join(d.escape_text(part) for part in item) for item in items)
    )
