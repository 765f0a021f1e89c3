"""The simulated PACS's SOAP side: read a request envelope, answer a response or a fault."""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from plugins.pacs.simulator.state import Exam, OrderRefused, PacsState
from plugins.pacs.simulator.wsdl import NAMESPACE, OPERATIONS
from plugins.pacs.soap_envelope import CONTENT_TYPE, EnvelopeError, envelope, fault, local_name, request_element


class SoapRequestError(Exception):
    """The request is not a usable envelope: answered as a Client fault."""


def read_request(body: bytes) -> tuple[str, dict[str, Any]]:
    """(operation, fields) of a request envelope; `order` children come as a nested dict."""
    try:
        request = request_element(body)
    except EnvelopeError as exc:
        raise SoapRequestError(str(exc)) from exc
    name = local_name(request.tag).removesuffix("Request")
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
        fields[local_name(child.tag)] = _fields(child) if len(child) else (child.text or "")
    return fields


__all__ = ["CONTENT_TYPE", "SoapRequestError", "answer", "fault", "read_request", "result"]
