"""SOAP 1.1 envelopes as the pacs plugin's services write and read them (the engine's report
service and the simulated PACS's order service): build a body or a fault, find the request."""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CONTENT_TYPE = "text/xml; charset=utf-8"


class EnvelopeError(ValueError):
    """Not a usable request envelope (not XML, a DTD or entities, no Body content)."""


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="{SOAP_ENV}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def fault(code: str, text: str, *, detail: str = "") -> bytes:
    """A `soap:Client` / `soap:Server` fault; `detail` is XML put inside `<detail>`."""
    return envelope(
        f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{escape(text)}</faultstring>"
        + (f"<detail>{detail}</detail>" if detail else "")
        + "</soap:Fault>"
    )


def request_element(body: bytes) -> Element:
    """The first element inside the Body of a request envelope (DTDs and entities refused)."""
    try:
        root = SafeET.fromstring(body)
    except (ParseError, DefusedXmlException) as exc:
        raise EnvelopeError(f"request is not well-formed XML: {exc}") from exc
    content = root.find(f"{{{SOAP_ENV}}}Body")
    request = next(iter(content), None) if content is not None else None
    if request is None:
        raise EnvelopeError("no SOAP Body content")
    return request


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


__all__ = ["CONTENT_TYPE", "SOAP_ENV", "EnvelopeError", "envelope", "fault", "local_name", "request_element"]
