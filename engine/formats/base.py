"""The payload-format contract used by `hisbridge show` and `hisbridge diff`.

A format knows one content type well enough to flatten it into (path, value) pairs: JSON by
JSON path (`$.input.data.psn_no`), XML by element path, HL7 by field path (`PID-5.1`), ASTM
by record and field. Diffs are computed on those pairs, so they are format-aware for free.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Iterable


class PayloadFormat(ABC):
    """One content type. `name` is how users pick it (`--format hl7`); `content_types` the
    MIME types it claims; `sniff()` recognises bodies whose type was not recorded."""

    name: ClassVar[str]
    content_types: ClassVar[tuple[str, ...]] = ()

    def sniff(self, body: bytes) -> bool:
        """True when `body` looks like this format. Used only when the content type is unknown."""
        return False

    @abstractmethod
    def flatten(self, body: bytes) -> Iterable[tuple[str, str]]:
        """Yield (path, value) for every leaf, in document order.

        Raise ValueError when the body is not valid in this format; the caller then falls
        back to the text format, so a malformed payload is still shown, line by line.
        """

    def render(self, body: bytes) -> str:
        """A readable rendering for `hisbridge show` (pretty JSON, indented XML, one HL7
        segment per line). Defaults to the flattened pairs."""
        return "\n".join(f"{path} = {value}" for path, value in self.flatten(body))
