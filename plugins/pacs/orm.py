"""HL7 v2.3.1 ORM^O01 for an exam order (IHE RAD-4 new order, RAD-13 change and cancel).

Built by hand, in the shape of the dcm4che MESA sample and the HL7-order-to-MWL mapping
(device_protocols.md §5): `MSH PID PV1 ORC OBR`, with OBR-18 the accession number, OBR-19
the requested procedure id, OBR-20 the scheduled step id, OBR-24 the modality, ORC-7.4 the
scheduled start and ORC-7.6 the priority; ORC-1/ORC-5 say what happens (`NW`/`SC` new,
`XO`/`SC` change, `CA`/`CA` cancel) and ORC-18 carries the scheduled station AE title.
Text is escaped (`\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`) so a patient name cannot break a field.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from plugins.pacs.model import ExamOrder, OrderAction

VERSION = "2.3.1"
SEGMENT_END = "\r"

_ORDER_CONTROL = {
    OrderAction.NEW: ("NW", "SC"),
    OrderAction.CHANGE: ("XO", "SC"),
    OrderAction.CANCEL: ("CA", "CA"),
}
_PRIORITY = {"routine": "R", "urgent": "A", "stat": "S"}
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\"))


def escape(text: str) -> str:
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text.replace("\r", " ").replace("\n", " ")


def segment(name: str, fields: dict[int, str]) -> str:
    """`name|f1|f2...` with the given 1-based fields, empty between them."""
    last = max(fields, default=0)
    return "|".join([name, *(fields.get(index, "") for index in range(1, last + 1))])


def _ts(moment: datetime | None) -> str:
    return moment.strftime("%Y%m%d%H%M%S") if moment else ""


def build_orm(
    order: ExamOrder,
    *,
    sending: tuple[str, str] = ("HIS", "HOSPITAL"),
    receiving: tuple[str, str] = ("PACS", "RADIOLOGY"),
    control_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """The ORM^O01 message for `order`, segments ended by CR, charset UTF-8 (MSH-18)."""
    control_id = control_id or uuid.uuid4().hex[:20]
    order_control, order_status = _ORDER_CONTROL[order.action]
    msh = "|".join(
        [
            "MSH",
            "^~\\&",
            escape(sending[0]),
            escape(sending[1]),
            escape(receiving[0]),
            escape(receiving[1]),
            _ts(now or datetime.now()),
            "",
            "ORM^O01",
            control_id,
            "P",
            VERSION,
            "",
            "",
            "",
            "",
            "",
            "UNICODE UTF-8",
        ]
    )
    patient = order.patient
    pid = segment(
        "PID",
        {
            3: escape(patient.id) if patient else "",
            5: escape(patient.name) if patient else "",
            7: patient.birth_date.strftime("%Y%m%d") if patient and patient.birth_date else "",
            8: patient.sex.value if patient else "",
        },
    )
    physician = order.requesting_physician
    doctor = f"{escape(physician.id)}^{escape(physician.name)}" if physician else ""
    pv1 = segment(
        "PV1", {2: order.patient_class, 3: escape(order.room or ""), 8: doctor, 19: escape(order.visit_number or "")}
    )
    timing = f"1^once^^{_ts(order.scheduled_at)}^^{_PRIORITY[order.priority]}"
    placer = escape(order.placer_order_number or order.accession_number)
    orc = segment(
        "ORC",
        {
            1: order_control,
            2: placer,
            3: escape(order.accession_number),
            5: order_status,
            7: timing,
            12: doctor,
            18: escape(order.station_ae or ""),
        },
    )
    procedure = order.procedure
    obr = segment(
        "OBR",
        {
            1: "1",
            2: placer,
            3: escape(order.accession_number),
            4: f"{escape(procedure.code)}^{escape(procedure.name)}^HIS" if procedure else "",
            13: escape(order.reason),
            15: escape(procedure.body_part) if procedure else "",
            16: doctor,
            18: escape(order.accession_number),
            19: escape(order.requested_procedure_id or ""),
            20: escape(order.scheduled_step_id or ""),
            24: order.modality or "",
            27: timing,
        },
    )
    return SEGMENT_END.join([msh, pid, pv1, orc, obr]) + SEGMENT_END


__all__ = ["build_orm", "escape", "segment"]
