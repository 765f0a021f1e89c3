"""Reports from the PACS into an engine, over real sockets: ORU^R01 over MLLP (`pacs_oru`), SOAP
callbacks through the engine's own WSDL and REST posts (`pacs_report_http`). Attachments are
stored once as blobs; reports for accessions no order channel routed, broken base64 and
attachments over the limit are refused with a clear answer, stored with party third_party,
and the engine goes on serving."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml

from engine.adapters.base import Wire
from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.demo.upstream import Upstream
from engine.errors import PermanentError
from engine.message import Payload
from engine.mllp.framing import MllpDecoder, encode
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from engine.store.blobs import BLOB_KEY
from engine.transports.http import HttpClients
from engine.transports.soap import SoapCaller, WsdlCache
from plugins.pacs import report_sources
from plugins.pacs.report_sources import PacsOruSource, PacsReportHttpSource
from plugins.pacs.simulator import PacsServer, ReportSender, ReportWriting
from tests.plugins.pacs.conftest import exam_order
from tests.plugins.pacs.test_pacs_oru import PDF, oru
from tests.support.postgres import postgres_schema

POSTGRES_URL = os.environ.get("HISBRIDGE_TEST_DATABASE_URL")
LIMIT = 4096
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01\x02" * 100


@pytest.fixture
async def his_system() -> AsyncIterator[Upstream]:
    async with Upstream() as up:
        yield up


def his_destination(name: str, his_system: Upstream) -> dict[str, Any]:
    return {
        "name": name, "adapter": "pacs_report_his", "delivery": "async",
        "outbox": {"initial_backoff": 0.05, "max_backoff": 0.2},
        "config": {"url": f"{his_system.url}/reports", "timeout": 2, "idempotent": True},
    }


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("HISBRIDGE_TEST_DATABASE_URL is not set")
    with postgres_schema(POSTGRES_URL) as url:
        yield url


@pytest.fixture
async def engine(tmp_path: Path, store_url: str, his_system: Upstream, pacs: PacsServer) -> AsyncIterator[Engine]:
    conf = tmp_path / "conf"
    (conf / "channels").mkdir(parents=True)
    settings = {"store": {"url": store_url}, "outbox": {"poll_interval": 0.02}}
    (conf / "hisbridge.yaml").write_text(yaml.safe_dump(settings))
    report_checks = {"port": 0, "max_attachment_bytes": LIMIT}
    channels = {
        "exam_orders": {"destinations": [{
            "name": "pacs_api", "adapter": "pacs_rest", "delivery": "async", "retry": {"attempts": 1},
            "config": {"base_url": pacs.rest_url, "timeout": 2},
        }]},
        "pacs_reports_hl7": {
            "content_type": "application/hl7-v2",
            "source": {"kind": "pacs_oru", "config": report_checks},
            "processors": [{"name": "pacs_oru_report"}],
            "destinations": [his_destination("his_reports_hl7", his_system)],
        },
        "pacs_reports_http": {
            "source": {"kind": "pacs_report_http", "config": report_checks},
            "processors": [{"name": "pacs_report_json"}],
            "destinations": [his_destination("his_reports_http", his_system)],
        },
    }
    for name, channel in channels.items():
        (conf / "channels" / f"{name}.yaml").write_text(yaml.safe_dump(channel, allow_unicode=True))
    pm = create_plugin_manager()
    catalogue = Catalogue.build(pm)
    running = await Engine.start(
        load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue, base_dir=base_dir(conf)
    )
    for accession in ("ACC9001", "ACC9002", "ACC9003", "ACC9004"):
        await running.accept("exam_orders", Payload.from_json(exam_order(accession)), caller="test")
    yield running
    await running.stop()


def source(engine: Engine, kind: type[PacsOruSource] | type[PacsReportHttpSource]) -> Any:
    return next(s for s in engine.sources if isinstance(s, kind))


async def exchange_hl7(engine: Engine, *messages: bytes) -> list[list[str]]:
    """Send each message on one connection and return each ACK's MSA fields (and ERR-8, when sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", source(engine, PacsOruSource).port)
    answers: list[list[str]] = []
    try:
        decoder = MllpDecoder()
        for message in messages:
            writer.write(encode(message))
            await writer.drain()
            acks: list[bytes] = []
            while not acks:
                data = await asyncio.wait_for(reader.read(65536), 10)
                assert data, "the listener closed the connection"
                acks = decoder.feed(data)
            lines = acks[0].decode("utf-8").split("\r")
            msa = next(line for line in lines if line.startswith("MSA")).split("|")
            err = [line for line in lines if line.startswith("ERR")]
            answers.append(msa + err)
    finally:
        writer.close()
        await writer.wait_closed()
    return answers


async def delivered(his_system: Upstream, count: int) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(his_system.accepted_bodies()) < count:
        assert loop.time() < deadline, f"{len(his_system.accepted_bodies())} of {count} reports reached HIS"
        await asyncio.sleep(0.02)
    return [json.loads(body) for body in his_system.accepted_bodies()]


async def settled(engine: Engine, channel: str) -> None:
    """Wait until every message of the channel is finished (its attempts are recorded)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while any(view.status in ("received", "queued") for view in await engine.store.list_messages(channel=channel)):
        assert loop.time() < deadline, f"messages of {channel} never finished"
        await asyncio.sleep(0.02)


def stored_bodies(engine: Engine) -> list[bytes]:
    url = engine.store.url
    db = sa.create_engine(url)
    try:
        with db.connect() as connection:
            return [bytes(row[0]) for row in connection.execute(sa.text("SELECT body FROM stages")) if row[0]]
    finally:
        db.dispose()


def blob_count(engine: Engine) -> int:
    db = sa.create_engine(engine.store.url)
    try:
        with db.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM blobs")).scalar_one())
    finally:
        db.dispose()


# --- ORU^R01 over MLLP -------------------------------------------------------------------------


async def test_a_report_over_mllp_reaches_his_with_its_pdf_stored_once(engine: Engine, his_system: Upstream) -> None:
    [msa] = await exchange_hl7(engine, oru("ACC9001", control_id="R1"))
    assert msa[1:3] == ["AA", "R1"]
    [report] = await delivered(his_system, 1)

    assert report["accession_number"] == "ACC9001" and report["impression"] == "头颅CT平扫未见明显异常。"
    [attachment] = report["attachments"]
    blob = await engine.store.get_blob(attachment["ref"])
    assert blob is not None and blob.data == PDF and blob.content_type == "application/pdf"
    assert blob_count(engine) == 1
    await settled(engine, "pacs_reports_hl7")
    bodies = stored_bodies(engine)
    assert not any(PDF in body or base64.b64encode(PDF) in body for body in bodies)
    assert sum(attachment["ref"].encode() in body for body in bodies) >= 3  # raw, transformed, sent
    [message_id] = [m for m in await engine.store.find_by_key("accession_number", "ACC9001")
                    if (await engine.store.get_message(m)).channel == "pacs_reports_hl7"]  # type: ignore[union-attr]
    assert await engine.store.message_blob_refs(message_id) == [attachment["ref"]]


async def test_the_same_pdf_in_two_reports_is_one_blob(engine: Engine, his_system: Upstream) -> None:
    answers = await exchange_hl7(engine, oru("ACC9001", control_id="R1"), oru("ACC9002", control_id="R2"))
    assert [msa[1] for msa in answers] == ["AA", "AA"]
    reports = await delivered(his_system, 2)
    assert len({r["attachments"][0]["ref"] for r in reports}) == 1
    assert blob_count(engine) == 1


async def test_a_report_for_an_unknown_accession_is_refused_and_the_next_one_taken(
    engine: Engine, his_system: Upstream
) -> None:
    refused, taken = await exchange_hl7(engine, oru("ACC0404", control_id="R4"), oru("ACC9003", control_id="R5"))

    assert refused[1:3] == ["AE", "R4"] and "never ordered" in refused[3] and "ACC0404" in refused[3]
    assert refused[-1].startswith("ERR|")
    assert taken[1:3] == ["AA", "R5"]
    assert [r["accession_number"] for r in await delivered(his_system, 1)] == ["ACC9003"]
    [view] = await engine.store.list_messages(channel="pacs_reports_hl7", status="failed")
    assert (view.party, view.rule_id) == ("third_party", "pacs.third_party.report_unknown_accession")
    assert blob_count(engine) == 1  # the refused report's PDF was not kept as a blob
    # the order channel serves on
    receipt = await engine.accept("exam_orders", Payload.from_json(exam_order("ACC9005")), caller="test")
    assert receipt.accepted


@pytest.mark.parametrize(
    ("pdf", "words"),
    [("%%%broken%%%", "broken base64"), (base64.b64encode(b"x" * (LIMIT + 1)).decode(), "over the limit of 4096")],
)
async def test_broken_or_oversized_attachments_get_an_ae_naming_the_field(
    engine: Engine, his_system: Upstream, pdf: str, words: str
) -> None:
    [msa] = await exchange_hl7(engine, oru("ACC9004", pdf=pdf, control_id="R6"))
    assert msa[1:3] == ["AE", "R6"]
    assert "OBX[5]-5" in msa[3] and words in msa[3]
    [view] = await engine.store.list_messages(channel="pacs_reports_hl7")
    assert (view.status, view.party, view.rule_id) == ("failed", "third_party", "pacs.third_party.report_invalid")
    assert his_system.count == 0 and blob_count(engine) == 0


# --- SOAP callbacks and REST posts ---------------------------------------------------------------


def soap_report(accession: str, attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "accessionNumber": accession, "patientId": "P-TEST-0001", "patientName": "测试患者甲", "patientSex": "F",
        "modality": "CT", "status": "final", "findings": "颅内未见明显异常密度影。", "impression": "未见明显异常。",
        "authorId": "R01", "authorName": "测试报告医生", "verifiedAt": "2026-11-23T10:05:00",
        "attachment": attachments or [],
    }


@pytest.fixture
async def soap_caller(engine: Engine) -> AsyncIterator[SoapCaller]:
    clients = HttpClients()
    yield SoapCaller(source(engine, PacsReportHttpSource).wsdl_url, clients, timeout=5, cache=WsdlCache())
    await clients.aclose()


async def test_a_soap_callback_through_the_served_wsdl_reaches_his(
    engine: Engine, his_system: Upstream, soap_caller: SoapCaller
) -> None:
    image = {"contentType": "image/png", "title": "关键图像", "data": PNG}
    answer = await soap_caller.call("SubmitExamReport", Wire(), report=soap_report("ACC9001", [image]))

    assert answer["resultCode"] == 0 and answer["messageId"]
    [report] = await delivered(his_system, 1)
    assert (report["accession_number"], report["impression"]) == ("ACC9001", "未见明显异常。")
    [attachment] = report["attachments"]
    assert (attachment["content_type"], attachment["title"], attachment["size"]) == ("image/png", "关键图像", len(PNG))
    assert (blob := await engine.store.get_blob(attachment["ref"])) is not None and blob.data == PNG


async def test_a_soap_callback_for_an_unknown_accession_is_a_client_fault(
    engine: Engine, soap_caller: SoapCaller
) -> None:
    with pytest.raises(PermanentError) as raised:
        await soap_caller.call("SubmitExamReport", Wire(), report=soap_report("ACC0404"))
    assert raised.value.detail["faultcode"].endswith("Client")
    assert "never ordered" in str(raised.value.detail["faultstring"])
    [view] = await engine.store.list_messages(channel="pacs_reports_http")
    assert (view.status, view.party) == ("failed", "third_party")


def rest_report(accession: str, **overrides: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "accession_number": accession,
        "patient": {"id": "P-TEST-0001", "name": "测试患者甲", "sex": "F"},
        "findings": "颅内未见明显异常密度影。", "impression": "未见明显异常。",
        "author": {"id": "R01", "name": "测试报告医生"}, "verified_at": "2026-11-23T10:05:00",
        "attachments": [{"content_type": "application/pdf", "title": "报告", "data": base64.b64encode(PDF).decode()}],
    }
    report.update(overrides)
    return report


async def test_rest_posts_are_taken_or_refused_with_a_4xx(
    engine: Engine, his_system: Upstream, client: httpx.AsyncClient
) -> None:
    url = f"{source(engine, PacsReportHttpSource).url}/reports"
    taken = await client.post(url, json=rest_report("ACC9002"))
    unknown = await client.post(url, json=rest_report("ACC0404"))
    broken = await client.post(url, json=rest_report("ACC9003", attachments=[
        {"content_type": "application/pdf", "data": "%%%"}]))
    too_large = await client.post(url, json=rest_report("ACC9003", attachments=[
        {"content_type": "image/png", "data": base64.b64encode(b"x" * (LIMIT + 1)).decode()}]))
    unverified = await client.post(url, json=rest_report("ACC9003", verified_at=None))
    not_json = await client.post(url, content=b"<report/>")

    assert taken.status_code == 202, taken.text
    assert (unknown.status_code, unknown.json()["error"]["field"]) == (422, "accession_number")
    assert (broken.status_code, broken.json()["error"]["field"]) == (400, "attachments[0].data")
    assert too_large.status_code == 413
    assert unverified.status_code == 400 and "verified_at" in unverified.json()["error"]["reason"]
    assert not_json.status_code == 400
    [report] = await delivered(his_system, 1)
    assert report["attachments"][0]["ref"].startswith("blob:sha256:")
    refused = await engine.store.list_messages(channel="pacs_reports_http", status="failed")
    assert {view.party for view in refused} == {"third_party"} and len(refused) == 5
    assert blob_count(engine) == 1
    view = await engine.store.get_message(taken.json()["message_id"])
    assert view is not None and view.business_keys[BLOB_KEY] == report["attachments"][0]["ref"]


async def test_the_simulated_pacs_reports_in_each_style(engine: Engine, his_system: Upstream, pacs: PacsServer) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(pacs.simulator.state.exams) < 3:  # the orders reach the PACS through the outbox
        assert loop.time() < deadline, "the orders never reached the PACS"
        await asyncio.sleep(0.02)
    oru_source = source(engine, PacsOruSource)
    sender = ReportSender(mllp=("127.0.0.1", oru_source.port), http_url=source(engine, PacsReportHttpSource).url)
    writing = ReportWriting("颅内未见明显异常密度影。", "未见明显异常。", PDF)
    try:
        sent = [
            await sender.send(pacs.simulator.state.exams[accession], writing, style=style)
            for accession, style in (("ACC9001", "hl7"), ("ACC9002", "soap"), ("ACC9003", "rest"))
        ]
    finally:
        await sender.aclose()

    assert [(report.style, report.accepted) for report in sent] == [("hl7", True), ("soap", True), ("rest", True)]
    reports = await delivered(his_system, 3)
    assert sorted(r["accession_number"] for r in reports) == ["ACC9001", "ACC9002", "ACC9003"]
    assert {r["patient"]["name"] for r in reports} == {"测试患者甲"}
    assert len({r["attachments"][0]["ref"] for r in reports}) == 1 and blob_count(engine) == 1


async def test_malformed_xml_gets_a_client_fault(engine: Engine, client: httpx.AsyncClient) -> None:
    url = f"{source(engine, PacsReportHttpSource).url}/ExamReportService"
    answer = await client.post(url, content=b'<?xml version="1.0"?><soap:Envelope><soap:Body><broken',
                               headers={"Content-Type": "text/xml"})

    assert answer.status_code == 400
    assert b"<faultcode>soap:Client</faultcode>" in answer.content and b"not well-formed XML" in answer.content
    [view] = await engine.store.list_messages(channel="pacs_reports_http")
    assert (view.status, view.party, view.rule_id) == ("failed", "third_party", "pacs.third_party.report_invalid")
    raw = await engine.store.get_stage(view.id, "raw")
    assert raw is not None and raw.body.endswith(b"<broken")


async def test_the_simulator_reports_on_request(
    engine: Engine, his_system: Upstream, pacs: PacsServer, client: httpx.AsyncClient
) -> None:
    oru, http = source(engine, PacsOruSource), source(engine, PacsReportHttpSource)
    pacs.simulator.reporter = ReportSender(mllp=("127.0.0.1", oru.port), http_url=http.url)
    control = f"{pacs.url}/_control/reports"

    taken = await client.post(control, json={"accession_number": "ACC9001", "style": "rest", "pdf": True})
    stray = await client.post(control, json={"accession_number": "ACC0404", "style": "hl7"})
    wrong = await client.post(control, json={"accession_number": "ACC9001", "style": "fax"})

    assert (taken.status_code, taken.json()["accepted"]) == (200, True)
    assert stray.status_code == 422 and stray.json()["answer"].startswith("MSA|AE|")
    assert wrong.status_code == 400
    [report] = await delivered(his_system, 1)
    assert report["accession_number"] == "ACC9001" and len(report["attachments"]) == 1


async def test_large_reports_are_decoded_off_the_event_loop(
    engine: Engine, his_system: Upstream, monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient
) -> None:
    monkeypatch.setattr(report_sources, "THREAD_ABOVE_BYTES", 0)  # every report counts as large
    answers = await exchange_hl7(engine, oru("ACC9001", control_id="R1"), oru("ACC0404", control_id="R2"))
    posted = await client.post(f"{source(engine, PacsReportHttpSource).url}/reports", json=rest_report("ACC9002"))

    assert [msa[1] for msa in answers] == ["AA", "AE"] and posted.status_code == 202
    assert sorted(r["accession_number"] for r in await delivered(his_system, 2)) == ["ACC9001", "ACC9002"]
