"""The simulated PACS itself: its WSDL, its control API, and running it as a program."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.adapters.base import Wire
from engine.errors import PermanentError, TransientError
from engine.message import Payload
from engine.mllp.ack import Outcome, acknowledge
from engine.mllp.framing import MllpDecoder, encode
from engine.transports.http import HttpClients
from engine.transports.soap import SoapCaller, WsdlCache
from plugins.pacs.hl7_adapter import PacsHl7Adapter, PacsHl7Config
from plugins.pacs.oru import map_oru, store_ready_oru
from plugins.pacs.simulator import Fault, PacsServer, build_oru, send_report
from tests.plugins.pacs.conftest import exam_order


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def test_the_wsdl_names_this_server(pacs: PacsServer, http: httpx.AsyncClient) -> None:
    response = await http.get(pacs.wsdl_url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    assert f'location="{pacs.url}/ExamOrderService"' in response.text


async def test_faults_are_injected_over_http_and_calls_listed(pacs: PacsServer, http: httpx.AsyncClient) -> None:
    injected = await http.post(f"{pacs.url}/_control/faults", json={"kind": "reject", "code": 7, "text": "设备维护"})
    assert injected.status_code == 200
    refused = await http.post(f"{pacs.rest_url}/exam-orders", json=exam_order("ACC8001"))
    assert refused.status_code == 422 and refused.json()["error"] == {"code": "7", "message": "设备维护"}
    accepted = await http.post(f"{pacs.rest_url}/exam-orders", json=exam_order("ACC8001"))
    assert accepted.status_code == 201
    calls = (await http.get(f"{pacs.url}/_control/calls")).json()
    assert [call["outcome"] for call in calls] == ["reject", "accepted"]
    assert (await http.post(f"{pacs.url}/_control/faults", json={"kind": "explode"})).status_code == 400
    await http.post(f"{pacs.url}/_control/reset")
    assert (await http.get(f"{pacs.rest_url}/exam-orders/ACC8001")).status_code == 404


async def test_a_fault_can_target_one_operation(pacs: PacsServer, http: httpx.AsyncClient) -> None:
    await http.post(f"{pacs.url}/_control/faults", json={"kind": "soap_fault", "operation": "CancelExamOrder"})
    clients = HttpClients()
    try:
        soap = SoapCaller(pacs.wsdl_url, clients, timeout=5, cache=WsdlCache())
        order = {
            "accessionNumber": "ACC8002",
            "patientId": "P-TEST-2",
            "patientName": "测试",
            "procedureCode": "X",
            "procedureName": "胸部DR",
            "modality": "DX",
            "scheduledAt": "2026-11-23T10:00:00",
        }
        placed = await soap.call("PlaceExamOrder", Wire(), order=order)
        assert placed["resultCode"] == 0  # zeep unwraps a response with one part
    finally:
        await clients.aclose()
    assert next(iter(pacs.simulator.state.faults)).operation == "CancelExamOrder"  # still waiting for its operation


async def test_a_soap_request_that_is_not_xml_gets_a_client_fault(pacs: PacsServer, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{pacs.url}/ExamOrderService", content=b"<not-closed", headers={"content-type": "text/xml"}
    )
    assert response.status_code == 500 and b"<faultcode>soap:Client</faultcode>" in response.content


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "plugins.pacs.simulator"],
        [sys.executable, "-m", "engine.cli", "simulate", "pacs"],
    ],
    ids=["python -m", "hisbridge simulate pacs"],
)
async def test_runs_as_a_program(http: httpx.AsyncClient, command: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *command, "--port", "0", "--hl7-port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        url = line.split(" on ", 1)[1].split()[0]
        assert (await http.get(f"{url}/ExamOrderService?wsdl")).status_code == 200
        host, port = line.rsplit("MLLP ", 1)[1].rstrip(")\n").split(":")
        _, writer = await asyncio.open_connection(host, int(port))
        writer.close()
        await writer.wait_closed()
    finally:
        process.terminate()
        await process.wait()


# -- HL7 over MLLP ---------------------------------------------------------------------------


async def test_orders_over_mllp_are_acked_refused_or_deferred(pacs: PacsServer) -> None:
    clients = HttpClients()
    config = PacsHl7Config.model_validate({"host": "127.0.0.1", "port": pacs.mllp.port, "ack_timeout": 5})
    adapter = PacsHl7Adapter(config, clients)
    try:
        order = adapter.transform(Payload.from_json(exam_order("ACC8101")))
        await adapter.send(order, Wire())
        assert pacs.simulator.state.exams["ACC8101"].order["patientId"] == "P-TEST-0001"

        with pytest.raises(PermanentError) as duplicate:
            await adapter.send(adapter.transform(Payload.from_json(exam_order("ACC8101"))), Wire())
        assert duplicate.value.detail["ack_code"] == "AE" and "已存在" in str(duplicate.value.detail["ack_text"])

        pacs.simulator.state.inject(Fault("ar", operation="ORM", text="busy"))
        with pytest.raises(TransientError) as deferred:
            await adapter.send(adapter.transform(Payload.from_json(exam_order("ACC8102"))), Wire())
        assert deferred.value.detail["ack_code"] == "AR"
    finally:
        await adapter.aclose()
        await clients.aclose()


async def test_the_simulator_sends_a_report_his_side_acknowledges(pacs: PacsServer) -> None:
    exam = pacs.simulator.state.place("ACC8103", {"patientId": "P-TEST-3", "patientName": "测试患者丁"})
    report = build_oru(exam, findings="双肺纹理清晰。", impression="胸部正位片未见异常。", pdf=b"%PDF-1.4 test")
    assert map_oru(store_ready_oru(report, max_attachment_bytes=1024).message).impression == "胸部正位片未见异常。"

    async def his_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder, messages = MllpDecoder(), []
        while not messages and (data := await reader.read(65536)):
            messages = decoder.feed(data)
        writer.write(encode(acknowledge(messages[0], Outcome.ACCEPT).payload))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(his_listener, "127.0.0.1", 0)
    try:
        ack = await send_report("127.0.0.1", server.sockets[0].getsockname()[1], report)
    finally:
        server.close()
        await server.wait_closed()
    assert b"MSA|AA|" in ack
