"""What the simulated PACS remembers: scheduled exams by accession number, the calls it
got, and the faults it was told to inject."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Literal

from engine import simulation
from engine.simulation import FaultQueue
from plugins.pacs.model import study_uid

FAULT_KINDS: tuple[str, ...] = ("soap_fault", "malformed", "slow", "http500", "reject", "ae", "ar")


@dataclass
class Fault(simulation.Fault):
    """Misbehave on the next `count` calls of `operation` (None: any call, SOAP or REST).

    `soap_fault` answers a SOAP fault (REST: 500 with an error body) with `text`;
    `reject` a result code `code` with `text` (REST: 422); `malformed` broken XML (REST:
    broken JSON); `http500` an HTML error page; `slow` waits `delay` seconds (give one: the
    shared default is 0), then answers.
    Over MLLP (operation `ORM`): `ae` and `ar` answer an AE or AR ACK with `text`.
    The queue is the engine's shared `engine.simulation.FaultQueue`.
    """

    operation: str | None = None
    text: str = "PACS internal error"
    code: int = 9

    @property
    def target(self) -> str:
        return self.operation or simulation.ANY

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        if data.get("kind") not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}")
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


class OrderRefused(Exception):
    """A business refusal: the service answers it as a result code (SOAP) or status (REST)."""

    def __init__(self, code: int, message: str, *, status: int) -> None:
        self.code = code
        self.message = message
        self.status = status
        super().__init__(message)


@dataclass
class Exam:
    accession_number: str
    status: str
    order: dict[str, Any]
    study_instance_uid: str
    history: list[str] = field(default_factory=list)


@dataclass
class Call:
    style: Literal["soap", "rest", "hl7"]
    operation: str
    accession_number: str | None
    outcome: str


class PacsState:
    def __init__(self) -> None:
        self.exams: dict[str, Exam] = {}
        self.calls: list[Call] = []
        self.faults: FaultQueue[Fault] = FaultQueue()

    def inject(self, fault: Fault) -> None:
        self.faults.inject(fault)

    def take_fault(self, operation: str) -> Fault | None:
        """The first fault aimed at `operation` (or at any call), with one use counted."""
        return self.faults.take(operation)

    def place(self, accession: str, order: dict[str, Any]) -> Exam:
        if not accession:
            raise OrderRefused(3, "accession number is required (检查号不能为空)", status=422)
        if accession in self.exams and self.exams[accession].status != "cancelled":
            raise OrderRefused(2, f"accession number {accession} already exists (检查号已存在)", status=409)
        exam = Exam(accession, "scheduled", order, study_uid(accession), ["new"])
        self.exams[accession] = exam
        return exam

    def change(self, accession: str, order: dict[str, Any]) -> Exam:
        exam = self._known(accession)
        if exam.status == "cancelled":
            raise OrderRefused(4, f"accession number {accession} is cancelled (检查已取消)", status=409)
        exam.order = order
        exam.history.append("change")
        return exam

    def cancel(self, accession: str) -> Exam:
        exam = self._known(accession)
        exam.status = "cancelled"
        exam.history.append("cancel")
        return exam

    def _known(self, accession: str) -> Exam:
        exam = self.exams.get(accession)
        if exam is None:
            raise OrderRefused(1, f"accession number {accession} not found (检查号不存在)", status=404)
        return exam

    def reset(self) -> None:
        self.exams.clear()
        self.calls.clear()
        self.faults = FaultQueue()
