"""ORU^R01 reports from the PACS → exam report JSON: the mapping, bad input, and the whole
path over a real MLLP socket into a channel that delivers to HIS over HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml

from engine.catalogue import Catalogue
from engine.config.loader import base_dir, load_config
from engine.demo.upstream import Upstream
from engine.errors import InputError
from engine.message import Payload
from engine.mllp.framing import MllpDecoder, encode
from engine.plugin_manager import create_plugin_manager
from engine.runtime import Engine
from plugins.pacs.orm import segment
from plugins.pacs.oru import map_oru
from plugins.pacs.report_processor import OruReportConfig, OruReportProcessor

SAMPLE = (
    Path(__file__).parents[3] / ".." / "shared" / "samples" / "hl7" / "dcm4che_mesa_oru_r01_radiology_report_v251.hl7"
)
PDF = b"%PDF-1.4\n% synthetic report for tests\n%%EOF\n"


def oru(accession: str = "ACC9001", *, pdf: str | None = None, control_id: str = "R1") -> bytes:
    data = base64.b64encode(PDF).decode() if pdf is None else pdf
    segments = [
        f"MSH|^~\\&|PACS|RADIOLOGY|HIS|HOSPITAL|20261123101000||ORU^R01|{control_id}|P|2.3.1||||||UNICODE UTF-8",
        "PID|||P-TEST-0001||测试^患者甲||19800229|F",
        segment(
            "OBR",
            {
                1: "1",
                2: "SQD9001",
                3: accession,
                4: "CT0101^头颅CT平扫^HIS",
                7: "20261123093500",
                18: accession,
                19: "RP9001",
                22: "20261123100500",
                24: "CT",
                25: "F",
                32: "R01&测试&报告医生",
            },
        ),
        "OBX|1|ST|113014^DICOM Study^DCM||1.2.826.0.1.3680043.2.1125.9001||||||F",
        "OBX|2|TX|59776-5^检查所见^LN|1|颅内未见明显异常密度影。||||||F",
        "OBX|3|TX|59776-5^检查所见^LN|2|脑室系统未见扩张，中线结构居中。||||||F",
        "OBX|4|TX|19005-8^诊断意见^LN||头颅CT平扫未见明显异常。||||||F",
        f"OBX|5|ED|18748-4^Diagnostic Imaging Report^LN||^Application^PDF^Base64^{data}||||||F",
    ]
    return ("\r".join(segments) + "\r").encode("utf-8")


def test_a_report_maps_to_the_model_with_its_pdf_by_reference() -> None:
    mapped = map_oru(oru(), max_attachment_bytes=1024)
    report = mapped.report
    assert (report.accession_number, report.requested_procedure_id, report.modality) == ("ACC9001", "RP9001", "CT")
    assert report.study_instance_uid == "1.2.826.0.1.3680043.2.1125.9001"
    assert report.findings == "颅内未见明显异常密度影。\n脑室系统未见扩张，中线结构居中。"
    assert report.impression == "头颅CT平扫未见明显异常。"
    assert (report.author.id, report.author.name) == ("R01", "测试 报告医生")
    assert report.verified_at is not None and report.verified_at.isoformat() == "2026-11-23T10:05:00"
    assert report.patient.name == "测试 患者甲" and report.status.value == "final"
    digest = hashlib.sha256(PDF).hexdigest()
    assert [(a.content_type, a.sha256, a.size) for a in report.attachments] == [("application/pdf", digest, len(PDF))]
    assert mapped.attachments == {digest: PDF}


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        (oru(pdf="JVBERi0x!!!not-base64"), "OBX[5]-5", "broken base64"),
        (oru(pdf=base64.b64encode(b"x" * 4096).decode()), "OBX[5]-5", "larger than 1024"),
        (oru(accession=""), "OBR-18", "no accession"),
        (oru().replace(b"ORU^R01", b"ORM^O01"), "MSH-9", "expected ORU^R01"),
    ],
)
def test_unusable_reports_are_the_senders_fault(message: bytes, field: str, words: str) -> None:
    with pytest.raises(InputError) as raised:
        map_oru(message, max_attachment_bytes=1024)
    assert (raised.value.field, raised.value.party) == (field, "device")
    assert words in str(raised.value)


def test_the_processor_gives_his_json_with_the_bytes_once() -> None:
    processor = OruReportProcessor(OruReportConfig())
    report = processor.process(Payload(oru(), "application/hl7-v2")).json()
    digest = report["attachments"][0]["sha256"]
    assert base64.b64decode(report["attachment_data"][digest]) == PDF
    assert "content" not in report["attachments"][0]


@pytest.mark.samples
def test_the_dcm4che_sample_report() -> None:
    if not SAMPLE.exists():
        pytest.skip(f"sample not present: {SAMPLE}")
    report = map_oru(SAMPLE.read_bytes(), max_attachment_bytes=1024).report
    assert report.accession_number == "ACC1" and report.study_instance_uid == "1.113654.1.2001.30.2.2"
    assert report.recommendation.startswith("Follow-up with CT of the Abdomen")
    assert "right kidney is slightly enlarged" in report.findings
    assert report.author.id == "BACH" and report.verified_at is not None
    assert report.modality is None  # the sample has its result status in OBR-24, not a modality


# -- over a real MLLP socket into a channel ------------------------------------------------------


@pytest.fixture
async def his_upstream() -> AsyncIterator[Upstream]:
    async with Upstream() as up:
        yield up


@pytest.fixture
async def engine(tmp_path: Path, his_upstream: Upstream) -> AsyncIterator[Engine]:
    conf = tmp_path / "conf"
    (conf / "channels").mkdir(parents=True)
    (conf / "hisbridge.yaml").write_text(
        yaml.safe_dump(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
                "outbox": {"poll_interval": 0.02},
            }
        )
    )
    (conf / "channels" / "pacs_reports.yaml").write_text(
        yaml.safe_dump(
            {
                "content_type": "application/hl7-v2",
                "source": {"kind": "mllp", "config": {"port": 0}},
                "processors": [{"name": "pacs_oru_report", "config": {"max_attachment_bytes": 1024}}],
                "destinations": [
                    {
                        "name": "his_reports",
                        "adapter": "http_json",
                        "delivery": "async",
                        "outbox": {"initial_backoff": 0.05, "max_backoff": 0.2},
                        "config": {"url": f"{his_upstream.url}/reports", "timeout": 2, "idempotent": True},
                    }
                ],
            }
        )
    )
    pm = create_plugin_manager()
    catalogue = Catalogue.build(pm)
    running = await Engine.start(
        load_config(conf, catalogue=catalogue), pm=pm, catalogue=catalogue, base_dir=base_dir(conf)
    )
    yield running
    await running.stop()


async def send_and_ack(engine: Engine, message: bytes) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", engine.sources[0].port)  # type: ignore[attr-defined]
    try:
        writer.write(encode(message))
        await writer.drain()
        decoder, acks = MllpDecoder(), []
        while not acks:
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, "the listener closed the connection"
            acks = decoder.feed(data)
    finally:
        writer.close()
        await writer.wait_closed()
    msa = next(line for line in acks[0].decode("utf-8").split("\r") if line.startswith("MSA"))
    return msa.split("|")


async def test_a_report_over_mllp_reaches_his_as_json(engine: Engine, his_upstream: Upstream) -> None:
    msa = await send_and_ack(engine, oru("ACC9002", control_id="R2"))
    assert msa[1:3] == ["AA", "R2"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not his_upstream.accepted_bodies():
        assert loop.time() < deadline, "the report never reached HIS"
        await asyncio.sleep(0.02)
    delivered = json.loads(his_upstream.accepted_bodies()[0])
    assert delivered["accession_number"] == "ACC9002" and delivered["impression"] == "头颅CT平扫未见明显异常。"


async def test_broken_base64_gets_an_ae_naming_the_field(engine: Engine, his_upstream: Upstream) -> None:
    msa = await send_and_ack(engine, oru("ACC9003", pdf="%%%broken%%%", control_id="R3"))
    assert msa[1:3] == ["AE", "R3"]
    assert "OBX[5]-5" in msa[3] and "broken base64" in msa[3]
    stored = await engine.store.list_messages(channel="pacs_reports")
    assert [(view.status, view.party) for view in stored] == [("failed", "device")]
    assert his_upstream.count == 0
