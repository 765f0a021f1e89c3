"""Report attachments as they arrive (base64 inside an ORU, a SOAP callback or a REST post),
checked and decoded before the engine stores them once as blobs.

Every report source decodes through `decode_base64`, so a broken encoding or a file over
the configured limit gets the same clear refusal whatever the transport: an `InputError`
naming where the attachment was, blamed on the sender (`party`).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from engine.errors import InputError
from engine.store.blobs import blob_ref

_WHITESPACE = b" \t\r\n\v\f"
_SUBTYPE = re.compile(r"^[a-z0-9.+-]{1,40}$")


class AttachmentTooLarge(InputError):
    """An attachment over the configured size limit (answered 413 over HTTP)."""


@dataclass(frozen=True)
class InlineAttachment:
    """An attachment's bytes, before they are stored; `reference()` is what replaces them."""

    data: bytes
    content_type: str
    title: str = ""

    @property
    def ref(self) -> str:
        return blob_ref(self.data)

    def reference(self) -> dict[str, Any]:
        """The report model's `Attachment` (engine/plugins.pacs.model) for these bytes."""
        return {"ref": self.ref, "content_type": self.content_type, "size": len(self.data), "title": self.title}


def decode_base64(text: str | bytes, *, where: str, max_bytes: int, party: str) -> bytes:
    """The bytes of a base64 attachment; line breaks inside are allowed, nothing else is."""
    raw = text.encode("ascii", "replace") if isinstance(text, str) else text
    compact = raw.translate(None, _WHITESPACE)  # ~100x faster than a regex on megabytes
    if not compact:
        raise InputError("attachment is empty (no base64 data)", field=where, party=party)
    if len(compact) // 4 * 3 > max_bytes + 2:
        raise AttachmentTooLarge(
            f"attachment of about {len(compact) // 4 * 3} bytes is over the limit of {max_bytes} bytes",
            field=where, party=party,
        )
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"broken base64: {exc}", field=where, party=party) from exc
    if len(data) > max_bytes:
        raise AttachmentTooLarge(
            f"attachment of {len(data)} bytes is over the limit of {max_bytes} bytes", field=where, party=party
        )
    return data


def content_type_of(kind: str, subtype: str, *, where: str, party: str) -> str:
    """`application/pdf` or `image/<subtype>` from an HL7 ED's type and subtype (or a MIME
    type's two halves); anything else is refused."""
    kind, subtype = kind.strip().lower(), subtype.strip().lower()
    if kind in ("application", "ap") and subtype == "pdf":
        return "application/pdf"
    if kind in ("image", "im") and _SUBTYPE.match(subtype):
        return f"image/{subtype}"
    raise InputError(
        f"unsupported attachment type {kind or '?'}/{subtype or '?'} (a PDF or an image is expected)",
        field=where, party=party,
    )


def mime_type(content_type: str, *, where: str, party: str) -> str:
    kind, _, subtype = content_type.partition("/")
    return content_type_of(kind, subtype.split(";")[0], where=where, party=party)


__all__ = ["AttachmentTooLarge", "InlineAttachment", "content_type_of", "decode_base64", "mime_type"]
