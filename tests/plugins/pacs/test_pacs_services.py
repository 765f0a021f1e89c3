"""The PACS REST services end to end: a real daemon on a socket, the simulated PACS behind it,
reports arriving over MLLP (ORU^R01 with a PDF) and as JSON, and every call stored.

Patients are synthetic (`测试` names, `P-TEST-` ids)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from engine.daemon import Daemon
from engine.demo.upstream import Upstream
from engine.store.records import MessageView
from plugins.pacs.simulator import PacsServer, build_oru, send_report
from tests.e2e.harness import HIS_TOKEN, OPERATOR_TOKEN, his, operator, running_daemon, write_daemon_conf

API = "/api/v1/pacs"
PDF = b"%PDF-1.4\n% synthetic report for tests\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
OUTBOX = {"initial_backoff": 0.05, "max_backoff": 0.2}


def services_channels(pacs: PacsServer, his_url: str) -> dict[str, dict[str, Any]]:
    """One channel per service (registrations reach the PACS over SOAP, appointments over REST,
    behind one breaker), and two report channels: ORU^R01 over MLLP, and JSON posted to the
    channel API."""

    def to_pacs(name: str, adapter: str, config: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "adapter": adapter, "delivery": "async", "outbox": OUTBOX,
                "retry": {"attempts": 1}, "breaker": {"key": "pacs"}, "config": {**config, "timeout": 2}}

    def to_his(name: str, delivery: str) -> dict[str, Any]:
        return {"name": name, "adapter": "pacs_report_his", "delivery": delivery, "outbox": OUTBOX,
                "retry": {"attempts": 1}, "config": {"url": f"{his_url}/reports", "timeout": 2, "idempotent": True}}

    return {
        "pacs_registrations": {
            "processors": [{"name": "pacs_registration"}],
            "destinations": [to_pacs("registration_to_pacs", "pacs_soap", {"wsdl": pacs.wsdl_url})],
        },
        "pacs_appointments": {
            "processors": [{"name": "pacs_appointment"}],
            "destinations": [to_pacs("appointment_to_pacs", "pacs_rest", {"base_url": pacs.rest_url})],
        },
        "pacs_reports_hl7": {
            "content_type": "application/hl7-v2",
            "source": {"kind": "pacs_oru", "config": {"port": 0}},
            "processors": [{"name": "pacs_oru_report"}],
            "destinations": [to_his("his_reports_hl7", "async")],
        },
        "pacs_reports_json": {
            "processors": [{"name": "pacs_report_json"}],
            "destinations": [to_his("his_reports_json", "sync")],
        },
        "pacs_results": {"destinations": [{"name": "report_query", "adapter": "pacs_results"}]},
        "pacs_workload": {"destinations": [{"name": "workload_query", "adapter": "pacs_workload"}]},
    }


@pytest.fixture
async def his_system() -> AsyncIterator[Upstream]:
    async with Upstream() as upstream:
        yield upstream


@pytest.fixture
async def daemon(
    tmp_path: Path, pacs: PacsServer, his_system: Upstream, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Daemon]:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    conf = write_daemon_conf(tmp_path, services_channels(pacs, his_system.url))
    async with running_daemon(conf) as running:
        yield running


def registration(accession: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accession_number": accession,
        "requested_procedure_id": f"RP{accession[-4:]}",
        "patient": {"id": "P-TEST-0001", "name": "测试患者甲", "sex": "F", "birth_date": "1980-02-29"},
        "visit_number": "MZ20261122001",
        "procedure": {"code": "CT0101", "name": "头颅CT平扫", "body_part": "头颅"},
        "modality": "CT",
        "registered_at": "2026-11-23T09:30:00",
        "requesting_physician": {"id": "D017", "name": "测试医生"},
    }
    body.update(overrides)
    return body


def appointment(accession: str, **overrides: Any) -> dict[str, Any]:
    body = registration(accession)
    del body["registered_at"]
    body.update(scheduled_at="2026-11-24T14:00:00", duration_minutes=20, station_ae="CT_ROOM1")
    body.update(overrides)
    return body


def json_report(accession: str, **overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "accession_number": accession,
        "patient": {"id": "P-TEST-0002", "name": "测试患者乙", "sex": "M"},
        "procedure": {"code": "CT0101", "name": "头颅CT平扫"},
        "modality": "CT",
        "findings": "颅内未见明显异常密度影。",
        "impression": "头颅CT平扫未见明显异常。",
        "author": {"id": "R01", "name": "测试报告医生"},
        "verified_at": "2026-11-23T10:05:00",
        "performed_by": {"id": "T01", "name": "测试技师甲"},
    }
    report.update(overrides)
    return report


async def settled(daemon: Daemon, message_id: str) -> MessageView:
    """The message once every delivery left received/queued (a bound on the wait, not on speed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        view = await daemon.engine.store.get_message(message_id, with_stages=True)
        if view is not None and all(d.status not in ("received", "queued") for d in view.deliveries):
            return view
        assert loop.time() < deadline, f"message {message_id} still {view.status if view else 'missing'}"
        await asyncio.sleep(0.05)


def stage(view: MessageView, name: str) -> dict[str, Any]:
    return next(s for s in view.stages if s["name"] == name)


async def post_report(client: httpx.AsyncClient, daemon: Daemon, report: dict[str, Any]) -> str:
    response = await client.post(f"{daemon.url}/api/v1/channels/pacs_reports_json", json=report, headers=his())
    assert response.status_code == 200, response.text
    message_id = response.headers["X-Hisbridge-Message-Id"]
    await settled(daemon, message_id)
    return message_id


# --- 登记 registration ----------------------------------------------------------------------------


async def test_a_registration_becomes_an_order_at_the_pacs(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    body = json.dumps(registration("ACC7001"), ensure_ascii=False).encode()
    response = await client.post(f"{daemon.url}{API}/registrations", content=body,
                                 headers={**his(), "Content-Type": "application/json"})

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted == {"message_id": accepted["message_id"], "status": "queued", "operation": "register",
                        "accession_number": "ACC7001"}
    view = await settled(daemon, accepted["message_id"])
    assert view.status == "sent", view.reason
    assert view.channel == "pacs_registrations" and view.source == "api:his"
    assert stage(view, "raw")["body"] == body
    order = json.loads(stage(view, "transformed")["body"])
    assert (order["action"], order["scheduled_at"]) == ("new", "2026-11-23T09:30:00")
    assert view.business_keys == {"accession_number": "ACC7001", "requested_procedure_id": "RP7001"}
    assert pacs.simulator.state.exams["ACC7001"].status == "scheduled"

    cancel = await client.delete(f"{daemon.url}{API}/registrations/ACC7001", headers=his())
    assert cancel.status_code == 202 and cancel.json()["operation"] == "cancel"
    assert (await settled(daemon, cancel.json()["message_id"])).status == "sent"
    assert pacs.simulator.state.exams["ACC7001"].history == ["new", "cancel"]


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        (registration("ACC7002", patient={"id": "P-TEST-0001", "name": ""}), 422, "patient.name", "at least 1"),
        (registration("ACC 7003"), 422, "accession_number", "pattern"),
        ({k: v for k, v in registration("ACC7004").items() if k != "procedure"}, 422, "procedure", "required"),
        (registration("ACC7005", ward="8F"), 422, "ward", "not permitted"),
        (registration("ACC7006", registered_at=-34), 422, "registered_at", "datetime"),  # found by schemathesis
        (registration("ACC7007", registered_at="0"), 422, "registered_at", "YYYY-MM-DDThh:mm:ss"),  # and this
        (registration("ACC7008", patient={"id": "P-TEST-0001", "name": "测试患者甲", "birth_date": "0"}), 422,
         "patient.birth_date", "YYYY-MM-DD"),
        ("not json at all", 400, "body", "JSON"),
    ],
)
async def test_bad_registrations_name_the_field_and_are_stored_as_his(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient, body: Any, status: int, field: str, words: str
) -> None:
    content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    response = await client.post(f"{daemon.url}{API}/registrations", content=content,
                                 headers={**his(), "Content-Type": "application/json"})

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["party"], error["field"]) == ("his", field)
    assert words in error["reason"]
    view = await daemon.engine.store.get_message(error["message_id"], with_stages=True)
    assert view is not None and (view.status, view.party, view.channel) == ("failed", "his", "pacs_registrations")
    assert stage(view, "raw")["body"] == content
    assert pacs.simulator.state.calls == []


# --- 预约 appointment -----------------------------------------------------------------------------


async def test_an_appointment_is_booked_moved_and_cancelled_on_its_device(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    booked = await client.post(f"{daemon.url}{API}/appointments", json=appointment("ACC7010"), headers=his())
    assert booked.status_code == 202, booked.text
    assert (await settled(daemon, booked.json()["message_id"])).status == "sent"
    placed = pacs.simulator.state.exams["ACC7010"].order
    assert (placed["station_ae"], placed["scheduled_at"]) == ("CT_ROOM1", "2026-11-24T14:00:00")

    moved_to = appointment("ACC7010", station_ae="", room="CT3", scheduled_at="2026-11-25T08:00:00")
    del moved_to["accession_number"]
    moved = await client.put(f"{daemon.url}{API}/appointments/ACC7010", json=moved_to, headers=his())
    assert moved.status_code == 202, moved.text
    view = await settled(daemon, moved.json()["message_id"])
    assert view.status == "sent" and view.business_keys["accession_number"] == "ACC7010"
    changed = pacs.simulator.state.exams["ACC7010"].order
    assert (changed.get("station_ae"), changed["room"], changed["scheduled_at"]) == (None, "CT3", "2026-11-25T08:00:00")

    cancelled = await client.delete(f"{daemon.url}{API}/appointments/ACC7010", headers=his())
    assert (await settled(daemon, cancelled.json()["message_id"])).status == "sent"
    assert pacs.simulator.state.exams["ACC7010"].history == ["new", "change", "cancel"]


async def test_an_appointment_needs_its_device_or_room(daemon: Daemon, client: httpx.AsyncClient) -> None:
    nowhere = appointment("ACC7011", station_ae="")
    response = await client.post(f"{daemon.url}{API}/appointments", json=nowhere, headers=his())
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["party"], error["field"]) == ("his", "station_ae") and "room" in error["reason"]

    bad_path = await client.delete(f"{daemon.url}{API}/appointments/ACC%207011", headers=his())
    assert bad_path.status_code == 422
    assert bad_path.json()["error"]["field"] == "accession_number"


async def test_a_cancel_the_pacs_does_not_know_is_blamed_on_his(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    cancelled = await client.delete(f"{daemon.url}{API}/appointments/ACC7404", headers=his())
    assert cancelled.status_code == 202
    view = await settled(daemon, cancelled.json()["message_id"])
    assert (view.status, view.party, view.rule_id) == ("dead", "his", "pacs.his.unknown_accession")


# --- 结果查询 result query --------------------------------------------------------------------------


async def test_the_result_query_returns_the_report_with_its_pdf_as_base64(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    registered = await client.post(f"{daemon.url}{API}/registrations", json=registration("ACC7020"), headers=his())
    await settled(daemon, registered.json()["message_id"])
    exam = pacs.simulator.state.exams["ACC7020"]
    oru = build_oru(exam, findings="双肺纹理清晰。", impression="胸部未见异常。", pdf=PDF)
    listener = next(source for source in daemon.engine.sources if source.binding.channel == "pacs_reports_hl7")
    assert b"MSA|AA|" in await send_report("127.0.0.1", listener.port, oru)  # type: ignore[attr-defined]
    [report] = await daemon.engine.store.list_messages(channel="pacs_reports_hl7")
    report_id = report.id
    await settled(daemon, report_id)

    response = await client.get(f"{daemon.url}{API}/results/ACC7020", headers=his())

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["report"]["impression"] == "胸部未见异常。"
    assert result["report"]["findings"] == "双肺纹理清晰。"
    assert result["report_message_id"] == report_id and result["source"] == "engine_archive"
    [attachment] = result["attachments"]
    assert attachment["content_type"] == "application/pdf" and attachment["size"] == len(PDF)
    assert base64.b64decode(attachment["data"]) == PDF

    digests_only = await client.get(f"{daemon.url}{API}/results/ACC7020?include_attachments=false", headers=his())
    assert digests_only.json()["attachments"][0]["data"] is None
    query = await daemon.engine.store.get_message(response.headers["X-Hisbridge-Message-Id"], with_stages=True)
    assert query is not None and (query.channel, query.status) == ("pacs_results", "replied")
    assert PDF not in stage(query, "response_raw")["body"]  # the stored answer names the PDF, never copies it
    assert query.id in await daemon.engine.store.find_by_key("accession_number", "ACC7020")


async def test_a_corrected_report_supersedes_the_first(daemon: Daemon, client: httpx.AsyncClient) -> None:
    await post_report(client, daemon, json_report("ACC7021"))
    corrected = await post_report(client, daemon, json_report(
        "ACC7021", status="corrected", impression="左侧基底节区腔隙性梗塞。", verified_at="2026-11-23T15:00:00"))

    result = (await client.get(f"{daemon.url}{API}/results/ACC7021", headers=his())).json()

    assert result["report_message_id"] == corrected
    assert (result["report"]["status"], result["report"]["impression"]) == ("corrected", "左侧基底节区腔隙性梗塞。")
    assert result["attachments"] == []


async def test_result_query_for_an_unknown_exam_or_a_bad_number(daemon: Daemon, client: httpx.AsyncClient) -> None:
    missing = await client.get(f"{daemon.url}{API}/results/ACC7999", headers=his())
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "no_report"
    view = await daemon.engine.store.get_message(missing.json()["error"]["message_id"])
    assert view is not None and view.status == "replied"  # asking is not a failure; finding nothing is an answer

    bad = await client.get(f"{daemon.url}{API}/results/{'A' * 17}", headers=his())
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert (error["field"], error["party"]) == ("accession_number", "his")
    unknown_option = await client.get(f"{daemon.url}{API}/results/ACC7999?format=pdf", headers=his())
    assert unknown_option.status_code == 422 and unknown_option.json()["error"]["field"] == "format"
    not_a_boolean = await client.get(f"{daemon.url}{API}/results/ACC7999?include_attachments=1", headers=his())
    assert not_a_boolean.status_code == 422 and not_a_boolean.json()["error"]["field"] == "include_attachments"
    unauthenticated = await client.get(f"{daemon.url}{API}/results/ACC7999")
    assert unauthenticated.status_code == 401


# --- 工作量统计 workload -----------------------------------------------------------------------------


async def test_workload_counts_exams_per_item_device_and_technician(
    daemon: Daemon, client: httpx.AsyncClient
) -> None:
    for accession, device in (("ACC7030", "CT_ROOM1"), ("ACC7031", "CT_ROOM1"), ("ACC7032", "CT_ROOM2")):
        booked = await client.post(f"{daemon.url}{API}/appointments", json=appointment(accession, station_ae=device),
                                   headers=his())
        await settled(daemon, booked.json()["message_id"])
    mri = {"procedure": {"code": "MR0201", "name": "腰椎MR平扫"}, "modality": "MR"}
    await post_report(client, daemon, json_report("ACC7030"))
    await post_report(client, daemon, json_report("ACC7031", performed_by={"id": "T02", "name": "测试技师乙"}))
    await post_report(client, daemon, json_report("ACC7032", **mri))
    await post_report(client, daemon, json_report("ACC7033", verified_at="2026-11-25T08:00:00"))  # after the period
    await post_report(client, daemon, json_report("ACC7030", status="corrected"))  # the same exam again

    response = await client.get(f"{daemon.url}{API}/workload?from=2026-11-22&to=2026-11-24", headers=his())

    assert response.status_code == 200, response.text
    workload = response.json()
    assert (workload["from"], workload["to"], workload["exams"], workload["truncated"]) == (
        "2026-11-22", "2026-11-24", 3, False)
    assert workload["by_exam"] == [{"key": "CT0101", "name": "头颅CT平扫", "exams": 2},
                                   {"key": "MR0201", "name": "腰椎MR平扫", "exams": 1}]
    assert workload["by_device"] == [{"key": "CT_ROOM1", "name": "", "exams": 2},
                                     {"key": "CT_ROOM2", "name": "", "exams": 1}]
    assert workload["by_technician"] == [{"key": "T01", "name": "测试技师甲", "exams": 2},
                                         {"key": "T02", "name": "测试技师乙", "exams": 1}]

    only_mr = (await client.get(f"{daemon.url}{API}/workload?from=2026-11-22&to=2026-11-24&modality=MR",
                                headers=his())).json()
    assert only_mr["exams"] == 1 and only_mr["by_device"] == [{"key": "CT_ROOM2", "name": "", "exams": 1}]


async def test_workload_refuses_a_backwards_period(daemon: Daemon, client: httpx.AsyncClient) -> None:
    response = await client.get(f"{daemon.url}{API}/workload?from=2026-11-24&to=2026-11-01", headers=his())
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["field"], error["party"]) == ("to", "his") and "before from" in error["reason"]
    view = await daemon.engine.store.get_message(error["message_id"])
    assert view is not None and view.channel == "pacs_workload" and view.status == "failed"
    a_moment = await client.get(f"{daemon.url}{API}/workload?from=2026-11-01T00:00:00&to=2026-11-02", headers=his())
    assert a_moment.status_code == 422 and a_moment.json()["error"]["field"] == "from"


@pytest.mark.parametrize(("first", "last"), [("0001-01-01", "0001-01-02"), ("9999-12-30", "9999-12-31")])
async def test_workload_at_the_ends_of_the_calendar(
    daemon: Daemon, client: httpx.AsyncClient, first: str, last: str
) -> None:
    """Found by the schema-driven test: the scan window once stepped past year 1 and year 9999."""
    response = await client.get(f"{daemon.url}{API}/workload?from={first}&to={last}", headers=his())
    assert response.status_code == 200, response.text
    assert response.json()["exams"] == 0


# --- the services as channels ----------------------------------------------------------------------


async def test_a_replayed_cancel_is_still_a_cancel(daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient) -> None:
    """The operation and the path's accession number are stored with the raw request."""
    booked = await client.post(f"{daemon.url}{API}/appointments", json=appointment("ACC7040"), headers=his())
    await settled(daemon, booked.json()["message_id"])
    cancelled = await client.delete(f"{daemon.url}{API}/appointments/ACC7040", headers=his())
    await settled(daemon, cancelled.json()["message_id"])

    replayed = await client.post(f"{daemon.url}/api/v1/messages/{cancelled.json()['message_id']}/replay",
                                 headers=operator())

    assert replayed.status_code == 200 and replayed.json()["status"] == "queued", replayed.text
    view = await settled(daemon, replayed.json()["message_id"])
    assert json.loads(stage(view, "transformed")["body"]) == {
        "action": "cancel", "accession_number": "ACC7040", "patient_class": "O", "reason": "", "priority": "routine"}
    assert pacs.simulator.state.exams["ACC7040"].history == ["new", "cancel", "cancel"]


async def test_a_service_without_its_channel_says_what_to_configure(
    tmp_path: Path, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_HIS_TOKEN", HIS_TOKEN)
    monkeypatch.setenv("E2E_OPERATOR_TOKEN", OPERATOR_TOKEN)
    conf = write_daemon_conf(tmp_path, {"pacs_workload": {"destinations": [{"name": "w", "adapter": "pacs_workload"}]}})
    async with running_daemon(conf) as daemon:
        response = await client.get(f"{daemon.url}{API}/results/ACC7050", headers=his())
        document = await client.get(f"{daemon.url}{API}/openapi.json", headers=his())

    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["code"], error["party"]) == ("service_not_configured", "engine")
    assert "pacs_results" in error["reason"]
    assert document.status_code == 200


async def test_a_suspended_service_answers_at_once_and_registrations_wait_for_the_pacs(
    daemon: Daemon, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    """Each service sits behind its destination's breaker, like any channel."""
    suspended = await client.post(f"{daemon.url}/api/v1/breakers/report_query/suspend",
                                  json={"reason": "archive maintenance"}, headers=operator())
    assert suspended.status_code == 200, suspended.text
    query = await client.get(f"{daemon.url}{API}/results/ACC7060", headers=his())
    assert query.status_code == 503 and "Retry-After" in query.headers
    assert query.json()["error"]["destination"] == "report_query"

    await client.post(f"{daemon.url}/api/v1/breakers/pacs/suspend", json={"reason": "PACS upgrade"}, headers=operator())
    registered = await client.post(f"{daemon.url}{API}/registrations", json=registration("ACC7060"), headers=his())
    assert registered.status_code == 202  # stored; the registration desk does not wait for the PACS
    assert "ACC7060" not in pacs.simulator.state.exams
    await client.post(f"{daemon.url}/api/v1/breakers/pacs/resume", headers=operator())
    assert (await settled(daemon, registered.json()["message_id"])).status == "sent"
    assert pacs.simulator.state.exams["ACC7060"].status == "scheduled"
