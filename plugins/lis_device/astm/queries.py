"""ASTM host query (Q record) and the order download that answers it (H P O ... L).

Flow (Mindray, AQUALink and Beckman agree): the instrument sends H Q L; the host answers in
its own transfer with H, then per patient a P and its O records (O-26 `Q`: response to
query), then L; or with H and `L|1|I` when nothing is known for the specimen.

Q-3 holds the starting range as `patientId^specimenId^...` (AQUALink `^sample^rack^hole`,
DxH `!specimen`, Mindray `^barcode`), repeated for several specimens; `ALL` asks for all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from plugins.lis_device.astm.records import (
    STANDARD_DELIMITERS,
    AstmDelimiters,
    AstmMessage,
    AstmRecord,
    build_record,
    repeat_field,
)


@dataclass(frozen=True, slots=True)
class QueryRange:
    patient_id: str
    specimen_id: str
    rest: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HostQuery:
    """One Q record. `barcodes` lists the specimens asked about, in order."""

    source: str
    starting: tuple[QueryRange, ...]
    ending: tuple[QueryRange, ...]
    test_ids: tuple[str, ...]
    status_code: str
    all_specimens: bool

    @property
    def barcodes(self) -> list[str]:
        found = [item.specimen_id or item.patient_id for item in self.starting]
        return [barcode for barcode in found if barcode]


def _ranges(record: AstmRecord, field_number: int) -> tuple[QueryRange, ...]:
    ranges = []
    for repeat in range(1, len(record.raw(field_number).split(record.delimiters.repeat)) + 1):
        parts = [part.strip() for part in record.components(field_number, repeat)]
        if any(parts):
            parts += ["", ""]
            ranges.append(QueryRange(parts[0], parts[1], tuple(p for p in parts[2:] if p)))
    return tuple(ranges)


def read_queries(message: AstmMessage) -> list[HostQuery]:
    records = message.records_of("Q")
    queries = []
    for number, record in enumerate(records, start=1):
        queries.append(
            HostQuery(
                source=f"Q[{number}]" if len(records) > 1 else "Q",
                starting=_ranges(record, 3),
                ending=_ranges(record, 4),
                test_ids=tuple(
                    test.strip(record.delimiters.component + " ") for test in record.repeats(5)
                ),
                status_code=record.value(13).strip(),
                all_specimens=record.value(3).strip().upper() == "ALL",
            )
        )
    return queries


@dataclass(frozen=True, slots=True)
class OrderPatient:
    practice_id: str = ""
    laboratory_id: str = ""
    family_name: str = ""
    given_name: str = ""
    birth_date: str = ""
    sex: str = ""


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """One specimen's order as sent to an instrument (O record, E1394 §9.4 numbering)."""

    specimen_id: str
    tests: tuple[str, ...]
    patient: OrderPatient = field(default_factory=OrderPatient)
    instrument_specimen_id: str = ""
    priority: str = "R"
    requested_at: str = ""
    collected_at: str = ""
    action_code: str = "N"
    specimen_type: str = ""
    report_type: str = "Q"
    # Values a device wants at fixed positions the model has no name for, keyed by position
    # (Mindray DSR^Q03: {"2": bed, "15": patient type}); protocols that have none ignore it.
    device_fields: dict[str, str] = field(default_factory=dict)


def standard_test_id(code: str) -> tuple[str, ...]:
    """`^^^code`: the manufacturer's code in component 4."""
    return ("", "", "", code)


def _header(
    delimiters: AstmDelimiters,
    sender: str,
    receiver: str,
    processing_id: str,
    version: str,
    now: datetime,
) -> AstmRecord:
    values: dict[int, str | Sequence[str] | None] = {
        5: sender,
        10: receiver,
        12: processing_id,
        13: version,
        14: now.strftime("%Y%m%d%H%M%S"),
    }
    return build_record("H", values, delimiters)


def build_order_download(
    orders: Sequence[OrderRequest],
    *,
    now: datetime,
    delimiters: AstmDelimiters = STANDARD_DELIMITERS,
    sender: str = "LIS",
    receiver: str = "",
    processing_id: str = "P",
    version: str = "LIS2-A2",
    termination_code: str = "N",
    test_id: Callable[[str], tuple[str, ...]] = standard_test_id,
) -> AstmMessage:
    """H, then P and its O records per patient (consecutive orders of one patient share a
    P), then L. With no orders this is H + `L|1|I` (no information available)."""
    d = delimiters
    records = [_header(d, sender, receiver, processing_id, version, now)]
    if not orders:
        records.append(build_record("L", {2: "1", 3: "I"}, d))
        return AstmMessage(records, d, [])
    patient_number = 0
    order_number = 0
    current: OrderPatient | None = None
    for order in orders:
        if patient_number == 0 or order.patient != current:
            current = order.patient
            patient_number += 1
            order_number = 0
            records.append(_patient_record(patient_number, order.patient, d))
        order_number += 1
        records.append(_order_record(order_number, order, d, test_id))
    records.append(build_record("L", {2: "1", 3: termination_code}, d))
    return AstmMessage(records, d, [])


def _patient_record(number: int, patient: OrderPatient, d: AstmDelimiters) -> AstmRecord:
    name = (patient.family_name, patient.given_name) if patient.given_name else patient.family_name
    return build_record(
        "P",
        {
            2: str(number),
            3: patient.practice_id,
            4: patient.laboratory_id,
            6: name,
            8: patient.birth_date,
            9: patient.sex,
        },
        d,
    )


def _order_record(
    number: int, order: OrderRequest, d: AstmDelimiters, test_id: Callable[[str], tuple[str, ...]]
) -> AstmRecord:
    return build_record(
        "O",
        {
            2: str(number),
            3: order.specimen_id,
            4: order.instrument_specimen_id,
            5: repeat_field([test_id(code) for code in order.tests], d),
            6: order.priority,
            7: order.requested_at,
            8: order.collected_at,
            12: order.action_code,
            16: order.specimen_type,
            26: order.report_type,
        },
        d,
    )


def read_orders(message: AstmMessage, code_component: int = 4) -> list[OrderRequest]:
    """The orders in a download (what an instrument would read): the inverse of
    `build_order_download` for the fields it writes."""
    orders = []
    patient = OrderPatient()
    for record in message.records:
        if record.type == "P":
            patient = OrderPatient(
                practice_id=record.value(3),
                laboratory_id=record.value(4),
                family_name=record.value(6, component=1),
                given_name=record.value(6, component=2),
                birth_date=record.value(8),
                sex=record.value(9),
            )
        elif record.type == "O":
            repeats = len(record.repeats(5))
            tests = tuple(
                record.value(5, repeat, code_component) for repeat in range(1, repeats + 1)
            )
            orders.append(
                OrderRequest(
                    specimen_id=record.value(3),
                    tests=tests,
                    patient=patient,
                    instrument_specimen_id=record.value(4),
                    priority=record.value(6),
                    requested_at=record.value(7),
                    collected_at=record.value(8),
                    action_code=record.value(12),
                    specimen_type=record.value(16),
                    report_type=record.value(26),
                )
            )
    return orders
