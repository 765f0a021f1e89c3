"""The simulated PACS's way back: a report for a scheduled exam, sent to the engine in one of the
three styles its report sources take, and a modality asking the engine's worklist.

- `hl7`: ORU^R01 over MLLP to a `pacs_oru` source (the PDF as OBX ED Base64);
- `soap`: `SubmitExamReport` through the engine's own WSDL (zeep, via the engine's SOAP
  transport) to a `pacs_report_http` source;
- `rest`: the report model as JSON with base64 attachments, POSTed to the same source.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from engine.adapters.base import Wire
from engine.errors import AdapterError
from engine.transports.http import HttpClients
from engine.transports.soap import SoapCaller, WsdlCache
from plugins.pacs.simulator.mllp import build_oru, send_report
from plugins.pacs.simulator.state import Exam

ReportStyle = Literal["hl7", "soap", "rest"]
REPORT_STYLES: tuple[str, ...] = ("hl7", "soap", "rest")
AUTHOR = ("R01", "测试报告医生")
SAMPLE_PDF = (
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n% synthetic report: head CT, no abnormality\n"
    b"trailer << /Root 1 0 R >>\n%%EOF\n"
)
"""A small synthetic PDF for simulated reports (no real patient, no real content)."""


@dataclass(frozen=True)
class SentReport:
    style: str
    accepted: bool
    answer: str
    """The engine's words: the MSA line, the SOAP result or fault, the REST body."""


@dataclass(frozen=True)
class ReportWriting:
    findings: str
    impression: str
    pdf: bytes | None = None


def exam_patient(exam: Exam) -> tuple[str, str]:
    """(patient id, name) of an exam, whichever order style scheduled it."""
    order = exam.order
    patient = order.get("patient")
    if isinstance(patient, dict):
        return str(patient.get("id") or ""), str(patient.get("name") or "")
    return str(order.get("patientId") or ""), str(order.get("patientName") or "")


class ReportSender:
    """Sends reports to the engine: `mllp` is (host, port) of a `pacs_oru` source, `http_url`
    the base URL of a `pacs_report_http` source."""

    def __init__(self, *, mllp: tuple[str, int] | None = None, http_url: str | None = None, timeout: float = 10.0):
        self.mllp = mllp
        self.http_url = http_url.rstrip("/") if http_url else None
        self.timeout = timeout
        self._clients = HttpClients()

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def send(self, exam: Exam, writing: ReportWriting, *, style: ReportStyle) -> SentReport:
        if style == "hl7":
            return await self._hl7(exam, writing)
        if style == "soap":
            return await self._soap(exam, writing)
        return await self._rest(exam, writing)

    async def _hl7(self, exam: Exam, writing: ReportWriting) -> SentReport:
        if self.mllp is None:
            raise ValueError("no MLLP address to send ORU^R01 reports to")
        patient_id, patient_name = exam_patient(exam)
        shaped = Exam(exam.accession_number, exam.status, {"patientId": patient_id, "patientName": patient_name},
                      exam.study_instance_uid)
        message = build_oru(shaped, findings=writing.findings, impression=writing.impression, author=AUTHOR,
                            pdf=writing.pdf)
        ack = await send_report(*self.mllp, message, timeout=self.timeout)
        msa = next((line for line in ack.decode("utf-8", "replace").split("\r") if line.startswith("MSA")), "")
        return SentReport("hl7", msa.split("|")[1:2] in (["AA"], ["CA"]), msa)

    async def _soap(self, exam: Exam, writing: ReportWriting) -> SentReport:
        caller = SoapCaller(f"{self._http()}/ExamReportService?wsdl", self._clients, timeout=self.timeout,
                            cache=WsdlCache())
        patient_id, patient_name = exam_patient(exam)
        report: dict[str, Any] = {
            "accessionNumber": exam.accession_number, "studyInstanceUid": exam.study_instance_uid,
            "patientId": patient_id, "patientName": patient_name, "status": "final",
            "findings": writing.findings, "impression": writing.impression,
            "authorId": AUTHOR[0], "authorName": AUTHOR[1], "verifiedAt": datetime.now().replace(microsecond=0),
            "attachment": [{"contentType": "application/pdf", "title": "诊断报告", "data": writing.pdf}]
            if writing.pdf else [],
        }
        try:
            result = await caller.call("SubmitExamReport", Wire(), report=report)
        except AdapterError as exc:
            return SentReport("soap", False, str(exc.detail.get("faultstring") or exc))
        return SentReport("soap", result.get("resultCode") == 0, f"resultCode {result.get('resultCode')}: "
                          f"{result.get('resultMessage')} (message {result.get('messageId')})")

    async def _rest(self, exam: Exam, writing: ReportWriting) -> SentReport:
        patient_id, patient_name = exam_patient(exam)
        report = {
            "accession_number": exam.accession_number, "study_instance_uid": exam.study_instance_uid,
            "patient": {"id": patient_id, "name": patient_name},
            "findings": writing.findings, "impression": writing.impression,
            "author": {"id": AUTHOR[0], "name": AUTHOR[1]},
            "verified_at": datetime.now().replace(microsecond=0).isoformat(),
            "attachments": [{"content_type": "application/pdf", "title": "诊断报告",
                             "data": base64.b64encode(writing.pdf).decode()}] if writing.pdf else [],
        }
        client = self._clients.http_client(timeout=self.timeout)
        try:
            response = await client.post(f"{self._http()}/reports", json=report)
        except httpx.HTTPError as exc:
            return SentReport("rest", False, f"{type(exc).__name__}: {exc}")
        return SentReport("rest", response.status_code == 202, f"HTTP {response.status_code} {response.text[:300]}")

    def _http(self) -> str:
        if self.http_url is None:
            raise ValueError("no report service URL to send SOAP or REST reports to")
        return self.http_url


def query_worklist(host: str, port: int, *, accession: str = "", modality: str = "", station_ae: str = "MODALITY",
                   called_ae: str = "HISBRIDGE_MWL", timeout: float = 10.0) -> list[Dataset]:
    """A modality's C-FIND on the Modality Worklist (blocking: run it in a thread)."""
    identifier = Dataset()
    identifier.PatientName = ""
    identifier.PatientID = ""
    identifier.AccessionNumber = accession
    identifier.RequestedProcedureDescription = ""
    identifier.StudyInstanceUID = ""
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = ""
    step.ScheduledProcedureStepStartDate = ""
    step.ScheduledProcedureStepDescription = ""
    step.ScheduledProcedureStepID = ""
    identifier.ScheduledProcedureStepSequence = [step]
    ae = AE(ae_title=station_ae)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.add_requested_context(ModalityWorklistInformationFind)
    association = ae.associate(host, port, ae_title=called_ae)
    if not association.is_established:
        raise ConnectionError(f"no DICOM association with {called_ae} at {host}:{port}")
    try:
        return [found for status, found in association.send_c_find(identifier, ModalityWorklistInformationFind)
                if found is not None and status.Status in (0xFF00, 0xFF01)]
    finally:
        association.release()


__all__ = [
    "REPORT_STYLES",
    "SAMPLE_PDF",
    "ReportSender",
    "ReportStyle",
    "ReportWriting",
    "SentReport",
    "exam_patient",
    "query_worklist",
]
