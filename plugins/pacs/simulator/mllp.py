"""The simulated PACS's HL7 side: an MLLP endpoint that ACKs ORM^O01 orders, and a sender
that delivers ORU^R01 reports to HIS's (the engine's) MLLP listener."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime

import structlog

from engine.mllp.ack import AckError, Outcome, acknowledge
from engine.mllp.framing import MllpDecoder, encode
from engine.mllp.header import Hl7HeaderError, MshHeader, decode_message
from plugins.pacs.orm import escape, segment
from plugins.pacs.simulator.state import Call, Exam, OrderRefused, PacsState

log = structlog.get_logger(__name__)

HL7_OPERATION = "ORM"


class MllpEndpoint:
    """`await endpoint.start()`; orders change `state` like the SOAP and REST sides do."""

    def __init__(self, state: PacsState, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.state = state
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        decoder = MllpDecoder()
        try:
            while data := await reader.read(65536):
                for message in decoder.feed(data):
                    writer.write(encode(self.answer(message)))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._connections.discard(task)
            writer.close()

    def answer(self, message: bytes) -> bytes:
        """The ACK for one message: AA applied, AE refused (with why), AR when told to."""
        fault = self.state.take_fault(HL7_OPERATION)
        if fault is not None and fault.kind in ("ae", "ar"):
            outcome = Outcome.ERROR if fault.kind == "ae" else Outcome.REJECT
            self.state.calls.append(Call("hl7", HL7_OPERATION, None, fault.kind))
            return acknowledge(message, outcome, error=AckError("207", fault.text)).payload
        try:
            control, accession, patient = _order_control(message)
            _apply(self.state, control, accession, patient)
        except OrderRefused as refused:
            self.state.calls.append(Call("hl7", HL7_OPERATION, None, "rejected"))
            condition = "204" if refused.status == 404 else "205" if refused.status == 409 else "101"
            return acknowledge(message, Outcome.ERROR, error=AckError(condition, refused.message)).payload
        self.state.calls.append(Call("hl7", HL7_OPERATION, accession, "accepted"))
        return acknowledge(message, Outcome.ACCEPT).payload


def _order_control(message: bytes) -> tuple[str, str, dict[str, str]]:
    """(ORC-1, OBR-18, the patient's PID-3.1 id and PID-5 name) of an order."""
    decoded = decode_message(message)
    try:
        header = MshHeader.parse(decoded.text)
    except Hl7HeaderError as exc:
        raise OrderRefused(3, exc.reason, status=422) from exc
    if header.message_code != "ORM":
        raise OrderRefused(3, f"unsupported message type {header.field(9)}", status=422)
    separator = header.separators.field
    rows = {line[:3]: line.split(separator) for line in decoded.text.split("\r") if line[:3] in ("PID", "ORC", "OBR")}
    pid, orc, obr = rows.get("PID", []), rows.get("ORC", []), rows.get("OBR", [])
    control = orc[1] if len(orc) > 1 else ""
    accession = obr[18] if len(obr) > 18 else ""
    component = header.separators.component
    patient = {
        "patientId": pid[3].split(component)[0] if len(pid) > 3 else "",
        "patientName": "".join(pid[5].split(component)[:2]) if len(pid) > 5 else "",
    }
    return control, accession, patient


def _apply(state: PacsState, control: str, accession: str, patient: dict[str, str]) -> Exam:
    order = {"accessionNumber": accession, **patient}
    if control == "NW":
        return state.place(accession, order)
    if control == "XO":
        return state.change(accession, order)
    if control in ("CA", "DC"):
        return state.cancel(accession)
    raise OrderRefused(3, f"unsupported order control {control!r} (ORC-1)", status=422)


def build_oru(
    exam: Exam,
    *,
    findings: str,
    impression: str,
    author: tuple[str, str] = ("R01", "测试报告医生"),
    pdf: bytes | None = None,
    now: datetime | None = None,
) -> bytes:
    """A final report for `exam` as the simulated PACS sends it (v2.3.1, UTF-8)."""
    moment = (now or datetime.now()).strftime("%Y%m%d%H%M%S")
    accession = escape(exam.accession_number)
    control_id = f"R{moment}{exam.accession_number}"[:20]
    patient_name = str(exam.order.get("patientName") or "")
    segments = [
        f"MSH|^~\\&|PACS|RADIOLOGY|HIS|HOSPITAL|{moment}||ORU^R01|{control_id}|P|2.3.1||||||UNICODE UTF-8",
        segment("PID", {3: escape(str(exam.order.get("patientId") or "")), 5: escape(patient_name)}),
        segment(
            "OBR",
            {1: "1", 3: accession, 18: accession, 22: moment, 25: "F", 32: f"{escape(author[0])}&{escape(author[1])}"},
        ),
        segment("OBX", {1: "1", 2: "ST", 3: "113014^DICOM Study^DCM", 5: exam.study_instance_uid, 11: "F"}),
        segment("OBX", {1: "2", 2: "TX", 3: "59776-5^检查所见^LN", 5: escape(findings), 11: "F"}),
        segment("OBX", {1: "3", 2: "TX", 3: "19005-8^诊断意见^LN", 5: escape(impression), 11: "F"}),
    ]
    if pdf is not None:
        data = base64.b64encode(pdf).decode("ascii")
        segments.append(
            segment(
                "OBX",
                {
                    1: "4",
                    2: "ED",
                    3: "18748-4^Diagnostic Imaging Report^LN",
                    5: f"^Application^PDF^Base64^{data}",
                    11: "F",
                },
            )
        )
    return ("\r".join(segments) + "\r").encode("utf-8")


async def send_report(host: str, port: int, report: bytes, *, timeout: float = 10.0) -> bytes:
    """Deliver one report over MLLP and return the ACK HIS's side answered."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    try:
        writer.write(encode(report))
        await writer.drain()
        decoder = MllpDecoder()
        while True:
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                raise ConnectionError("the receiver closed the connection without an ACK")
            acks = decoder.feed(data)
            if acks:
                return acks[0]
    finally:
        writer.close()
        await writer.wait_closed()


__all__ = ["HL7_OPERATION", "MllpEndpoint", "build_oru", "send_report"]
