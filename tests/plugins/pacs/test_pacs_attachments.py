"""Attachments as they arrive: base64 checked and decoded once, whatever the transport."""

from __future__ import annotations

import base64

import pytest

from engine.errors import InputError
from plugins.pacs.attachments import AttachmentTooLarge, InlineAttachment, decode_base64, mime_type

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(200))


def test_line_breaks_inside_base64_are_allowed() -> None:
    wrapped = base64.encodebytes(PNG)  # MIME style: a line break every 76 characters
    assert b"\n" in wrapped.strip()
    assert decode_base64(wrapped, where="x", max_bytes=1024, party="third_party") == PNG


@pytest.mark.parametrize(("limit", "refused"), [(len(PNG), False), (len(PNG) - 1, True)])
def test_the_limit_is_on_the_decoded_bytes(limit: int, refused: bool) -> None:
    encoded = base64.b64encode(PNG).decode()
    if refused:
        with pytest.raises(AttachmentTooLarge, match=f"over the limit of {limit} bytes"):
            decode_base64(encoded, where="x", max_bytes=limit, party="device")
    else:
        assert decode_base64(encoded, where="x", max_bytes=limit, party="device") == PNG


def test_a_reference_is_the_blob_the_store_will_hold() -> None:
    attachment = InlineAttachment(PNG, "image/png", "关键图像")
    assert attachment.reference() == {"ref": attachment.ref, "content_type": "image/png", "size": len(PNG),
                                      "title": "关键图像"}
    assert attachment.ref.startswith("blob:sha256:")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("application/pdf", "application/pdf"), ("IMAGE/JPEG", "image/jpeg"), ("image/png; name=a.png", "image/png")],
)
def test_pdfs_and_images_are_taken(given: str, expected: str) -> None:
    assert mime_type(given, where="x", party="third_party") == expected


@pytest.mark.parametrize("given", ["text/html", "application/zip", "", "image/"])
def test_other_types_are_refused(given: str) -> None:
    with pytest.raises(InputError, match="unsupported attachment type") as raised:
        mime_type(given, where="attachments[0].content_type", party="third_party")
    assert (raised.value.field, raised.value.party) == ("attachments[0].content_type", "third_party")
