"""The simulated PACS itself: its WSDL, its control API, and running it as a program."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from engine.adapters.base import Wire
from engine.transports.http import HttpClients
from engine.transports.soap import SoapCaller, WsdlCache
from plugins.pacs.simulator import PacsServer
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
    assert pacs.simulator.state.faults[0].operation == "CancelExamOrder"  # still waiting for its operation


async def test_a_soap_request_that_is_not_xml_gets_a_client_fault(pacs: PacsServer, http: httpx.AsyncClient) -> None:
    response = await http.post(
        f"{pacs.url}/ExamOrderService", content=b"<not-closed", headers={"content-type": "text/xml"}
    )
    assert response.status_code == 500 and b"<faultcode>soap:Client</faultcode>" in response.content


@pytest.mark.slow
async def test_runs_as_a_program(http: httpx.AsyncClient) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plugins.pacs.simulator", "--port", "0", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        url = line.split(" on ", 1)[1].split()[0]
        assert (await http.get(f"{url}/ExamOrderService?wsdl")).status_code == 200
    finally:
        process.terminate()
        await process.wait()
