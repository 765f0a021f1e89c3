"""The words of the PACS services other hospital systems call: one pydantic model per request
and answer. The same classes validate requests (in the channels' processors and adapters)
and write the OpenAPI description (`plugins.pacs.services.openapi`), so the two cannot drift.

Patients, people and procedures are the plugin's own (`plugins.pacs.model`); a registration
and an appointment both become an `ExamOrder` for the PACS.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from engine.errors import InputError
from engine.message import Payload
from plugins.pacs.model import (
    Attachment,
    DicomId,
    ExamOrder,
    ExamReport,
    OrderAction,
    Patient,
    Person,
    Procedure,
)

MAX_WORKLOAD_DAYS = 366
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}")

M = TypeVar("M", bound=BaseModel)


def _written(pattern: re.Pattern[str], parse: Callable[[str], Any], what: str) -> BeforeValidator:
    """Dates and moments as the OpenAPI document writes them: pydantic alone would also read
    `"0"` as 1 January 1970, and a space for the `T`."""

    def read(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            if pattern.match(value):
                return parse(value)
        except ValueError:
            pass
        raise ValueError(f"must be written {what}")

    return BeforeValidator(read)


Day = Annotated[date, _written(_DAY, date.fromisoformat, "YYYY-MM-DD")]
Moment = Annotated[
    datetime, _written(_MOMENT, datetime.fromisoformat, "YYYY-MM-DDThh:mm:ss (local time, or with its offset)")
]


class ServiceModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ServicePatient(Patient):
    birth_date: Day | None = None


class ExamFields(ServiceModel):
    """What every exam request names besides its accession number."""

    requested_procedure_id: DicomId | None = None
    scheduled_step_id: DicomId | None = None
    placer_order_number: str | None = Field(None, max_length=32, description="HIS order (申请单) number")
    patient: ServicePatient
    visit_number: str | None = Field(None, max_length=32, description="outpatient/inpatient visit number")
    patient_class: str = Field("O", pattern=r"^[OIE]$", description="O outpatient, I inpatient, E emergency")
    procedure: Procedure
    modality: str = Field(pattern=r"^[A-Z]{2,4}$", examples=["CT", "MR", "DX", "US"])
    requesting_physician: Person | None = None
    reason: str = Field("", max_length=256, description="clinical reason for the exam")
    priority: Literal["routine", "urgent", "stat"] = "routine"

    def order(self, action: OrderAction, accession: str, **scheduling: Any) -> ExamOrder:
        fields = self.model_dump(include=set(ExamFields.model_fields), exclude_none=True)
        return ExamOrder.model_validate({**fields, **scheduling, "action": action, "accession_number": accession})


class Registration(ExamFields):
    """登记: the patient is registered for an exam (at the RIS desk, or by HIS on arrival)."""

    accession_number: DicomId
    registered_at: Moment = Field(description="when the patient was registered; the exam is due from then")
    station_ae: str | None = Field(None, min_length=1, max_length=16, description="device (AE title), when known")
    room: str | None = Field(None, min_length=1, max_length=32, description="exam room, when known")

    def to_order(self) -> ExamOrder:
        return self.order(
            OrderAction.NEW, self.accession_number,
            scheduled_at=self.registered_at, station_ae=self.station_ae, room=self.room,
        )


class Booking(ExamFields):
    """An appointment's exam and its slot; the device (`station_ae`) or the room, or both."""

    scheduled_at: Moment = Field(description="start of the booked slot")
    duration_minutes: int = Field(15, ge=1, le=480, description="length of the booked slot")
    station_ae: str = Field("", max_length=16, description="the device booked (its DICOM AE title)")
    room: str = Field("", max_length=32, description="the exam room booked")

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["station_ae"], "properties": {"station_ae": {"minLength": 1}}},
                {"required": ["room"], "properties": {"room": {"minLength": 1}}},
            ]
        }
    )

    def unplaced(self) -> InputError | None:
        """The refusal of a booking that names neither its device nor its room (a rule across
        fields: the schema's `anyOf` states it, pydantic cannot name one field for it)."""
        if self.station_ae or self.room:
            return None
        return InputError("an appointment needs the device (station_ae) or the room", field="station_ae")

    def to_order(self, action: OrderAction, accession: str) -> ExamOrder:
        return self.order(
            action, accession,
            scheduled_at=self.scheduled_at, station_ae=self.station_ae or None, room=self.room or None,
        )


class Appointment(Booking):
    """预约: an exam booked on a device or in a room at a time."""

    accession_number: DicomId


class ExamRef(ServiceModel):
    """One exam, by the accession number in the path."""

    accession_number: DicomId


class ResultQuery(ExamRef):
    include_attachments: bool = Field(True, description="send the PDF/images as base64 (false: only their digests)")

    @field_validator("include_attachments", mode="before")
    @classmethod
    def _true_or_false(cls, value: Any) -> Any:
        """In a URL a boolean is the text `true` or `false`, as the OpenAPI document writes it."""
        if isinstance(value, str):
            if value not in ("true", "false"):
                raise ValueError("must be true or false")
            return value == "true"
        return value


class WorkloadQuery(ServiceModel):
    """工作量统计 over whole days, both ends included (the hospital's local dates)."""

    model_config = ConfigDict(populate_by_name=True)

    first_day: Day = Field(alias="from", description="first day counted")
    last_day: Day = Field(alias="to", description="last day counted (included)")
    modality: str | None = Field(None, pattern=r"^[A-Z]{2,4}$", description="count only this modality")

    @field_validator("last_day")
    @classmethod
    def _sensible_period(cls, last_day: date, info: ValidationInfo) -> date:
        first_day = info.data.get("first_day")
        if first_day is None:
            return last_day
        if last_day < first_day:
            raise ValueError("must not be before from")
        if (last_day - first_day).days >= MAX_WORKLOAD_DAYS:
            raise ValueError(f"a period covers at most {MAX_WORKLOAD_DAYS} days")
        return last_day


# --- answers ---------------------------------------------------------------------------------


class Accepted(ServiceModel):
    """The request is stored; `queued` ones reach the PACS through the engine's outbox."""

    message_id: str = Field(description="follow it with GET /api/v1/messages/{message_id}")
    status: Literal["queued", "replied", "filtered"]
    operation: Literal["register", "book", "reschedule", "cancel"]
    accession_number: str


class AttachmentContent(Attachment):
    data: str | None = Field(None, description="the file as base64; null when not asked for or not held")


class ReportResult(ServiceModel):
    """结果查询: the newest report the engine holds for the exam."""

    accession_number: str
    report: ExamReport = Field(description="the report as structured data")
    attachments: list[AttachmentContent] = Field(description="the report's PDF and images")
    report_message_id: str = Field(description="the engine message that brought the report")
    received_at: datetime = Field(description="when the report reached the engine")
    source: Literal["engine_archive"] = "engine_archive"


class Count(ServiceModel):
    key: str = Field(description="exam item code, device, or technician id")
    name: str = Field("", description="exam item name, or technician name")
    exams: int = Field(ge=0)


class Workload(ServiceModel):
    first_day: date = Field(alias="from")
    last_day: date = Field(alias="to")
    modality: str | None = None
    exams: int = Field(ge=0, description="exams reported in the period (newest report per accession)")
    by_exam: list[Count]
    by_device: list[Count] = Field(description="the order's device (station AE) or room; `unknown` when none")
    by_technician: list[Count] = Field(description="the report's performed_by; `unknown` when none")
    truncated: bool = Field(description="true when more reports arrived than the service reads per query")

    model_config = ConfigDict(populate_by_name=True)


class ErrorDetail(BaseModel):
    code: str
    reason: str
    party: str | None = None
    field: str | None = None
    message_id: str | None = None

    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    error: ErrorDetail


# --- reading requests -------------------------------------------------------------------------


def parse_query(model: type[M], payload: Payload, *, party: str = "his") -> M:
    """A query's parameters as `model`: text as a URL carries it (`2026-11-01`, `false`), or
    JSON values when a caller posted the query to the channel itself. Strict either way,
    as the OpenAPI document says (no `2026-11-01T00:00:00` for a day)."""
    data = json_object(payload)
    try:
        if all(isinstance(value, str) for value in data.values()):
            return model.model_validate_strings(data, strict=True)
        return model.model_validate_json(payload.body, strict=True)
    except ValidationError as exc:
        raise _refusal(exc, party) from exc


def parse(model: type[M], data: Any, *, party: str = "his") -> M:
    """`data` as `model`; what is wrong is the caller's, named by its field path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _refusal(exc, party) from exc


def parse_body(model: type[M], payload: Payload, *, party: str = "his") -> M:
    """A JSON body as `model`, strictly: a JSON number is no date and a text no number, as the
    OpenAPI document says (lax parsing would take `-34` for a moment in 1969)."""
    try:
        return model.model_validate_json(payload.body, strict=True)
    except ValidationError as exc:
        raise _refusal(exc, party) from exc


def _refusal(exc: ValidationError, party: str) -> InputError:
    first = exc.errors()[0]
    path = ".".join(str(part) or "''" for part in first["loc"]) or "body"  # '': a parameter without a name
    return InputError(first["msg"], field=path, party=party)


def json_object(payload: Payload) -> dict[str, Any]:
    try:
        data = payload.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}", field="body") from exc
    if not isinstance(data, dict):
        raise InputError("must be a JSON object", field="body")
    return data


__all__ = [
    "Accepted",
    "Appointment",
    "AttachmentContent",
    "Booking",
    "Count",
    "ErrorBody",
    "ExamRef",
    "Registration",
    "ReportResult",
    "ResultQuery",
    "Workload",
    "WorkloadQuery",
    "json_object",
    "parse",
    "parse_body",
    "parse_query",
]
