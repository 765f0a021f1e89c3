"""What every HL7 v2 message says about itself: separators, MSH fields and character set.

The MLLP listener needs only this much to store, route and acknowledge a message, so it
lives beside the framing (the full tolerant reader is in plugins/lis_device/hl7/reader.py,
which builds on these pieces).

Character set: MSH-18 is read from the raw bytes before anything is decoded (the MSH fields
that locate it are ASCII in every encoding HL7 allows over MLLP). MSH-18 is optional and
often wrong in the field, so `decode_message()` falls back in a fixed order and says why
in `warnings`: declared codec, then the per-device default, then UTF-8, then GB18030, and
finally latin-1 (which cannot fail, so no byte is ever lost).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.errors import InputError

_SINGLE_BYTE_CODECS = ("ascii", "latin-1")

# Table 0211 names plus values seen on real devices (UTF8, UNICODE, GBK), upper-cased.
_CHARSET_CODECS: dict[str, str] = {
    "ASCII": "ascii",
    "UNICODE": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE UTF-16": "utf-16",
    "UNICODE UTF-32": "utf-32",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gb18030",
    "GB2312": "gb18030",
    "BIG-5": "big5",
    "BIG5": "big5",
    "KS X 1001": "euc_kr",
    "CNS 11643-1992": "big5",
    "ISO IR87": "iso2022_jp",
    "ISO IR159": "iso2022_jp_2",
    "ISO IR14": "shift_jis",
    "8859/1": "latin-1",
    "8859/15": "iso8859-15",
    **{f"8859/{n}": f"iso8859-{n}" for n in range(2, 10)},
}


class Hl7HeaderError(InputError):
    """The bytes do not start with a usable MSH segment."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, field="MSH", party="device")


@dataclass(frozen=True, slots=True)
class Separators:
    """The five HL7 delimiters of one message (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    @classmethod
    def from_msh(cls, field_separator: str, encoding_characters: str) -> Separators:
        """Missing encoding characters take their standard values."""
        standard = "^~\\&"
        chars = (encoding_characters + standard[len(encoding_characters) :])[:4]
        return cls(field_separator, chars[0], chars[1], chars[2], chars[3])

    @property
    def encoding_characters(self) -> str:
        """MSH-2 as it is written: component, repetition, escape, subcomponent."""
        return self.component + self.repetition + self.escape + self.subcomponent

    def escape_text(self, text: str) -> str:
        """Escape delimiters in free text so it can be placed in one (sub)component."""
        if not any(char in text for char in self._delimiters()):
            return text
        esc = self.escape
        table = {
            self.escape: f"{esc}E{esc}",
            self.field: f"{esc}F{esc}",
            self.component: f"{esc}S{esc}",
            self.subcomponent: f"{esc}T{esc}",
            self.repetition: f"{esc}R{esc}",
        }
        return "".join(table.get(char, char) for char in text)

    def unescape(self, text: str, codec: str = "latin-1") -> str:
        """Resolve \\F\\ \\S\\ \\T\\ \\R\\ \\E\\ and \\Xhh..\\; leave other sequences as sent."""
        esc = self.escape
        if esc not in text:
            return text
        named = {
            "F": self.field,
            "S": self.component,
            "T": self.subcomponent,
            "R": self.repetition,
            "E": esc,
        }
        out: list[str] = []
        position = 0
        while True:
            start = text.find(esc, position)
            end = text.find(esc, start + 1) if start >= 0 else -1
            if start < 0 or end < 0:
                out.append(text[position:])
                return "".join(out)
            out.append(text[position:start])
            code = text[start + 1 : end]
            out.append(self._resolve(code, named, codec) or text[start : end + 1])
            position = end + 1

    @staticmethod
    def _resolve(code: str, named: dict[str, str], codec: str) -> str | None:
        if code in named:
            return named[code]
        if code[:1] == "X" and len(code) > 1 and len(code) % 2 == 1:
            try:
                return bytes.fromhex(code[1:]).decode(codec)
            except (ValueError, LookupError):
                return None
        return None

    def _delimiters(self) -> str:
        return self.field + self.encoding_characters


def codec_for_charset(declared: str) -> str | None:
    """The Python codec for an MSH-18 value, or None when the name is unknown or empty."""
    return _CHARSET_CODECS.get(" ".join(declared.upper().split()))


def _header_line(raw: bytes) -> bytes:
    start = raw.find(b"MSH")
    if start < 0:
        return b""
    line_end = len(raw)
    for terminator in (b"\r", b"\n"):
        found = raw.find(terminator, start)
        if 0 <= found < line_end:
            line_end = found
    return raw[start:line_end]


def sniff_declared_charset(raw: bytes) -> str:
    """MSH-18 (its first repetition) read from the undecoded bytes; '' when absent."""
    line = _header_line(raw)
    if len(line) < 8:
        return ""
    parts = line.split(line[3:4])
    if len(parts) < 18:
        return ""
    repetition = line[5:6] or b"~"
    return parts[17].split(repetition)[0].decode("latin-1").strip()


@dataclass(frozen=True, slots=True)
class DecodedMessage:
    """Message text plus how it was decoded: `codec` is what a reply must be encoded with."""

    text: str
    codec: str
    declared_charset: str
    warnings: tuple[str, ...] = ()


def _is_multibyte_utf8(raw: bytes) -> bool:
    if raw.isascii():
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def decode_message(raw: bytes, default_charset: str = "utf-8") -> DecodedMessage:
    """Decode raw message bytes using MSH-18, else `default_charset` (a Python codec name
    or an MSH-18 style name). Never raises for bad bytes: see the module docstring."""
    declared = sniff_declared_charset(raw)
    warnings: list[str] = []
    default_codec = codec_for_charset(default_charset) or default_charset
    declared_codec = codec_for_charset(declared) if declared else None
    if declared and declared_codec is None:
        warnings.append(f"MSH-18 {declared!r} is not a known character set")
    candidates: list[str] = []
    if declared_codec in _SINGLE_BYTE_CODECS and _is_multibyte_utf8(raw):
        warnings.append(f"MSH-18 says {declared!r} but the bytes are UTF-8")
        candidates.append("utf-8")
    for codec in (declared_codec, default_codec, "utf-8", "gb18030"):
        if codec and codec not in candidates:
            candidates.append(codec)
    for codec in candidates:
        try:
            text = raw.decode(codec)
        except (UnicodeDecodeError, LookupError):
            if codec in (declared_codec, default_codec):
                warnings.append(f"bytes are not valid {codec}")
            continue
        if _header_line(raw).isascii():
            return DecodedMessage(text, codec, declared, tuple(warnings))
        recheck = _declared_in_text(text)
        recheck_codec = codec_for_charset(recheck)
        if recheck_codec is not None and recheck != declared and recheck_codec != codec:
            # A GBK trail byte equal to a separator (0x7C, 0x5E, 0x5C, 0x7E) in MSH-3..17
            # shifts the byte-level field count; MSH-18 read from decoded text is better.
            try:
                return DecodedMessage(
                    raw.decode(recheck_codec), recheck_codec, recheck, tuple(warnings)
                )
            except UnicodeDecodeError:
                warnings.append(f"bytes are not valid {recheck_codec} (MSH-18 {recheck!r})")
        return DecodedMessage(text, codec, recheck or declared, tuple(warnings))
    warnings.append("decoded as latin-1 so no byte is lost")
    return DecodedMessage(raw.decode("latin-1"), "latin-1", declared, tuple(warnings))


def _declared_in_text(text: str) -> str:
    try:
        return MshHeader.parse(text).declared_charset
    except Hl7HeaderError:
        return ""


@dataclass(frozen=True, slots=True)
class MshHeader:
    """The MSH segment, numbered as HL7 numbers it: `field(1)` is the field separator."""

    separators: Separators
    fields: tuple[str, ...] = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> MshHeader:
        """Read the MSH segment at the start of `text` (leading whitespace and framing ignored)."""
        start = text.find("MSH")
        if start < 0 or text[:start].strip("\r\n\t \x0b\ufeff"):
            raise Hl7HeaderError("message does not start with an MSH segment")
        end = len(text)
        for terminator in ("\r", "\n"):
            found = text.find(terminator, start)
            if 0 <= found < end:
                end = found
        line = text[start:end]
        if len(line) < 5:
            raise Hl7HeaderError("MSH segment too short to hold its separators")
        field_separator = line[3]
        if field_separator.isalnum():
            raise Hl7HeaderError(f"MSH-1 field separator {field_separator!r} is not usable")
        parts = line.split(field_separator)
        separators = Separators.from_msh(field_separator, parts[1])
        return cls(separators, ("MSH", field_separator, *parts[1:]))

    def field(self, number: int) -> str:
        """MSH-n as sent (escapes not resolved); '' when absent."""
        return self.fields[number] if number < len(self.fields) else ""

    def component(self, number: int, component: int) -> str:
        """MSH-n.c of the first repetition; '' when absent."""
        value = self.field(number).split(self.separators.repetition)[0]
        parts = value.split(self.separators.component)
        return parts[component - 1] if component <= len(parts) else ""

    @property
    def message_code(self) -> str:
        return self.component(9, 1).strip()

    @property
    def trigger_event(self) -> str:
        return self.component(9, 2).strip()

    @property
    def message_structure(self) -> str:
        return self.component(9, 3).strip()

    @property
    def control_id(self) -> str:
        return self.field(10)

    @property
    def processing_id(self) -> str:
        return self.component(11, 1).strip()

    @property
    def version(self) -> str:
        return self.component(12, 1).strip()

    @property
    def accept_ack_type(self) -> str:
        return self.field(15).strip().upper()

    @property
    def application_ack_type(self) -> str:
        return self.field(16).strip().upper()

    @property
    def declared_charset(self) -> str:
        return self.field(18).split(self.separators.repetition)[0].strip()
