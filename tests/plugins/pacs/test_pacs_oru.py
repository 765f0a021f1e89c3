"""ORU^R01 reports from the PACS → exam report JSON: attachments taken out for the blob store,
the mapping, and bad input. The path over a real MLLP socket is in test_pacs_report_sources.py."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.message import Payload
from plugins.pacs.orm import segment
from plugins.pacs.oru import map_oru, store_ready_oru
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


def test_the_pdf_is_taken_out_and_its_reference_put_in() -> None:
    received = oru()
    ready = store_ready_oru(received, max_attachment_bytes=1024)

    ref = "blob:sha256:" + hashlib.sha256(PDF).hexdigest()
    assert ready.accession_number == "ACC9001"
    assert [(a.data, a.content_type, a.ref) for a in ready.attachments] == [(PDF, "application/pdf", ref)]
    assert ready.message == received.replace(
        f"^Application^PDF^Base64^{base64.b64encode(PDF).decode()}".encode(),
        f"^Application^PDF^Blob^{ref}&{len(PDF)}".encode(),
    )


def test_a_report_maps_to_the_model_with_its_pdf_by_reference() -> None:
    report = map_oru(store_ready_oru(oru(), max_attachment_bytes=1024).message)
    assert (report.accession_number, report.requested_procedure_id, report.modality) == ("ACC9001", "RP9001", "CT")
    assert report.study_instance_uid == "1.2.826.0.1.3680043.2.1125.9001"
    assert report.findings == "颅内未见明显异常密度影。\n脑室系统未见扩张，中线结构居中。"
    assert report.impression == "头颅CT平扫未见明显异常。"
    assert (report.author.id, report.author.name) == ("R01", "测试 报告医生")
    assert report.verified_at is not None and report.verified_at.isoformat() == "2026-11-23T10:05:00"
    assert report.patient.name == "测试 患者甲" and report.status.value == "final"
    digest = hashlib.sha256(PDF).hexdigest()
    assert [(a.ref, a.content_type, a.sha256, a.size, a.title) for a in report.attachments] == [
        (f"blob:sha256:{digest}", "application/pdf", digest, len(PDF), "Diagnostic Imaging Report")
    ]


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        (oru(pdf="JVBERi0x!!!not-base64"), "OBX[5]-5", "broken base64"),
        (oru(pdf=base64.b64encode(b"x" * 4096).decode()), "OBX[5]-5", "over the limit of 1024 bytes"),
        (oru(pdf=""), "OBX[5]-5", "empty"),
        (oru().replace(b"^Application^PDF^", b"^Text^HTML^"), "OBX[5]-5", "unsupported attachment type text/html"),
        (oru(accession=""), "OBR-18", "no accession"),
        (oru().replace(b"ORU^R01", b"ORM^O01"), "MSH-9", "expected ORU^R01"),
    ],
)
def test_unusable_reports_are_the_senders_fault(message: bytes, field: str, words: str) -> None:
    with pytest.raises(InputError) as raised:
        store_ready_oru(message, max_attachment_bytes=1024)
    assert (raised.value.field, raised.value.party) == (field, "third_party")
    assert words in str(raised.value)


def test_mapping_refuses_inline_base64_it_could_not_keep() -> None:
    with pytest.raises(InputError, match="source kind pacs_oru") as raised:
        map_oru(oru(), party="device")
    assert (raised.value.field, raised.value.party) == ("OBX[5]-5", "device")


def test_the_processor_gives_his_json_with_references_only() -> None:
    processor = OruReportProcessor(OruReportConfig())
    ready = store_ready_oru(oru(), max_attachment_bytes=1024)
    processed = processor.process(Payload(ready.message, "application/hl7-v2"))
    report = processed.json()
    assert report["attachments"][0]["ref"] == ready.attachments[0].ref
    assert base64.b64encode(PDF) not in processed.body and "attachment_data" not in report


@pytest.mark.samples
def test_the_dcm4che_sample_report() -> None:
    if not SAMPLE.exists():
        pytest.skip(f"sample not present: {SAMPLE}")
    report = map_oru(SAMPLE.read_bytes())
    assert report.accession_number == "ACC1" and report.study_instance_uid == "1.113654.1.2001.30.2.2"
    assert report.recommendation.startswith("Follow-up with CT of the Abdomen")
    assert "right kidney is slightly enlarged" in report.findings
    assert report.author.id == "BACH" and report.verified_at is not None
    assert report.modality is None  # the sample has its result status in OBR-24, not a modality
