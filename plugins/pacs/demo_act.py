"""The demo's imaging act: one exam from order to report, traced by its accession number.

HIS orders a CT through the engine; the engine sends it to the simulated PACS as HL7 ORM^O01
and adds it to its DICOM worklist; the CT modality finds it there; the PACS sends the report
back as a SOAP callback with its PDF; the engine stores the PDF once and HIS receives the
report with the PDF's reference. A report for an exam nobody ordered is refused with an AE.
Every port comes from the pacs channels in conf/.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from datetime import datetime, timedelta
from typing import Any

from engine.demo.acts import DemoAct, DemoStage
from engine.demo.upstream import Upstream
from plugins.pacs.report_sources import PacsOruSource, PacsReportHttpSource
from plugins.pacs.simulator import PacsServer, PacsSimulator, ReportSender, ReportWriting, query_worklist
from plugins.pacs.simulator.reports import SAMPLE_PDF
from plugins.pacs.simulator.state import Exam
from plugins.pacs.worklist_adapter import PacsWorklistAdapter

ORDERS = "pacs_exam_orders"
REPORTS = "pacs_reports"
SECONDS = 15


def exam_order(accession: str) -> dict[str, Any]:
    return {
        "action": "new",
        "accession_number": accession,
        "requested_procedure_id": f"RP{accession[-6:]}",
        "scheduled_step_id": f"SPS{accession[-6:]}",
        "patient": {"id": "P-DEMO-0001", "name": "测试患者", "sex": "F", "birth_date": "1980-02-29"},
        "procedure": {"code": "CT0101", "name": "头颅CT平扫", "body_part": "头颅"},
        "modality": "CT",
        "scheduled_at": (datetime.now() + timedelta(hours=1)).replace(microsecond=0).isoformat(),
        "station_ae": "CT_ROOM1",
        "requesting_physician": {"id": "D017", "name": "测试医生"},
        "reason": "头痛待查",
    }


class ExamAct(DemoAct):
    name = "pacs"
    title = "An exam from order to report: HIS → engine → PACS (HL7) and worklist, report back (SOAP) → HIS"

    async def run(self, stage: DemoStage) -> bool:
        pacs_host, pacs_port = stage.peer_address(ORDERS)
        his_host, his_port = stage.peer_address(REPORTS)
        async with PacsServer(PacsSimulator(), host=pacs_host, hl7_port=pacs_port) as pacs, \
                Upstream(host=his_host, port=his_port) as his:
            return await _exam(stage, pacs, his)


async def _exam(stage: DemoStage, pacs: PacsServer, his: Upstream) -> bool:
    say, engine = stage.say, stage.daemon.engine
    accession = f"DEMO{datetime.now():%m%d%H%M%S}"
    report_service = next(s for s in engine.sources if isinstance(s, PacsReportHttpSource))
    oru_source = next(s for s in engine.sources if isinstance(s, PacsOruSource))
    worklist = next(
        d.adapter for d in engine.channel(ORDERS).destinations if isinstance(d.adapter, PacsWorklistAdapter)
    )
    say(f"PACS simulator: HL7 on {pacs.mllp.host}:{pacs.mllp.port}; HIS report endpoint {his.url}/reports")
    say(f"engine: report service {report_service.wsdl_url}, worklist {worklist.settings.ae_title} on "
        f"{worklist.settings.host}:{worklist.scp.port}")

    say(f"\n1. HIS orders a head CT, accession number {accession}")
    answer = await stage.post(f"/api/v1/channels/{ORDERS}", exam_order(accession))
    say(f"   HTTP {answer.status_code}: message {answer.json().get('message_id')}")
    ordered = await stage.wait_for(lambda: accession in pacs.simulator.state.exams, SECONDS)
    say(f"   the PACS {'has' if ordered else 'never got'} the order (HL7 ORM^O01, ACK AA)")

    say("\n2. The CT modality asks the engine's worklist")
    items = await _worklist_items(worklist, accession)
    for item in items:
        step = item.ScheduledProcedureStepSequence[0]
        say(f"   found {item.AccessionNumber}: patient {item.PatientID}, {step.Modality} "
            f"{step.ScheduledProcedureStepDescription}, station {step.ScheduledStationAETitle}")
    if not items:
        say("   NOT in the worklist")

    say("\n3. The radiologist signs the report; the PACS sends it back as a SOAP callback with its PDF")
    sender = ReportSender(mllp=(oru_source.config.host, oru_source.port), http_url=report_service.url)
    try:
        exam = pacs.simulator.state.exams.get(accession) or Exam(accession, "unknown", {}, "")
        writing = ReportWriting("颅内未见明显异常密度影。", "头颅CT平扫未见明显异常。", SAMPLE_PDF)
        sent = await sender.send(exam, writing, style="soap")
        say(f"   engine answered: {sent.answer}")
        reached = await stage.wait_for(lambda: bool(his.accepted_bodies()), SECONDS)
        delivered = json.loads(his.accepted_bodies()[0]) if reached else {}
        attachments = delivered.get("attachments", [])
        say(f"   HIS {'received' if reached else 'did NOT receive'} the report: {delivered.get('impression', '-')}"
            f" with {len(attachments)} attachment(s) by reference")
        pdf_ok = await _pdf_by_reference(stage, accession, attachments)

        say("\n4. A report for an exam nobody ordered")
        stray = Exam("DEMO-UNORDERED", "final", {"patientId": "P-DEMO-0002", "patientName": "测试患者乙"}, "")
        refused = await sender.send(stray, ReportWriting("-", "-"), style="hl7")
        say(f"   ORU^R01 over MLLP answered: {refused.answer[:160]}")
    finally:
        await sender.aclose()

    say(f"\n5. Every hop of {accession}")
    views = await engine.store.list_messages(key=("accession_number", accession), limit=20)
    for view in reversed(views):
        hops = ", ".join(f"{d.destination} {d.status}" for d in view.deliveries)
        say(f"   {view.received_at.astimezone():%H:%M:%S}  {view.channel:<18} {view.status:<8} → {hops}")
    say(f"   hisbridge messages --key accession_number={accession}")
    say(f"   hisbridge show {views[0].id}" if views else "")
    channels = {view.channel for view in views}
    return bool(
        ordered and items and sent.accepted and reached and pdf_ok and not refused.accepted
        and {ORDERS, REPORTS} <= channels
    )


async def _worklist_items(worklist: PacsWorklistAdapter, accession: str) -> list[Any]:
    """Ask as the modality would until the order is there (the engine applies it asynchronously)."""
    host = "127.0.0.1" if worklist.settings.host in ("0.0.0.0", "") else worklist.settings.host
    deadline = time.monotonic() + SECONDS
    while True:
        items = await asyncio.to_thread(query_worklist, host, worklist.scp.port, accession=accession,
                                        station_ae="CT_ROOM1", called_ae=worklist.settings.ae_title)
        if items or time.monotonic() > deadline:
            return items
        await asyncio.sleep(0.2)


async def _pdf_by_reference(stage: DemoStage, accession: str, attachments: list[dict[str, Any]]) -> bool:
    if not attachments:
        return False
    ref = attachments[0]["ref"]
    views = await stage.daemon.engine.store.list_messages(channel=REPORTS, key=("accession_number", accession))
    if not views:
        return False
    answer = await stage.get(f"/api/v1/messages/{views[0].id}/blobs/{ref}")
    same = answer.status_code == 200 and answer.content == SAMPLE_PDF
    stored = base64.b64encode(SAMPLE_PDF) in b"".join(
        stage_row["body"] or b"" for stage_row in (await stage.daemon.engine.store.get_message(
            views[0].id, with_stages=True) or views[0]).stages)
    stage.say(f"   the PDF ({len(SAMPLE_PDF)} bytes) is stored once as {ref[:24]}…; an operator reads it with "
              f"GET /api/v1/messages/{views[0].id}/blobs/{ref[:20]}… ({'same bytes' if same else 'NOT the same'}); "
              f"the message's stages {'still hold a copy' if stored else 'hold only the reference'}")
    return same and not stored


__all__ = ["ExamAct"]
