"""The engine's SOAP report service for PACS callbacks: its WSDL, and the request mapped to the
report model (SOAP 1.1, document/literal, zeep-compatible).

One operation, `SubmitExamReport(report)`, answered by `SubmitExamReportResponse(result)`
with `resultCode` 0 and the engine's message id, in the style of the order service the PACS
already implements (plugins/pacs/simulator/wsdl.py). Attachments travel as `attachment`
elements (`contentType`, `title`, `data` as xsd:base64Binary). A request the engine cannot
take is answered with a SOAP fault (`soap:Client`) whose `detail` names the field.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from engine.errors import InputError
from plugins.pacs.attachments import InlineAttachment, decode_base64, mime_type
from plugins.pacs.soap_envelope import CONTENT_TYPE, EnvelopeError, envelope, local_name, request_element
from plugins.pacs.soap_envelope import fault as soap_fault

NAMESPACE = "urn:hisbridge:pacs:exam-report:1"
OPERATION = "SubmitExamReport"

REPORT_FIELDS: tuple[tuple[str, str, bool], ...] = (
    # (element, xsd type, required); attachments follow as `attachment` elements
    ("accessionNumber", "xsd:string", True),
    ("requestedProcedureId", "xsd:string", False),
    ("studyInstanceUid", "xsd:string", False),
    ("patientId", "xsd:string", True),
    ("patientName", "xsd:string", True),
    ("patientSex", "xsd:string", False),
    ("procedureCode", "xsd:string", False),
    ("procedureName", "xsd:string", False),
    ("modality", "xsd:string", False),
    ("status", "xsd:string", False),
    ("findings", "xsd:string", False),
    ("impression", "xsd:string", False),
    ("recommendation", "xsd:string", False),
    ("authorId", "xsd:string", True),
    ("authorName", "xsd:string", False),
    ("verifierId", "xsd:string", False),
    ("verifierName", "xsd:string", False),
    ("verifiedAt", "xsd:dateTime", False),
    ("performedById", "xsd:string", False),
    ("performedByName", "xsd:string", False),
)


def service_wsdl(address: str) -> str:
    """The WSDL, with its soap:address pointing at `address`."""
    optional = ' minOccurs="0"'
    fields = "\n".join(
        f'          <xsd:element name="{name}" type="{kind}"{"" if required else optional}/>'
        for name, kind, required in REPORT_FIELDS
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="{NAMESPACE}"
    targetNamespace="{NAMESPACE}" name="ExamReportService">
  <wsdl:types>
    <xsd:schema targetNamespace="{NAMESPACE}" elementFormDefault="qualified">
      <xsd:complexType name="AttachmentType">
        <xsd:sequence>
          <xsd:element name="contentType" type="xsd:string"/>
          <xsd:element name="title" type="xsd:string" minOccurs="0"/>
          <xsd:element name="data" type="xsd:base64Binary"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="ExamReportType">
        <xsd:sequence>
{fields}
          <xsd:element name="attachment" type="tns:AttachmentType" minOccurs="0" maxOccurs="unbounded"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:complexType name="ReportResultType">
        <xsd:sequence>
          <xsd:element name="resultCode" type="xsd:int"/>
          <xsd:element name="resultMessage" type="xsd:string"/>
          <xsd:element name="messageId" type="xsd:string" minOccurs="0"/>
        </xsd:sequence>
      </xsd:complexType>
      <xsd:element name="{OPERATION}Request"><xsd:complexType><xsd:sequence>
        <xsd:element name="report" type="tns:ExamReportType"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="{OPERATION}Response"><xsd:complexType><xsd:sequence>
        <xsd:element name="result" type="tns:ReportResultType"/></xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="{OPERATION}In"><wsdl:part name="parameters" element="tns:{OPERATION}Request"/></wsdl:message>
  <wsdl:message name="{OPERATION}Out"><wsdl:part name="parameters" element="tns:{OPERATION}Response"/></wsdl:message>
  <wsdl:portType name="ExamReportPort">
    <wsdl:operation name="{OPERATION}"><wsdl:input message="tns:{OPERATION}In"/>\
<wsdl:output message="tns:{OPERATION}Out"/></wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="ExamReportBinding" type="tns:ExamReportPort">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="{OPERATION}">
      <soap:operation soapAction="{NAMESPACE}#{OPERATION}"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="ExamReportService">
    <wsdl:port name="ExamReportPort" binding="tns:ExamReportBinding"><soap:address location="{address}"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
"""


def read_report(body: bytes, *, max_attachment_bytes: int, party: str) -> tuple[dict[str, Any], list[InlineAttachment]]:
    """The report of a `SubmitExamReport` envelope as report-model JSON (attachments as
    references), and the attachments' bytes to store; `InputError` for what cannot be used."""
    try:
        request = request_element(body)
    except EnvelopeError as exc:
        raise InputError(str(exc), field="Envelope", party=party) from exc
    if local_name(request.tag) != f"{OPERATION}Request":
        raise InputError(f"expected {OPERATION}Request in the SOAP Body, got {local_name(request.tag)}",
                         field="Body", party=party)
    report = request.find(f"{{{NAMESPACE}}}report")
    if report is None:
        raise InputError("report is required", field="report", party=party)
    fields = {
        local_name(child.tag): (child.text or "").strip() for child in report if local_name(child.tag) != "attachment"
    }
    attachments = [
        _attachment(element, f"report.attachment[{index}]", max_attachment_bytes, party)
        for index, element in enumerate(report.findall(f"{{{NAMESPACE}}}attachment"), start=1)
    ]
    return _report_json(fields, attachments), attachments


def _attachment(element: Element, where: str, max_bytes: int, party: str) -> InlineAttachment:
    def text(name: str) -> str:
        child = element.find(f"{{{NAMESPACE}}}{name}")
        return (child.text or "").strip() if child is not None else ""

    content_type = mime_type(text("contentType"), where=f"{where}.contentType", party=party)
    data = decode_base64(text("data"), where=f"{where}.data", max_bytes=max_bytes, party=party)
    return InlineAttachment(data, content_type, text("title"))


def _report_json(fields: dict[str, str], attachments: list[InlineAttachment]) -> dict[str, Any]:
    def person(prefix: str) -> dict[str, str] | None:
        person_id = fields.get(f"{prefix}Id")
        return {"id": person_id, "name": fields.get(f"{prefix}Name", "")} if person_id else None

    report: dict[str, Any] = {
        "accession_number": fields.get("accessionNumber", ""),
        "requested_procedure_id": fields.get("requestedProcedureId") or None,
        "study_instance_uid": fields.get("studyInstanceUid") or None,
        "patient": {"id": fields.get("patientId", ""), "name": fields.get("patientName", ""),
                    "sex": fields.get("patientSex") or "U"},
        "modality": fields.get("modality") or None,
        "status": fields.get("status") or "final",
        "findings": fields.get("findings", ""),
        "impression": fields.get("impression", ""),
        "recommendation": fields.get("recommendation", ""),
        "author": person("author") or {"id": "", "name": ""},
        "verifier": person("verifier"),
        "verified_at": fields.get("verifiedAt") or None,
        "performed_by": person("performedBy"),
        "attachments": [attachment.reference() for attachment in attachments],
    }
    if fields.get("procedureCode"):
        code = fields["procedureCode"]
        report["procedure"] = {"code": code, "name": fields.get("procedureName") or code}
    return {name: value for name, value in report.items() if value is not None}


def accepted(message_id: str) -> bytes:
    return envelope(
        f'<{OPERATION}Response xmlns="{NAMESPACE}"><result><resultCode>0</resultCode>'
        f"<resultMessage>OK</resultMessage><messageId>{escape(message_id)}</messageId></result>"
        f"</{OPERATION}Response>"
    )


def fault(code: str, text: str, *, field: str | None = None, message_id: str | None = None) -> bytes:
    """A fault naming, in its detail, the field at fault and the message the refusal is stored as."""
    detail = "".join(
        f"<{name}>{escape(value)}</{name}>" for name, value in (("field", field), ("messageId", message_id)) if value
    )
    return soap_fault(code, text, detail=f'<reportError xmlns="{NAMESPACE}">{detail}</reportError>' if detail else "")


__all__ = ["CONTENT_TYPE", "NAMESPACE", "OPERATION", "accepted", "fault", "read_report", "service_wsdl"]
