"""The PACS words: an exam order from HIS and an exam report from the PACS.

One order model serves every transport (HL7 ORM^O01, SOAP, REST): HIS posts it as JSON,
each adapter maps it to its wire format. Its three DICOM identifiers are the business keys
that find every hop of one exam: the accession number (DICOM 0008,0050; HL7 OBR-18), the
requested procedure id (0040,1001; OBR-19) and the scheduled procedure step id
(0040,0009; OBR-20).

The report model is what every report style (ORU^R01, a SOAP callback, a REST post) maps
to: exam, patient, findings, impression, author, verification time, and attachments held
once by reference (a PDF or an image is stored by the engine, stages quote its digest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from engine.errors import InputError
from engine.message import Payload
from engine.store.blobs import BLOB_KEY, REF_PREFIX

BUSINESS_KEYS = ("accession_number", "requested_procedure_id", "scheduled_step_id")

DicomId = Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9._-]+$")]
"""DICOM SH: at most 16 characters; kept to characters every PACS and HL7 field accepts."""


class OrderAction(StrEnum):
    NEW = "new"
    CANCEL = "cancel"
    CHANGE = "change"


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"
    OTHER = "O"
    UNKNOWN = "U"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Patient(_Strict):
    id: str = Field(min_length=1, max_length=64, description="HIS patient id (PID-3)")
    name: str = Field(min_length=1, max_length=64)
    sex: Sex = Sex.UNKNOWN
    birth_date: date | None = None


class Person(_Strict):
    id: str = Field(min_length=1, max_length=32)
    name: str = Field("", max_length=64)


class Procedure(_Strict):
    code: str = Field(min_length=1, max_length=64, description="HIS exam item code")
    name: str = Field(min_length=1, max_length=128)
    body_part: str = Field("", max_length=64)


class ExamOrder(_Strict):
    """An exam order from HIS. `cancel` needs only the keys; `new` and `change` need the rest."""

    action: OrderAction
    accession_number: DicomId
    requested_procedure_id: DicomId | None = None
    scheduled_step_id: DicomId | None = None
    placer_order_number: str | None = Field(None, max_length=32, description="HIS order (申请单) number")
    patient: Patient | None = None
    visit_number: str | None = Field(None, max_length=32, description="outpatient/inpatient visit number")
    patient_class: str = Field("O", pattern=r"^[OIE]$", description="O outpatient, I inpatient, E emergency")
    procedure: Procedure | None = None
    modality: str | None = Field(None, pattern=r"^[A-Z]{2,4}$", examples=["CT", "MR", "DX", "US"])
    scheduled_at: datetime | None = None
    station_ae: str | None = Field(None, max_length=16, description="scheduled station AE title (device)")
    room: str | None = Field(None, max_length=32)
    requesting_physician: Person | None = None
    reason: str = Field("", max_length=256, description="clinical reason for the exam")
    priority: str = Field("routine", pattern=r"^(routine|urgent|stat)$")

    @model_validator(mode="after")
    def _complete_for_scheduling(self) -> ExamOrder:
        if self.action is OrderAction.CANCEL:
            return self
        missing = [name for name in ("patient", "procedure", "modality", "scheduled_at") if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.action.value} order needs {', '.join(missing)}")
        return self

    def keys(self) -> dict[str, str]:
        return {name: value for name in BUSINESS_KEYS if (value := getattr(self, name))}


def study_uid(accession: str) -> str:
    """A stable Study Instance UID for an accession number (the UUID-derived 2.25 root)."""
    return "2.25." + str(int(hashlib.sha256(accession.encode()).hexdigest()[:30], 16))


def parse_order(payload: Payload) -> ExamOrder:
    """The order HIS sent; an unusable one is HIS's fault, named by its field path."""
    try:
        data = payload.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}", field="body") from exc
    try:
        return ExamOrder.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"]) or "body"
        raise InputError(first["msg"], field=path) from exc


def order_keys(payload: Payload) -> Mapping[str, str]:
    """Business keys from whatever HIS sent, even an order too broken to send."""
    try:
        data: Any = payload.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        name: str(data[name]) for name in BUSINESS_KEYS if isinstance(data.get(name), (str, int)) and data[name] != ""
    }


# --- reports ---------------------------------------------------------------------------------


class ReportStatus(StrEnum):
    PRELIMINARY = "preliminary"
    FINAL = "final"
    CORRECTED = "corrected"
    CANCELLED = "cancelled"


class Attachment(_Strict):
    """A PDF or image of the report, stored once in the engine's blob store; every stage
    carries its reference `ref` (`blob:sha256:<hex>`), never the bytes. `sha256` is the
    digest inside the reference (filled from it when missing)."""

    ref: str = Field(pattern=r"^blob:sha256:[0-9a-f]{64}$", description="engine blob reference of the bytes")
    content_type: str = Field(pattern=r"^(application/pdf|image/[a-z0-9.+-]+)$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    title: str = ""

    @model_validator(mode="before")
    @classmethod
    def _digest_from_ref(cls, data: Any) -> Any:
        if isinstance(data, dict) and "sha256" not in data and isinstance(data.get("ref"), str):
            return {**data, "sha256": data["ref"].removeprefix(REF_PREFIX)}
        return data

    @model_validator(mode="after")
    def _digest_matches_ref(self) -> Attachment:
        if self.ref != REF_PREFIX + self.sha256:
            raise ValueError("sha256 must be the digest inside ref")
        return self


class ExamReport(_Strict):
    accession_number: DicomId
    requested_procedure_id: DicomId | None = None
    study_instance_uid: str | None = Field(None, pattern=r"^[0-9.]{1,64}$")
    patient: Patient
    procedure: Procedure | None = None
    modality: str | None = None
    status: ReportStatus = ReportStatus.FINAL
    findings: str = Field("", description="检查所见")
    impression: str = Field("", description="诊断意见 / conclusion")
    recommendation: str = Field("", description="建议 / follow-up recommendation")
    author: Person
    verifier: Person | None = None
    verified_at: datetime | None = None
    performed_by: Person | None = Field(None, description="technician who performed the exam (workload statistics)")
    attachments: list[Attachment] = Field(default_factory=list)

    @model_validator(mode="after")
    def _final_is_verified(self) -> ExamReport:
        if self.status in (ReportStatus.FINAL, ReportStatus.CORRECTED) and self.verified_at is None:
            raise ValueError(f"a {self.status.value} report needs verified_at")
        return self


def report_keys(payload: Payload) -> dict[str, str | list[str]]:
    """Business keys of a report as JSON: its exam keys and, under `blob`, every attachment's
    reference (which keeps the attachments in the engine's store while the message is kept)."""
    try:
        data: Any = payload.json()
    except (ValueError, UnicodeDecodeError):
        return {}
    if not isinstance(data, dict):
        return {}
    keys: dict[str, str | list[str]] = dict(order_keys(payload))
    attachments = data.get("attachments")
    refs = [str(item["ref"]) for item in attachments if isinstance(item, dict) and item.get("ref")] if isinstance(
        attachments, list) else []
    if refs:
        keys[BLOB_KEY] = refs
    return keys


__all__ = [
    "BUSINESS_KEYS",
    "Attachment",
    "ExamOrder",
    "ExamReport",
    "OrderAction",
    "Patient",
    "Person",
    "Procedure",
    "ReportStatus",
    "Sex",
    "order_keys",
    "parse_order",
    "report_keys",
    "study_uid",
]
