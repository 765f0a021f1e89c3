"""DICOM Modality Worklist: scheduled exams served to modalities as a C-FIND SCP (pynetdicom).

Each `ExamOrder` becomes one worklist item by the HL7-order-to-MWL mapping
(device_protocols.md §5): AccessionNumber, RequestedProcedureID, StudyInstanceUID, the
patient, and one Scheduled Procedure Step (modality, station AE title, start date and time,
SPS id and description). A query matches on the usual keys: PatientID, AccessionNumber,
and inside the step Modality, ScheduledStationAETitle and the start date (one date or a
`from-to` range); an empty key matches everything, as DICOM universal matching says.
Answers carry the attributes the modality asked for.

`Worklist` holds the items (a new order adds, a change replaces, a cancel removes);
`WorklistScp` serves it. pynetdicom runs its server in threads, so reads of the worklist
take a lock.
"""

from __future__ import annotations

import fnmatch
import threading
from collections.abc import Iterator
from typing import Any

import structlog
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from plugins.pacs.model import ExamOrder, OrderAction, study_uid

log = structlog.get_logger(__name__)

PENDING = 0xFF00
SUCCESS = 0x0000
UNABLE_TO_PROCESS = 0xC001


def worklist_item(order: ExamOrder, *, default_station_ae: str = "") -> Dataset:
    """The MWL dataset of one scheduled order (not a cancel)."""
    assert order.patient is not None and order.procedure is not None and order.scheduled_at is not None
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: Chinese names and procedure texts
    item.AccessionNumber = order.accession_number
    item.RequestedProcedureID = order.requested_procedure_id or order.accession_number
    item.RequestedProcedureDescription = order.procedure.name
    item.StudyInstanceUID = UID(study_uid(order.accession_number))
    item.PatientName = order.patient.name
    item.PatientID = order.patient.id
    item.PatientBirthDate = order.patient.birth_date.strftime("%Y%m%d") if order.patient.birth_date else ""
    item.PatientSex = order.patient.sex.value if order.patient.sex.value in ("M", "F", "O") else ""
    item.ReferringPhysicianName = order.requesting_physician.name if order.requesting_physician else ""
    step = Dataset()
    step.Modality = order.modality or ""
    step.ScheduledStationAETitle = order.station_ae or default_station_ae
    step.ScheduledProcedureStepStartDate = order.scheduled_at.strftime("%Y%m%d")
    step.ScheduledProcedureStepStartTime = order.scheduled_at.strftime("%H%M%S")
    step.ScheduledProcedureStepID = order.scheduled_step_id or order.accession_number
    step.ScheduledProcedureStepDescription = order.procedure.name
    step.ScheduledStationName = order.room or ""
    step.ScheduledProcedureStepStatus = "SCHEDULED"
    item.ScheduledProcedureStepSequence = [step]
    return item


class Worklist:
    """The scheduled items by accession number; safe to use from pynetdicom's threads."""

    def __init__(self, *, default_station_ae: str = "") -> None:
        self.default_station_ae = default_station_ae
        self._items: dict[str, Dataset] = {}
        self._lock = threading.Lock()

    def apply(self, order: ExamOrder) -> None:
        with self._lock:
            if order.action is OrderAction.CANCEL:
                self._items.pop(order.accession_number, None)
            else:
                self._items[order.accession_number] = worklist_item(order, default_station_ae=self.default_station_ae)

    def find(self, query: Dataset) -> list[Dataset]:
        with self._lock:
            items = list(self._items.values())
        return [answer(query, item) for item in items if matches(query, item)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def matches(query: Dataset, item: Dataset) -> bool:
    for keyword in ("PatientID", "AccessionNumber", "RequestedProcedureID"):
        if not _single_value_matches(query, item, keyword):
            return False
    wanted_steps = query.get("ScheduledProcedureStepSequence")
    if not wanted_steps:
        return True
    wanted, step = wanted_steps[0], item.ScheduledProcedureStepSequence[0]
    for keyword in ("Modality", "ScheduledStationAETitle", "ScheduledProcedureStepID"):
        if not _single_value_matches(wanted, step, keyword):
            return False
    wanted_date = str(wanted.get("ScheduledProcedureStepStartDate", "") or "")
    return _date_matches(wanted_date, step.ScheduledProcedureStepStartDate)


def answer(query: Dataset, item: Dataset) -> Dataset:
    """The item cut down to the attributes the query names (sequence items likewise)."""
    reply = Dataset()
    reply.SpecificCharacterSet = item.SpecificCharacterSet
    for element in query:
        keyword = element.keyword
        if not keyword or keyword == "SpecificCharacterSet" or keyword not in item:
            continue
        if keyword == "ScheduledProcedureStepSequence":
            wanted = element.value[0] if element.value else Dataset()
            step = item.ScheduledProcedureStepSequence[0]
            reply.ScheduledProcedureStepSequence = [_subset(wanted, step)]
        else:
            setattr(reply, keyword, item.get(keyword))
    return reply


def _subset(wanted: Dataset, step: Dataset) -> Dataset:
    if len(wanted) == 0:
        return step
    subset = Dataset()
    for element in wanted:
        if element.keyword in step:
            setattr(subset, element.keyword, step.get(element.keyword))
    return subset


def _single_value_matches(query: Dataset, item: Dataset, keyword: str) -> bool:
    wanted = str(query.get(keyword, "") or "")
    if not wanted or wanted == "*":
        return True
    actual = str(item.get(keyword, "") or "")
    if "*" in wanted or "?" in wanted:
        return fnmatch.fnmatchcase(actual, wanted)
    return actual == wanted


def _date_matches(wanted: str, actual: str) -> bool:
    if not wanted:
        return True
    if "-" not in wanted:
        return actual == wanted
    start, end = wanted.split("-", 1)
    return (not start or actual >= start) and (not end or actual <= end)


class WorklistScp:
    """`scp.start()` serves `worklist` on (host, port) in pynetdicom's threads; `stop()` ends it."""

    def __init__(self, worklist: Worklist, *, ae_title: str = "HISBRIDGE_MWL", host: str = "127.0.0.1", port: int = 0):
        self.worklist = worklist
        self.ae = AE(ae_title=ae_title)
        self.ae.add_supported_context(ModalityWorklistInformationFind)
        self.host = host
        self.port = port
        self._server: ThreadedAssociationServer | None = None

    def start(self) -> None:
        handlers: list[Any] = [(evt.EVT_C_FIND, self._on_find)]
        server = self.ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        assert server is not None  # block=False always returns the server
        self._server = server
        self.port = server.server_address[1]
        log.info("worklist serving", port=self.port, items=len(self.worklist))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _on_find(self, event: evt.Event) -> Iterator[tuple[int, Dataset | None]]:
        try:
            found = self.worklist.find(event.identifier)
        except Exception as exc:  # noqa: BLE001 - a broken query must get a DICOM failure status, not a dropped association
            log.warning("worklist query failed", error=repr(exc))
            yield UNABLE_TO_PROCESS, None
            return
        for item in found:
            if event.is_cancelled:
                return
            yield PENDING, item
        yield SUCCESS, None


__all__ = ["Worklist", "WorklistScp", "answer", "matches", "worklist_item"]
