"""Exam orders through a real daemon (HIS API on a socket) to the simulated PACS over SOAP and
REST: stored stages, business keys, verdicts for faults, and `hisbridge diff` of the envelopes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from engine.cli import main
from engine.daemon import Daemon
from engine.demo.upstream import Upstream
from engine.store.records import MessageView
from plugins.pacs.simulator import Fault, PacsServer
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, his, running_daemon, write_conf
from tests.plugins.pacs.conftest import exam_order


@pytest.fixture
def conf(tmp_path: Path, pacs: PacsServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    conf = write_conf(tmp_path, "http://127.0.0.1:9")
    outbox = {"initial_backoff": 0.05, "max_backoff": 0.2}
    channels = {
        "exam_orders_soap": {
            "name": "pacs_ws",
            "adapter": "pacs_soap",
            "config": {"wsdl": pacs.wsdl_url, "timeout": 2},
        },
        "exam_orders_rest": {
            "name": "pacs_api",
            "adapter": "pacs_rest",
            "config": {"base_url": pacs.rest_url, "timeout": 2},
        },
    }
    channels["exam_orders_hl7"] = {
        "name": "pacs_hl7_link",
        "adapter": "pacs_hl7",
        "config": {"host": "127.0.0.1", "port": pacs.mllp.port, "ack_timeout": 2},
    }
    for channel, destination in channels.items():
        spec = {"destinations": [{**destination, "delivery": "async", "outbox": outbox, "retry": {"attempts": 1}}]}
        (conf / "channels" / f"{channel}.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True))
    return conf


@pytest.fixture
async def daemon(conf: Path) -> AsyncIterator[Daemon]:
    async with running_daemon(conf) as running:
        yield running


async def order(client: httpx.AsyncClient, daemon: Daemon, channel: str, body: dict[str, Any]) -> str:
    response = await client.post(f"{daemon.url}/api/v1/channels/{channel}", json=body, headers=his())
    assert response.status_code == 202, response.text
    return str(response.json()["message_id"])


async def settled(daemon: Daemon, message_id: str, done: Callable[[MessageView], bool] | None = None) -> MessageView:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        view = await daemon.engine.store.get_message(message_id, with_stages=True)
        if view is not None and view.status not in ("received", "queued") and (done is None or done(view)):
            return view
        assert loop.time() < deadline, f"message {message_id} still {view.status if view else 'missing'}"
        await asyncio.sleep(0.05)


def stage(view: MessageView, name: str) -> dict[str, Any]:
    return next(s for s in view.stages if s["name"] == name)


async def test_an_order_via_soap_keeps_the_exact_envelopes(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    message_id = await order(client, daemon, "exam_orders_soap", exam_order("ACC6001"))
    view = await settled(daemon, message_id)

    assert view.status == "sent", view.reason
    assert view.business_keys == {
        "accession_number": "ACC6001",
        "requested_procedure_id": "RP6001",
        "scheduled_step_id": "SPS6001",
    }
    assert pacs.simulator.state.exams["ACC6001"].status == "scheduled"
    sent, answered = stage(view, "sent"), stage(view, "response_raw")
    assert b"<ns0:accessionNumber>ACC6001</ns0:accessionNumber>" in sent["body"]
    assert b"<resultCode>0</resultCode>" in answered["body"]


async def test_an_order_via_rest_and_one_accession_traced_across_hops(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    via_rest = await order(client, daemon, "exam_orders_rest", exam_order("ACC6002"))
    assert (await settled(daemon, via_rest)).status == "sent"
    via_soap = await order(client, daemon, "exam_orders_soap", exam_order("ACC6002", "change", room="CT3"))
    assert (await settled(daemon, via_soap)).status == "sent"

    found = await daemon.engine.store.find_by_key("accession_number", "ACC6002")
    assert sorted(found) == sorted([via_rest, via_soap])
    assert pacs.simulator.state.exams["ACC6002"].history == ["new", "change"]
    assert [(c.style, c.operation) for c in pacs.simulator.state.calls] == [
        ("rest", "new"),
        ("soap", "ChangeExamOrder"),
    ]


async def test_one_exam_across_hl7_soap_and_rest_hops(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    new = await order(client, daemon, "exam_orders_hl7", exam_order("ACC6010"))
    assert (await settled(daemon, new)).status == "sent"
    change = await order(client, daemon, "exam_orders_soap", exam_order("ACC6010", "change", room="CT2"))
    assert (await settled(daemon, change)).status == "sent"
    cancel = await order(client, daemon, "exam_orders_rest", {"action": "cancel", "accession_number": "ACC6010"})
    assert (await settled(daemon, cancel)).status == "sent"

    assert sorted(await daemon.engine.store.find_by_key("accession_number", "ACC6010")) == sorted([new, change, cancel])
    assert pacs.simulator.state.exams["ACC6010"].history == ["new", "change", "cancel"]
    hl7 = await daemon.engine.store.get_message(new, with_stages=True)
    assert hl7 is not None and stage(hl7, "sent")["body"].startswith(b"MSH|^~\\&|HIS|HOSPITAL|PACS|RADIOLOGY|")
    assert stage(hl7, "response_raw")["body"].split(b"\r")[1].startswith(b"MSA|AA|")


async def test_an_ae_ack_is_the_pacs_with_its_text(daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient) -> None:
    pacs.simulator.state.inject(Fault("ae", operation="ORM", text="检查设备 CT_ROOM1 停用"))
    view = await settled(daemon, await order(client, daemon, "exam_orders_hl7", exam_order("ACC6011")))
    assert (view.party, view.rule_id) == ("third_party", "core.ack.error")
    assert view.reason is not None and "CT_ROOM1 停用" in view.reason
    cancel = {"action": "cancel", "accession_number": "ACC6012"}
    view = await settled(daemon, await order(client, daemon, "exam_orders_hl7", cancel))
    assert (view.party, view.rule_id) == ("his", "pacs.his.unknown_accession_fault")


async def test_a_soap_fault_is_the_pacs_with_its_faultstring(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    pacs.simulator.state.inject(Fault("soap_fault", text="PACS 数据库连接失败"))
    view = await settled(daemon, await order(client, daemon, "exam_orders_soap", exam_order("ACC6003")))
    assert view.status in ("failed", "dead")
    assert (view.party, view.rule_id) == ("third_party", "pacs.third_party.soap_fault")
    assert view.reason is not None and "PACS 数据库连接失败" in view.reason


async def test_unknown_accession_is_his(daemon: Daemon, client: httpx.AsyncClient) -> None:
    cancel = {"action": "cancel", "accession_number": "ACC6404"}
    view = await settled(daemon, await order(client, daemon, "exam_orders_soap", cancel))
    assert (view.party, view.rule_id) == ("his", "pacs.his.unknown_accession_fault")
    view = await settled(daemon, await order(client, daemon, "exam_orders_rest", cancel))
    assert (view.party, view.rule_id) == ("his", "pacs.his.unknown_accession")


async def test_malformed_xml_is_the_pacs(daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient) -> None:
    pacs.simulator.state.inject(Fault("malformed"))
    view = await settled(daemon, await order(client, daemon, "exam_orders_soap", exam_order("ACC6005")))
    assert (view.party, view.rule_id) == ("third_party", "pacs.third_party.malformed_xml")
    assert b"<broken" in stage(view, "response_raw")["body"]


async def test_bad_order_is_refused_to_his_at_once(daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient) -> None:
    body = exam_order("ACC6006")
    del body["procedure"]
    response = await client.post(f"{daemon.url}/api/v1/channels/exam_orders_soap", json=body, headers=his())
    assert response.status_code == 400 and response.json()["error"]["party"] == "his"
    assert pacs.simulator.state.calls == []


async def test_hisbridge_diff_shows_the_envelopes_by_xml_path(
    conf: Path, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    async with running_daemon(conf) as daemon:
        message_id = await order(client, daemon, "exam_orders_soap", exam_order("ACC6007"))
        assert (await settled(daemon, message_id)).status == "sent"

    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["--conf", str(conf), "diff", message_id, "sent", "response_raw"]
    )
    assert result.exit_code == 0, result.output
    assert "xml: aligned by path" in result.output
    assert "- /Envelope/Body/PlaceExamOrderRequest/order/accessionNumber: ACC6007" in result.output
    assert "+ /Envelope/Body/PlaceExamOrderResponse/result/resultCode: 0" in result.output


async def test_hisbridge_diff_shows_two_orm_messages_by_hl7_path(
    conf: Path, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    async with running_daemon(conf) as daemon:
        new = await order(client, daemon, "exam_orders_hl7", exam_order("ACC6020"))
        assert (await settled(daemon, new)).status == "sent"
        change = await order(client, daemon, "exam_orders_hl7", exam_order("ACC6020", "change", station_ae="CT_ROOM2"))
        assert (await settled(daemon, change)).status == "sent"

    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["--conf", str(conf), "diff", new, "sent", "--against", change]
    )
    assert result.exit_code == 0, result.output
    assert "hl7: aligned by path" in result.output
    assert "~ ORC-1: NW → XO" in result.output
    assert "~ ORC-18: CT_ROOM1 → CT_ROOM2" in result.output


REPORT = {
    "accession_number": "ACC6030",
    "patient": {"id": "P-TEST-0001", "name": "测试患者甲", "sex": "F"},
    "modality": "CT",
    "findings": "颅内未见明显异常密度影。",
    "impression": "头颅CT平扫未见明显异常。",
    "author": {"id": "R01", "name": "测试报告医生"},
    "verified_at": "2026-11-23T10:05:00",
}


async def test_a_report_posted_as_json_reaches_his(conf: Path, client: httpx.AsyncClient) -> None:
    async with Upstream() as his_system:
        channel = {
            # through the HIS API a third-party refusal would answer 502; blame the sender as a device (400)
            "processors": [{"name": "pacs_report_json", "config": {"party": "device"}}],
            "destinations": [{"name": "his_report_api", "adapter": "http_json", "delivery": "sync",
                              "retry": {"attempts": 1}, "config": {"url": f"{his_system.url}/reports", "timeout": 2}}],
        }
        (conf / "channels" / "pacs_reports.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
        async with running_daemon(conf) as daemon:
            url = f"{daemon.url}/api/v1/channels/pacs_reports"
            accepted = await client.post(url, json=REPORT, headers=his())
            refused = await client.post(url, json={**REPORT, "verified_at": None}, headers=his())

        assert accepted.status_code == 200, accepted.text
        assert [json.loads(body)["impression"] for body in his_system.accepted_bodies()] == ["头颅CT平扫未见明显异常。"]
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["party"] == "device" and "verified_at" in error["reason"]
        assert his_system.count == 1
