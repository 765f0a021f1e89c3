"""Result query (结果查询) and workload statistics (工作量统计), answered from the engine's archive.

Both are sync, idempotent destinations of their own channels, so every query is a stored
message with the same attempts, verdicts and breaker as any call. They read what the engine
routed (`ExamArchive`), so they answer while the PACS is down and say exactly what HIS was
given. The route factory binds them to the running engine (`bind`); unbound (outside the
daemon) they refuse as an engine fault.

The result query's stored answer names attachments by digest only; the route adds the
base64 bytes from the report's own stage, so a PDF is never copied into every query.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import ClassVar

from pydantic import Field

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.business_keys import KeysOut
from engine.message import Delivery, Payload
from plugins.pacs.model import ExamOrder, ReportStatus
from plugins.pacs.services.archive import ExamArchive, StoredReport
from plugins.pacs.services.models import (
    AttachmentContent,
    Count,
    ReportResult,
    ResultQuery,
    Workload,
    WorkloadQuery,
    json_object,
    parse_query,
)

UNKNOWN = "unknown"
SCAN_MARGIN = timedelta(days=1)  # the period is in local days, received_at in UTC


class ArchiveUnbound(RuntimeError):
    """The destination was used before the daemon's API bound it to the engine."""


class ArchiveReader(Adapter):
    delivery: ClassVar[Delivery] = Delivery.SYNC
    idempotent: ClassVar[bool] = True

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        super().__init__(config, services)
        self._archive: ExamArchive | None = None

    def bind(self, archive: ExamArchive) -> None:
        self._archive = archive

    @property
    def archive(self) -> ExamArchive:
        if self._archive is None:
            raise ArchiveUnbound(f"{self.name} answers only inside the daemon, whose API binds it to the engine")
        return self._archive


class PacsResultsAdapter(ArchiveReader):
    name: ClassVar[str] = "pacs_results"
    business_keys: ClassVar[tuple[str, ...]] = ("accession_number",)
    description: ClassVar[str] = "PACS service 结果查询: the newest report the engine holds for an accession number"

    def transform(self, request: Payload) -> Payload:
        return Payload.from_json(parse_query(ResultQuery, request).model_dump(mode="json"))

    def extract_keys(self, request: Payload) -> KeysOut:
        accession = json_object(request).get("accession_number")
        return {"accession_number": accession} if isinstance(accession, str) else {}

    async def send(self, request: Payload, wire: Wire) -> Payload:
        wire.sent(request)
        query = ResultQuery.model_validate_json(request.body)
        stored = await self.archive.latest_report(query.accession_number)
        if stored is None:
            answer = Payload.from_json({"found": False, "accession_number": query.accession_number})
        else:
            answer = Payload.from_json(report_result(stored).model_dump(mode="json"))
        wire.received(answer)
        return answer


def report_result(stored: StoredReport, data: Mapping[str, str] | None = None) -> ReportResult:
    """The answer; `data` holds the attachments' base64 by digest when they are to be sent."""
    attachments = [
        AttachmentContent(**attachment.model_dump(), data=(data or {}).get(attachment.sha256))
        for attachment in stored.report.attachments
    ]
    return ReportResult(
        accession_number=stored.report.accession_number, report=stored.report, attachments=attachments,
        report_message_id=stored.message_id, received_at=stored.received_at,
    )


class PacsWorkloadConfig(AdapterConfig):
    max_reports: int = Field(20000, gt=0, description="reports read per query and report channel; more set `truncated`")
    report_delay_days: int = Field(
        3, ge=0, description="days after the period's end in which a report verified inside it may still arrive"
    )


class PacsWorkloadAdapter(ArchiveReader):
    name: ClassVar[str] = "pacs_workload"
    Config: ClassVar[type[AdapterConfig]] = PacsWorkloadConfig
    description: ClassVar[str] = "PACS service 工作量统计: exams per exam item, device and technician over a period"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        assert isinstance(config, PacsWorkloadConfig)
        super().__init__(config, services)
        self.settings = config

    def transform(self, request: Payload) -> Payload:
        return Payload.from_json(parse_query(WorkloadQuery, request).model_dump(mode="json", by_alias=True))

    async def send(self, request: Payload, wire: Wire) -> Payload:
        wire.sent(request)
        query = WorkloadQuery.model_validate_json(request.body)
        answer = Payload.from_json((await self.count(query)).model_dump(mode="json", by_alias=True))
        wire.received(answer)
        return answer

    async def count(self, query: WorkloadQuery) -> Workload:
        since = _midnight_utc(query.first_day, -SCAN_MARGIN)
        until = _midnight_utc(query.last_day, SCAN_MARGIN * 2 + timedelta(days=self.settings.report_delay_days))
        reports, truncated = await self.archive.reports_received(since, until, limit=self.settings.max_reports)
        tally = _Tally()
        for exam in _exams(reports):
            if not query.first_day <= exam.day <= query.last_day:
                continue
            order = await self.archive.latest_order(exam.newest.report.accession_number)
            if query.modality and (exam.newest.report.modality or (order and order.modality)) != query.modality:
                continue
            tally.add(exam.newest, order)
        return Workload(
            first_day=query.first_day, last_day=query.last_day, modality=query.modality, exams=tally.exams,
            by_exam=tally.rows(tally.by_exam), by_device=tally.rows(tally.by_device),
            by_technician=tally.rows(tally.by_technician), truncated=truncated,
        )


def _midnight_utc(day: date, shift: timedelta) -> datetime:
    """The day's start moved by `shift`, held at the calendar's ends (year 1, year 9999)."""
    try:
        return datetime.combine(day, time(), UTC) + shift
    except OverflowError:
        return (datetime.min if shift < timedelta(0) else datetime.max).replace(tzinfo=UTC)


@dataclass
class _Exam:
    newest: StoredReport
    day: date  # when its first report was verified: a later correction does not move the exam


def _exams(reports_newest_first: list[StoredReport]) -> list[_Exam]:
    exams: dict[str, _Exam] = {}
    for stored in reports_newest_first:
        day = _report_day(stored)
        exam = exams.get(stored.report.accession_number)
        if exam is None:
            exams[stored.report.accession_number] = _Exam(stored, day)
        else:
            exam.day = min(exam.day, day)
    return [exam for exam in exams.values() if exam.newest.report.status is not ReportStatus.CANCELLED]


def _report_day(stored: StoredReport) -> date:
    return (stored.report.verified_at or stored.received_at).date()


class _Tally:
    def __init__(self) -> None:
        self.exams = 0
        self.by_exam: Counter[tuple[str, str]] = Counter()
        self.by_device: Counter[tuple[str, str]] = Counter()
        self.by_technician: Counter[tuple[str, str]] = Counter()

    def add(self, stored: StoredReport, order: ExamOrder | None) -> None:
        report = stored.report
        procedure = report.procedure or (order.procedure if order else None)
        modality = report.modality or (order.modality if order else None) or UNKNOWN
        self.exams += 1
        self.by_exam[(procedure.code, procedure.name) if procedure else (modality, "")] += 1
        device = (order.station_ae or order.room) if order else None
        self.by_device[(device or UNKNOWN, "")] += 1
        technician = report.performed_by
        self.by_technician[(technician.id, technician.name) if technician else (UNKNOWN, "")] += 1

    @staticmethod
    def rows(counter: Counter[tuple[str, str]]) -> list[Count]:
        ordered = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
        return [Count(key=key, name=name, exams=exams) for (key, name), exams in ordered]


__all__ = ["ArchiveUnbound", "PacsResultsAdapter", "PacsWorkloadAdapter", "PacsWorkloadConfig", "report_result"]
