"""Host query over a real socket: the analyser asks for a barcode's orders, the engine asks
the LIS (a sync memory destination) and answers with an order download, or with "no
orders" in time when the LIS is down, slow or suspended."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.adapters.memory import memory_peer, reset_memory_peers
from engine.message import Payload
from engine.runtime import Engine
from plugins.lis_device.astm.frames import ACK, ENQ, frames_for_message
from plugins.lis_device.astm.queries import read_orders
from plugins.lis_device.astm.records import AstmMessage
from plugins.lis_device.simulator.analyser import AstmAnalyser, transfers_of
from tests.plugins.lis_device.lis_engine import start_engine
from tests.plugins.lis_device.samples import fixture_bytes

QUERY = fixture_bytes("astm", "host_query_two_barcodes_records.astm")
ORDERS = {
    "orders": [
        {
            "specimen_id": "BC240313001",
            "tests": ["GLU", "K"],
            "priority": "S",
            "specimen_type": "Serum",
            "patient": {"practice_id": "SYN-PAT-07", "family_name": "Synthetic", "sex": "F"},
        },
        {
            "specimen_id": "BC240313002",
            "tests": ["ALT"],
            "patient": {"practice_id": "SYN-PAT-07", "family_name": "Synthetic", "sex": "F"},
        },
        {"specimen_id": "BC-NOT-ASKED", "tests": ["NA"]},
    ]
}


@pytest.fixture(autouse=True)
def fresh_peers() -> None:
    reset_memory_peers()


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    running = await start_engine(tmp_path, host_query_timeout=0.5)
    yield running
    await running.stop()


async def ask(engine: Engine, query: bytes = QUERY) -> AstmMessage:
    analyser = await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]
    try:
        [frames] = transfers_of(query)
        report = await analyser.send(frames)
        assert report.completed and report.replies[-1] == [ACK]
        download = await analyser.receive(timeout=5.0)
    finally:
        await analyser.close()
    return AstmMessage.parse(download)


async def test_the_lis_orders_are_downloaded_to_the_analyser(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    download = await ask(engine)

    orders = read_orders(download)
    assert [(o.specimen_id, o.tests, o.priority) for o in orders] == [
        ("BC240313001", ("GLU", "K"), "S"),
        ("BC240313002", ("ALT",), "R"),
    ]
    assert [record.type for record in download.records] == ["H", "P", "O", "O", "L"]
    assert download.get("O.26") == "Q" and download.get("L.3") == "N"
    assert download.get("H.10") == "SYN-ANALYSER"
    [request] = memory_peer("orders").requests
    asked = json.loads(request.body)
    assert asked["kind"] == "astm_host_query"
    assert asked["barcodes"] == ["BC240313001", "BC240313002"]
    assert asked["transcript"].encode("latin-1").startswith(b"\x05\x06\x021H|")


async def test_an_unknown_barcode_gets_no_information(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json({"orders": []})
    download = await ask(engine)
    assert [record.type for record in download.records] == ["H", "L"]
    assert download.get("L.3") == "I"


async def test_lis_down_answers_no_orders_and_records_the_failure(engine: Engine) -> None:
    memory_peer("orders").down = True
    download = await ask(engine)

    assert download.get("L.3") == "I"
    [query] = await engine.store.list_messages(channel="analyser")
    assert (query.status, query.party) == ("failed", "network")
    assert "memory peer is down" in (query.reason or "")


async def test_a_slow_lis_is_not_waited_for(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    memory_peer("orders").delay = 1.5  # beyond host_query_timeout (0.5 s), within the test's 5 s
    download = await ask(engine)
    assert download.get("L.3") == "I"


async def test_a_suspended_lis_answers_no_orders_without_calling_it(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    await engine.suspend("lis_orders", reason="LIS maintenance", by="test")
    download = await ask(engine)
    assert download.get("L.3") == "I"
    assert memory_peer("orders").requests == []


async def test_results_never_reach_the_order_service(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    await ask(engine)
    [query] = await engine.store.list_messages(channel="analyser")
    assert {d.destination: d.status for d in query.deliveries}["lis"] == "filtered"


async def test_contention_the_analyser_wins_and_the_download_follows(engine: Engine) -> None:
    memory_peer("orders").reply = Payload.from_json(ORDERS)
    results = frames_for_message(b"H|\\^&|||SYN-ANALYSER\rP|1\rO|1|BC9||^^^GLU\rR|1|^^^GLU|6.0\rL|1|N\r")
    analyser = await AstmAnalyser.connect("127.0.0.1", engine.sources[0].port, reply_timeout=5.0)  # type: ignore[attr-defined]
    try:
        [frames] = transfers_of(QUERY)
        assert (await analyser.send(frames)).completed
        assert await analyser.read_byte() == ENQ  # the engine starts its order download ...
        await analyser.write(bytes((ENQ,)))  # ... while the analyser wants to send results
        report = await analyser.send(results)  # the analyser has priority: its transfer goes first
        download = AstmMessage.parse(await analyser.receive(timeout=5.0))
    finally:
        await analyser.close()
    assert report.completed and report.replies[-1] == [ACK]
    assert [o.specimen_id for o in read_orders(download)] == ["BC240313001", "BC240313002"]
    raws = [v for v in await engine.store.list_messages(channel="analyser") if v.content_type == "application/x-astm"]
    assert len(raws) == 1
