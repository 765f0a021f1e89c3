"""The demo's laboratory act: two analysers, one LIS, every value traceable.

An HL7 analyser (MLLP) and an ASTM analyser (TCP) send results to the engine's listeners in
conf/channels/lis_analyser_*.yaml; the results reach a LIS stand-in as JSON with the LIS's
item codes; both analysers ask the LIS for a barcode's orders and get them; a result with a
code missing from the code table fails on the engine's side without blaming the analyser;
and the diff of the first message shows the device's `5,12` next to the LIS's `5.12`.
Every port comes from the lis channels in conf/.
"""

from __future__ import annotations

import time
from typing import Any

from engine.demo.acts import DemoAct, DemoStage
from engine.formats.diff import DiffEntry, diff_payloads
from engine.serving import LocalServer
from plugins.lis_device.astm.frames import ACK, frames_for_message
from plugins.lis_device.astm.records import AstmMessage
from plugins.lis_device.astm.source import AstmTcpServer
from plugins.lis_device.hl7.reader import Hl7Message
from plugins.lis_device.mllp_source import MllpLisListener
from plugins.lis_device.simulator.analyser import AstmAnalyser
from plugins.lis_device.simulator.hl7_analyser import Hl7Analyser
from plugins.lis_device.simulator.lis_standin import LisStandIn

HL7_CHANNEL = "lis_analyser_hl7"
ASTM_CHANNEL = "lis_analyser_astm"

HL7_RESULTS = (
    "MSH|^~\\&|SYN-CL|LAB|||20261122090000||ORU^R01|D1|P|2.3.1||||0||GB18030|||\r"
    "PID|1||SYN-PAT-90||演示^甲||19800101|F\r"
    "OBR|1|BC-DEMO-01|||||20261122085500\r"
    "OBX|1|NM|GLU|葡萄糖|5,12|mmol/L|3,90-6,10|N|||F||||\r"
    "OBX|2|NM|K|钾|4,3|mmol/L|3,5-5,3|N|||F||||\r"
).encode("gb18030")
HL7_UNMAPPED = (
    "MSH|^~\\&|SYN-CL|LAB|||20261122090500||ORU^R01|D2|P|2.3.1||||0||GB18030|||\r"
    "OBR|1|BC-DEMO-05\r"
    "OBX|1|NM|GLU|葡萄糖|6,02|mmol/L||N|||F\r"
    "OBX|2|NM|HBA1C|糖化血红蛋白|5,9|%||N|||F\r"
).encode("gb18030")
HL7_QUERY = (
    b"MSH|^~\\&|SYN-CL|LAB|||20261122090100||QRY^Q02|D3|P|2.3.1||||||ASCII|||\r"
    b"QRD|20261122090100|R|D|1|||RD|BC-DEMO-03|OTH|||T|\r"
    b"QRF||||||RCT|COR|ALL||\r"
)
ASTM_RESULTS = (
    b"H|\\^&|||SYN-AU^2.1|||||LIS||P|LIS2-A2|20261122090200\r"
    b"P|1||SYN-PAT-91\r"
    b"O|1|BC-DEMO-02||^^^ALT\\^^^AST|R||||||N\r"
    b"R|1|^^^ALT|35|U/L|9-50|N||F||||20261122085800\r"
    b"R|2|^^^AST|61|U/L|15-40|H||F||||20261122085800\r"
    b"O|2|QC-LOT-7||^^^ALT|R||||||Q\r"
    b"R|3|^^^ALT|42|U/L|38-46|N||F||||20261122085900\r"
    b"L|1|N\r"
)
ASTM_QUERY = b"H|\\^&|||SYN-AU^2.1|||||||RQ|LIS2-A2|20261122090300\rQ|1|^BC-DEMO-04||ALL||||||||O\rL|1|N\r"
ORDERS = {
    "BC-DEMO-03": {
        "specimen_id": "BC-DEMO-03", "tests": ["GLU", "CRE"], "priority": "S", "specimen_type": "serum",
        "patient": {"practice_id": "SYN-PAT-92", "family_name": "演示", "given_name": "乙", "sex": "M"},
    },
    "BC-DEMO-04": {
        "specimen_id": "BC-DEMO-04", "tests": ["ALT", "TBIL"], "specimen_type": "Serum",
        "patient": {"practice_id": "SYN-PAT-93", "family_name": "Demo", "sex": "F"},
    },
}


class LabAnalysersAct(DemoAct):
    """HL7 and ASTM analysers → engine → LIS, host queries back, one refusal explained."""

    name = "lis"
    title = "Lab analysers: HL7/MLLP and ASTM results to the LIS with its item codes, orders queried back"

    async def run(self, stage: DemoStage) -> bool:
        host, port = stage.peer_address(HL7_CHANNEL)
        lis = LisStandIn(ORDERS)
        async with LocalServer(lis.app(), host=host, port=port):
            return await _lab(stage, lis)


def _listener(stage: DemoStage, channel: str) -> tuple[str, int]:
    source = next(
        s for s in stage.daemon.engine.sources
        if isinstance(s, (MllpLisListener, AstmTcpServer)) and s.binding.channel == channel
    )
    return source.config.host, source.port


def _results_for(lis: LisStandIn, barcode: str) -> list[dict[str, Any]]:
    return [r for document in lis.results for r in document["results"] if r["specimen_barcode"] == barcode]


def _describe(results: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"{r['lis_code']} {r['lis_name']} {r['value']} {r['units']}{' (QC)' if r['qc'] else ''}" for r in results
    )


async def _lab(stage: DemoStage, lis: LisStandIn) -> bool:
    say, engine = stage.say, stage.daemon.engine
    hl7_at, astm_at = _listener(stage, HL7_CHANNEL), _listener(stage, ASTM_CHANNEL)
    say(f"HL7 analyser → MLLP {hl7_at[0]}:{hl7_at[1]}; ASTM analyser → TCP {astm_at[0]}:{astm_at[1]}")
    hl7 = await Hl7Analyser.connect(*hl7_at, timeout=15.0)
    astm = await AstmAnalyser.connect(*astm_at, reply_timeout=15.0)
    try:
        say("\n1. The HL7 analyser sends a result (GB18030, decimal commas: GLU 5,12)")
        started = time.perf_counter()
        ack = Hl7Message.parse(await hl7.send(HL7_RESULTS))
        say(f"   ACK {ack.get('MSA-1')} for {ack.get('MSA-2')} in {(time.perf_counter() - started) * 1000:.1f} ms "
            "(after the raw bytes were committed)")
        hl7_delivered = await stage.wait_for(lambda: bool(_results_for(lis, "BC-DEMO-01")), 15)
        say(f"   LIS received: {_describe(_results_for(lis, 'BC-DEMO-01')) or 'nothing'}")

        say("\n2. The ASTM analyser sends a patient and a QC specimen (E1381 frames, ACK after store)")
        report = await astm.send(frames_for_message(ASTM_RESULTS))
        astm_acked = report.completed and report.replies[-1] == [ACK]
        say(f"   {len(report.replies)} frames, every one ACKed: {astm_acked}")
        astm_delivered = await stage.wait_for(
            lambda: bool(_results_for(lis, "BC-DEMO-02")) and bool(_results_for(lis, "QC-LOT-7")), 15
        )
        say(f"   LIS received: {_describe(_results_for(lis, 'BC-DEMO-02') + _results_for(lis, 'QC-LOT-7'))}")

        say("\n3. Both analysers ask the LIS for a barcode's orders")
        answer = await hl7.query(HL7_QUERY)
        dsp = {s.value(1): s.value(3, component=1) for r in answer.responses for s in r.segments_named("DSP")}
        hl7_tests = [dsp[row] for row in sorted(dsp, key=int) if int(row) >= 29]
        say(f"   HL7 QRY^Q02 BC-DEMO-03 → QCK {answer.query_ack.get('QAK-2')}, {len(answer.responses)} DSR^Q03: "
            f"tests {', '.join(hl7_tests)}, STAT {dsp.get('24', '?')}")
        await astm.send(frames_for_message(ASTM_QUERY))
        download = AstmMessage.parse(await astm.receive(timeout=15.0))
        order = download.record("O")
        repeats = len(order.repeats(5)) if order is not None else 0
        astm_tests = [download.get(f"O.5({n}).4") for n in range(1, repeats + 1)]
        say(f"   ASTM Q BC-DEMO-04 → {''.join(r.type for r in download.records)}: tests {', '.join(astm_tests)}")
        queries_answered = hl7_tests[:2] == ["GLU", "CRE"] and astm_tests == ["ALT", "TBIL"]

        say("\n4. A result whose test code (HBA1C) is missing from the analyser's code table")
        refused_ack = Hl7Message.parse(await hl7.send(HL7_UNMAPPED))
        [failed] = [v for v in await engine.store.list_messages(channel=HL7_CHANNEL, status="failed")]
        say(f"   the analyser got {refused_ack.get('MSA-1')} (its message was fine); message {failed.id}: "
            f"{failed.status}, party {failed.party}, rule {failed.rule_id}")
        say(f"   {failed.reason}")
        unmapped_visible = failed.party == "engine" and not _results_for(lis, "BC-DEMO-05")
    finally:
        await hl7.close()
        await astm.close()

    say("\n5. Explain a value: device sent 5,12; what did the LIS receive?")
    first = await _first_result_message(stage)
    entry = await _value_change(stage, first, "5,12") if first else None
    if entry is not None:
        say(f"   hisbridge diff {first}")
        say(f"   ~ {entry.path}: {entry.old} → {entry.new}")
        say(f"   device sent {entry.old}; LIS received {(entry.new or '').strip(chr(34))} (item 1001 葡萄糖)")
    say(f"   hisbridge show {failed.id}      # the refused result, raw bytes and verdict")
    say(f"   hisbridge replay {failed.id}    # after adding HBA1C to conf/lis_codes/syn_cl.csv")
    return all((hl7_delivered, astm_acked, astm_delivered, queries_answered, unmapped_visible, entry is not None))


async def _first_result_message(stage: DemoStage) -> str | None:
    views = await stage.daemon.engine.store.list_messages(channel=HL7_CHANNEL, status="sent")
    results = [v for v in views if v.content_type == "application/hl7-v2"]
    return min(results, key=lambda v: v.id).id if results else None


async def _value_change(stage: DemoStage, message_id: str, device_value: str) -> DiffEntry | None:
    engine = stage.daemon.engine
    raw = await engine.store.get_stage(message_id, "raw")
    sent = await engine.store.get_stage(message_id, "sent")
    if raw is None or sent is None:
        return None
    entries = diff_payloads(raw, sent, engine.formats)
    return next((e for e in entries if e.kind == "changed" and e.old == device_value), None)
