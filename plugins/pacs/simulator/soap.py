"""The simulated PACS's SOAP side: read a request envelope, answer a response or a fault."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from plugins.pacs.simulator.state import Exam, OrderRefused, PacsState
from plugins.pacs.simulator.wsdl import NAMESPACE, OPERATIONS

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
CONTENT_TYPE = "text/xml; charset=utf-8"


class SoapRequestError(Exception):
    """The request is not a usable envelope: answered as a Client fault."""


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap="{SOAP_ENV}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def fault(code: str, text: str) -> bytes:
    return envelope(
        f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{escape(text)}</faultstring></soap:Fault>"
    )


def read_request(body: bytes) -> tuple[str, dict[str, Any]]:
    """(operation, fields) of a request envelope; `order` children come as a nested dict."""
    try:
        root = SafeET.fromstring(body)
    except (ParseError, DefusedXmlException) as exc:
        raise SoapRequestError(f"request is not well-formed XML: {exc}") from exc
    content = root.find(f"{{{SOAP_ENV}}}Body")
    request = next(iter(content), None) if content is not None else None
    if request is None:
        raise SoapRequestError("no SOAP Body content")
    name = _local(request.tag).removesuffix("Request")
    if name not in OPERATIONS:
        raise SoapRequestError(f"unknown operation {name}")
    return name, _fields(request)


def answer(state: PacsState, operation: str, fields: dict[str, Any]) -> tuple[int, bytes, str]:
    """(HTTP status, body, outcome) for a parsed request."""
    try:
        exam = _apply(state, operation, fields)
    except OrderRefused as refused:
        if refused.status == 404:  # the vendor style: an unknown exam is a fault, not a result
            return 500, fault("Client", refused.message), "fault"
        return 200, result(operation, refused.code, refused.message), "rejected"
    return 200, result(operation, 0, "OK", exam), "accepted"


def result(operation: str, code: int, message: str, exam: Exam | None = None) -> bytes:
    extra = ""
    if exam is not None:
        extra = (
            f"<accessionNumber>{escape(exam.accession_number)}</accessionNumber>"
            f"<studyInstanceUid>{exam.study_instance_uid}</studyInstanceUid>"
        )
    return envelope(
        f'<{operation}Response xmlns="{NAMESPACE}"><result><resultCode>{code}</resultCode>'
        f"<resultMessage>{escape(message)}</resultMessage>{extra}</result></{operation}Response>"
    )


def _apply(state: PacsState, operation: str, fields: dict[str, Any]) -> Exam:
    if operation == "CancelExamOrder":
        return state.cancel(str(fields.get("accessionNumber") or ""))
    order = fields.get("order")
    if not isinstance(order, dict):
        raise OrderRefused(3, "order is required", status=422)
    accession = str(order.get("accessionNumber") or "")
    if operation == "PlaceExamOrder":
        return state.place(accession, order)
    return state.change(accession, order)


def _fields(element: Element) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for child in element:
        fields[_local(child.tag)] = _fields(child) if len(child) else (child.text or "")
    return fields


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
