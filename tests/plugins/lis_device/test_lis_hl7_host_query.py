"""HL7 order query over a real MLLP socket (source kind `mllp_lis`): the analyser sends a
QRY^Q02, the engine asks the LIS (a sync memory destination) and answers QCK^Q02 then
DSR^Q03 in the Mindray layout, or QAK `NF` in time when the LIS is down, slow or suspended."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.message import Payload
from engine.runtime import Engine
from plugins.lis_device.astm.queries import OrderPatient, OrderRequest
from plugins.lis_device.hl7.order_query import OrderResponseBuilder, read_order_query
from plugins.lis_device.hl7.reader import Hl7Message
from plugins.lis_device.simulator.hl7_analyser import Hl7Analyser, QueryAnswer
from tests.plugins.lis_device.lis_engine import start_engine, stored_raws
from tests.plugins.lis_device.samples import shared_sample

QUERY = (
    b"MSH|^~\\&|SYN-CL|LAB|||20261122082000||QRY^Q02|Q77|P|2.3.1||||||ASCII|||\r"
    b"QRD|20261122082000|R|D|1|||RD|BC-H7001|OTH|||T|\r"
    b"QRF||||||RCT|COR|ALL||\r"
)
ORDERS = {
    "orders": [
        {
            "specimen_id": "BC-H7001",
            "tests": ["1", "5"],
            "priority": "S",
            "specimen_type": "serum",
            "collected_at": "20261122073000",
            "patient": {"practice_id": "SYN-PAT-31", "family_name": "测试", "given_name": "甲", "sex": "F",
                        "birth_date": "19800101"},
            "device_fields": {"15": "outpatient", "28": "Dept^1"},
        },
        {"specimen_id": "BC-NOT-ASKED", "tests": ["9"]},
    ]
}


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    running = await start_engine(tmp_path, "mllp_lis", host_query_timeout=0.5, charset="utf-8")
    yield running
    await running.stop()


async def ask(engine: Engine, query: bytes = QUERY) -> QueryAnswer:
    analyser = await Hl7Analyser.connect("127.0.0.1", engine.sources[0].port, timeout=5.0)  # type: ignore[attr-defined]
    try:
        return await analyser.query(query)
    finally:
        await analyser.close()


def dsp(response: Hl7Message) -> dict[int, str]:
    return {int(segment.value(1)): segment.raw(3) for segment in response.segments_named("DSP")}


async def test_the_lis_orders_come_back_as_qck_then_dsr(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    answer = await ask(engine)

    assert answer.found
    qck = answer.query_ack
    assert (qck.message_code, qck.trigger_event, qck.get("MSA-1"), qck.get("MSA-2")) == ("QCK", "Q02", "AA", "Q77")
    [dsr] = answer.responses
    assert (dsr.message_code, dsr.trigger_event, dsr.get("MSA-2"), dsr.get("QAK-2")) == ("DSR", "Q03", "Q77", "OK")
    assert dsr.get("QRD-8") == "BC-H7001" and dsr.get("DSC-1") == ""
    rows = dsp(dsr)
    assert sorted(rows) == list(range(1, 31))
    assert (rows[1], rows[3], rows[4], rows[5]) == ("SYN-PAT-31", "测试 甲", "19800101000000", "F")
    assert (rows[21], rows[23], rows[24], rows[26]) == ("BC-H7001", "20261122073000", "Y", "serum")
    assert (rows[15], rows[28]) == ("outpatient", "Dept\\S\\1")  # a component separator is escaped
    assert (rows[29], rows[30]) == ("1^^^", "5^^^")
    [request] = memory_peer("orders").requests
    asked = json.loads(request.body)
    assert (asked["kind"], asked["barcodes"], asked["control_id"]) == ("hl7_host_query", ["BC-H7001"], "Q77")
    assert asked["message"].startswith("MSH|^~\\&|SYN-CL|")


async def test_the_analysers_ack_of_the_dsr_is_not_stored_as_a_message(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    await ask(engine)
    views = await engine.store.list_messages(channel="analyser")
    assert [view.content_type for view in views] == ["application/json"]  # the query, nothing else


async def test_an_unknown_barcode_gets_not_found_and_no_dsr(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json({"orders": []})
    answer = await ask(engine)
    assert answer.query_ack.get("QAK-2") == "NF" and answer.responses == []


async def test_lis_down_answers_not_found_and_records_why(engine: Engine) -> None:
    memory_peer("orders").down = True
    answer = await ask(engine)
    assert answer.query_ack.get("QAK-2") == "NF"
    [query] = await engine.store.list_messages(channel="analyser")
    assert (query.status, query.party) == ("failed", "network")


async def test_a_slow_lis_is_not_waited_for(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    memory_peer("orders").delay = 1.5  # beyond host_query_timeout (0.5 s), within the analyser's 5 s
    answer = await ask(engine)
    assert answer.query_ack.get("QAK-2") == "NF"


async def test_a_suspended_lis_answers_not_found_without_calling_it(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    await engine.suspend("lis_orders", reason="LIS maintenance", by="test")
    answer = await ask(engine)
    assert answer.query_ack.get("QAK-2") == "NF"
    assert memory_peer("orders").requests == []


async def test_results_on_the_same_connection_are_still_stored_and_acked(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    result = b"MSH|^~\\&|SYN-CL|LAB|||20261122082100||ORU^R01|R1|P|2.3.1\rOBR|1|BC-H7001\rOBX|1|NM|1|GLU|5.2\r"
    analyser = await Hl7Analyser.connect("127.0.0.1", engine.sources[0].port, timeout=5.0)  # type: ignore[attr-defined]
    try:
        assert (await analyser.query(QUERY)).found
        ack = Hl7Message.parse(await analyser.send(result))
    finally:
        await analyser.close()
    assert (ack.get("MSA-1"), ack.get("MSA-2")) == ("AA", "R1")
    assert [raw.body for raw in await stored_raws(engine) if raw.content_type == "application/hl7-v2"] == [result]


async def test_the_mindray_sample_query_reads_its_barcode_and_the_answer_matches_the_manual() -> None:
    query = read_order_query(Hl7Message.parse(shared_sample("hl7", "mindray_cl_qry_q02_barcode_manual.mllp")))
    assert (query.barcodes, query.control_id) == (["0019"], "4")
    order = OrderRequest(
        "0019",
        ("1", "2", "5"),
        OrderPatient(practice_id="1212", family_name="Tommy", birth_date="19620824", sex="M"),
        instrument_specimen_id="3",
        collected_at="20070301183500",
        specimen_type="serum",
        device_fields={"2": "27", "6": "O", "15": "outpatient", "17": "own", "25": "1"},
    )
    builder = OrderResponseBuilder(query, now=datetime(2012, 5, 8, 11, 1, 31), control_ids=lambda: "4")
    [built] = builder.order_responses([order])
    manual = shared_sample("hl7", "mindray_cl_dsr_q03_order_download_manual.mllp").strip(b"\x0b\x1c\r").decode()
    differing = [
        (theirs, ours)
        for theirs, ours in zip(manual.split("\r"), built.rstrip("\r").split("\r"), strict=True)
        if theirs != ours
    ]
    # Only QRD differs: we echo the query's QRD; the manual's example answers another query.
    assert [ours for _, ours in differing] == ["QRD|20120508104700|R|D|1|||RD|0019|OTH|||T|"]


async def test_several_orders_make_several_dsrs_the_last_one_closing() -> None:
    query = read_order_query(Hl7Message.parse(QUERY))
    orders = [OrderRequest("BC-H7001", ("1",)), OrderRequest("BC-H7001", ("2",))]
    built = OrderResponseBuilder(query, now=datetime(2026, 11, 22)).order_responses(orders)
    closing = [Hl7Message.parse(text).get("DSC-1") for text in built]
    assert closing == ["1", ""]
