"""HL7 v2.3.1 order query (QRY^Q02) and its answers (QCK^Q02, then DSR^Q03), Mindray style.

The analyser asks for the orders of a barcode; the host answers on the same connection
with a QCK^Q02 (QAK-2 `OK` found, `NF` not found) and, when found, one DSR^Q03 per specimen
whose DSP segments are *positional*: DSP-1 is the row number and DSP-3 its value (Mindray
CL/BS host interface manual; the vendor sample in ../shared/samples/hl7 has 31 rows):

    1 patient id    3 name    4 birth date (YYYYMMDDHHMMSS)    5 sex
    21 specimen barcode    22 sample id    23 collected (or requested) time
    24 STAT (Y/N)    26 specimen type    29.. one row per test, `code^name^unit^range`

Rows 2, 6-20, 25, 27 and 28 (bed, blood type, patient type, charge type, doctor,
department, ...) have no field in the order model; the LIS can fill them through an
order's `device_fields` (`{"2": "27", "15": "outpatient"}`). The last DSR ends `DSC||`,
earlier ones `DSC|<n>|`. The analyser answers each DSR with an ACK^Q03.

Segments are built by hand like the listener's ACKs (see engine.mllp.ack): sender and
receiver swapped, a fresh MSH-10, MSH-12 and MSH-18 copied from the query, MSA-2 the
query's MSH-10, QRD and QRF echoed as the device sent them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from plugins.lis_device.astm.queries import OrderRequest
from plugins.lis_device.hl7.reader import Hl7Message, Segment

FIXED_DSP_ROWS = 28
FIRST_TEST_ROW = FIXED_DSP_ROWS + 1


@dataclass(frozen=True, slots=True)
class OrderQuery:
    """What a QRY^Q02 asks: QRD-8 barcodes (repeats allowed), and the segments to echo."""

    message: Hl7Message
    barcodes: list[str]

    @property
    def control_id(self) -> str:
        return self.message.control_id

    @property
    def instrument(self) -> str:
        return self.message.get("MSH-3.1") or self.message.get("MSH-4.1")


def is_order_query(message: Hl7Message) -> bool:
    return message.message_code == "QRY" and message.trigger_event in ("Q02", "")


def read_order_query(message: Hl7Message) -> OrderQuery:
    qrd = message.segment("QRD")
    barcodes = [code.split(message.separators.component)[0].strip() for code in qrd.repetitions(8)] if qrd else []
    return OrderQuery(message, [code for code in barcodes if code])


def _new_control_id() -> str:
    return uuid.uuid4().hex[:20]


class OrderResponseBuilder:
    """Builds the QCK and DSRs answering one query (text, segments ended by CR)."""

    def __init__(
        self,
        query: OrderQuery,
        *,
        now: datetime,
        control_ids: Callable[[], str] = _new_control_id,
    ) -> None:
        self._query = query
        self._now = now.strftime("%Y%m%d%H%M%S")
        self._control_ids = control_ids
        self._s = query.message.separators

    def query_ack(self, found: bool) -> str:
        """QCK^Q02: QAK-2 `OK` when DSRs follow, `NF` when nothing was found."""
        return self._message("QCK^Q02", ["QAK", "SR", "OK" if found else "NF", ""])

    def order_responses(self, orders: Sequence[OrderRequest]) -> list[str]:
        """One DSR^Q03 per order, the last ending `DSC||`."""
        answers = []
        for number, order in enumerate(orders, start=1):
            last = number == len(orders)
            segments = [["QAK", "SR", "OK", ""]]
            segments += [self._echo("QRD"), self._echo("QRF")]
            segments += [["DSP", str(row), "", value, "", "", ""] for row, value in self._rows(order)]
            segments.append(["DSC", "" if last else str(number), ""])
            answers.append(self._message("DSR^Q03", *segments))
        return answers

    def _rows(self, order: OrderRequest) -> list[tuple[int, str]]:
        s = self._s
        patient = order.patient
        name = " ".join(part for part in (patient.family_name, patient.given_name) if part)
        birth = patient.birth_date
        values = {
            1: patient.practice_id,
            3: name,
            4: birth + "0" * (14 - len(birth)) if birth.isdigit() and len(birth) < 14 else birth,
            5: patient.sex,
            21: order.specimen_id,
            22: order.instrument_specimen_id,
            23: order.collected_at or order.requested_at,
            24: "Y" if order.priority.upper() in ("S", "STAT", "Y") else "N",
            26: order.specimen_type,
        }
        for key, value in order.device_fields.items():
            if key.isdigit() and 1 <= int(key) <= FIXED_DSP_ROWS:
                values[int(key)] = value
        rows = [(row, s.escape_text(values.get(row, ""))) for row in range(1, FIXED_DSP_ROWS + 1)]
        rows += [
            (FIRST_TEST_ROW + offset, s.escape_text(code) + s.component * 3)
            for offset, code in enumerate(order.tests)
        ]
        return rows

    def _echo(self, name: str) -> list[str]:
        segment: Segment | None = self._query.message.segment(name)
        return list(segment.fields) if segment is not None else [name]

    def _message(self, message_type: str, *segments: list[str]) -> str:
        s = self._s
        header = self._query.message.header
        msh = [""] * 18
        msh[0:2] = ["MSH", s.encoding_characters]
        msh[2], msh[3] = header.field(5), header.field(6)
        msh[4], msh[5] = header.field(3), header.field(4)
        msh[6] = self._now
        msh[8] = message_type.replace("^", s.component)
        msh[9] = self._control_ids()
        msh[10] = header.field(11) or "P"
        msh[11] = header.field(12) or "2.3.1"
        msh[17] = header.field(18)
        msa = ["MSA", "AA", header.control_id, "Message accepted", "", "", "0", ""]
        lines = [s.field.join(msh) + s.field * 3, s.field.join(msa), s.field.join(["ERR", "0", ""])]
        lines += [s.field.join(segment) for segment in segments]
        return "\r".join(lines) + "\r"
