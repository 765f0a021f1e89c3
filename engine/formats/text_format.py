"""Plain text, one pair per line, and the decoding shared by the engine's textual formats.

Hospital systems send GB18030/GBK as often as UTF-8 and do not always say so. A textual
format therefore decodes bytes itself: the charset named in the content type when there is
one (the registry passes it to `flatten_text`), else a byte-order mark, else strict UTF-8,
else strict GB18030, else UTF-8 with replacement characters so something is always shown.
"""

from __future__ import annotations

import codecs
from abc import abstractmethod
from collections.abc import Iterable
from typing import ClassVar

from engine.formats.base import PayloadFormat

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def charset_of(content_type: str | None) -> str | None:
    """The `charset` parameter of a content type, lower-cased, or None."""
    if not content_type:
        return None
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').lower()
    return None


def media_type_of(content_type: str | None) -> str:
    """`application/json; charset=utf-8` → `application/json`."""
    return (content_type or "").split(";")[0].strip().lower()


def decode_guessing(body: bytes) -> str:
    """Decode bytes whose charset was not declared (see the module docstring)."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body.decode(encoding, errors="replace")
    for encoding in ("utf-8", "gb18030"):
        try:
            return body.decode(encoding)
        except UnicodeDecodeError:
            continue
    return body.decode("utf-8", errors="replace")


def decode_declared(body: bytes, charset: str) -> str:
    """Decode with a declared charset; an unknown charset name falls back to guessing."""
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return decode_guessing(body)


class TextualFormat(PayloadFormat):
    """A format whose documents are text: parsing works on `str`, so a charset declared
    outside the body (in the content type) can be honoured by decoding first."""

    def decode(self, body: bytes) -> str:
        """Decode a body whose content type declared no charset."""
        return decode_guessing(body)

    @abstractmethod
    def flatten_text(self, text: str) -> Iterable[tuple[str, str]]:
        """`flatten()` on already decoded text."""

    def render_text(self, text: str) -> str:
        return "\n".join(f"{path} = {value}" for path, value in self.flatten_text(text))

    def flatten(self, body: bytes) -> Iterable[tuple[str, str]]:
        return self.flatten_text(self.decode(body))

    def render(self, body: bytes) -> str:
        return self.render_text(self.decode(body))


class TextFormat(TextualFormat):
    """Any text, path `line N` (1-based). Also the fallback for bodies no format parses."""

    name: ClassVar[str] = "text"
    content_types: ClassVar[tuple[str, ...]] = ("text/plain",)

    def flatten_text(self, text: str) -> Iterable[tuple[str, str]]:
        for number, line in enumerate(text.splitlines(), start=1):
            yield f"line {number}", line

    def render_text(self, text: str) -> str:
        return text
