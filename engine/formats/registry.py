"""Which format reads a payload, and flattening/rendering that never fails.

A payload's format is chosen by its content type (exact media type, then a structured
suffix such as `+json`/`+xml`), else by sniffing the body, else text. A body that is not
valid in its format is flattened and rendered as text instead, so a malformed payload is
still shown line by line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from engine.formats.base import PayloadFormat
from engine.formats.text_format import (
    TextFormat,
    TextualFormat,
    charset_of,
    decode_declared,
    media_type_of,
)
from engine.message import Payload

log = structlog.get_logger(__name__)

_SUFFIX_TYPES = {"+json": "application/json", "+xml": "application/xml"}


@dataclass(frozen=True)
class Flattened:
    """The pairs of one payload and the format that produced them (text after a fallback)."""

    format: PayloadFormat
    pairs: list[tuple[str, str]]
    fell_back: bool = False


class FormatRegistry:
    def __init__(self, formats: Mapping[str, PayloadFormat]) -> None:
        self._formats = dict(formats)
        self._text = self._formats.setdefault("text", TextFormat())
        self._by_type = {
            content_type: fmt
            for fmt in self._formats.values()
            for content_type in fmt.content_types
        }

    @property
    def names(self) -> list[str]:
        return sorted(self._formats)

    def get(self, name: str) -> PayloadFormat:
        try:
            return self._formats[name]
        except KeyError:
            raise KeyError(f"unknown format {name!r}; known: {', '.join(self.names)}") from None

    def for_payload(self, payload: Payload) -> PayloadFormat:
        media_type = media_type_of(payload.content_type)
        if media_type in self._by_type:
            return self._by_type[media_type]
        for suffix, base_type in _SUFFIX_TYPES.items():
            if media_type.endswith(suffix) and base_type in self._by_type:
                return self._by_type[base_type]
        for fmt in self._formats.values():
            if fmt is not self._text and fmt.sniff(payload.body):
                return fmt
        return self._text

    def flatten(self, payload: Payload, *, format: str | None = None) -> Flattened:
        """Pairs of `payload` in its format (or the named one), falling back to text."""
        fmt = self.get(format) if format else self.for_payload(payload)
        try:
            return Flattened(fmt, list(flatten_with(fmt, payload)))
        except ValueError as exc:
            log.debug("payload_not_in_format", format=fmt.name, error=str(exc))
            return Flattened(self._text, list(flatten_with(self._text, payload)), fell_back=True)

    def render(self, payload: Payload, *, format: str | None = None) -> tuple[PayloadFormat, str]:
        """A readable rendering, falling back to the text itself when the body is malformed."""
        fmt = self.get(format) if format else self.for_payload(payload)
        try:
            return fmt, render_with(fmt, payload)
        except ValueError as exc:
            log.debug("payload_not_in_format", format=fmt.name, error=str(exc))
            return self._text, render_with(self._text, payload)


def decoded_text(fmt: TextualFormat, payload: Payload) -> str:
    """The payload as text: the content type's charset when declared, else the format's own
    decoding (declaration, byte-order mark, UTF-8, GB18030)."""
    charset = charset_of(payload.content_type)
    return decode_declared(payload.body, charset) if charset else fmt.decode(payload.body)


def flatten_with(fmt: PayloadFormat, payload: Payload) -> Iterable[tuple[str, str]]:
    """Textual formats get text decoded with the content type's charset; other formats get
    the bytes unchanged and decode them by their own rules (HL7 reads MSH-18), which
    re-encoded bytes would contradict."""
    if isinstance(fmt, TextualFormat):
        return fmt.flatten_text(decoded_text(fmt, payload))
    return fmt.flatten(payload.body)


def render_with(fmt: PayloadFormat, payload: Payload) -> str:
    if isinstance(fmt, TextualFormat):
        return fmt.render_text(decoded_text(fmt, payload))
    return fmt.render(payload.body)
