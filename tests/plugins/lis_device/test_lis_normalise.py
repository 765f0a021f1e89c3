"""One result model for HL7 and ASTM, mapped to LIS item codes by the instrument's table;
an unmapped code or a message with nothing readable is refused, never dropped."""

from __future__ import annotations

import pytest

from engine.message import Payload
from plugins.lis_device.astm.frames import frames_for_message
from plugins.lis_device.lis_codes import CodeTable, CodeTableError
from plugins.lis_device.normalise import NoResultsRead, QcWhen, ResultMapper, UnmappedTestCode, read_results
from tests.plugins.lis_device.samples import fixture_bytes, shared_sample

HL7_ORU = (
    "MSH|^~\\&|SYN-CL|LAB|||20261122083000||ORU^R01|R77|P|2.3.1||||||UNICODE\r"
    "PID|1||SYN-PAT-40||测试^乙\r"
    "OBR|1|BC-N001\r"
    "OBX|1|NM|GLU^Glucose||5,12|mmol/L|3,90-6,10|N|||F|||20261122082900\r"
    "OBX|2|NM|K^Potassium||5.9|mmol/L|3.5-5.3|H~A|||F|||20261122082900\r"
).encode()
ASTM_RECORDS = (
    b"H|\\^&|||SYN-AU^1.0|||||||P|LIS2-A2|20261122083000\r"
    b"P|1||SYN-PAT-41\r"
    b"O|1|BC-N002||^^^GLU|R||||||N\r"
    b"R|1|^^^GLU|6.4|mmol/L|3.9-6.1|H||F||||20261122082500\r"
    b"O|2|QC-LOT-7||^^^GLU|R||||||Q\r"
    b"R|2|^^^GLU|5.0|mmol/L|4.8-5.2|N||F||||20261122082600\r"
    b"L|1|N\r"
)
CODES = CodeTable.parse("# SYN-CL\ntest_code,lis_code,lis_name\nGLU,1001,葡萄糖\nK,1002,钾\n", "syn.csv")


def test_hl7_results_give_the_lis_a_decimal_point_and_its_item_codes() -> None:
    document = ResultMapper(CODES).document(Payload(HL7_ORU, "application/hl7-v2"))
    assert (document["kind"], document["instrument"], document["specimens"], document["qc"]) == (
        "lis_results", "SYN-CL", ["BC-N001"], False,
    )
    glucose, potassium = document["results"]
    assert (glucose["lis_code"], glucose["lis_name"], glucose["value"]) == ("1001", "葡萄糖", "5.12")
    assert (glucose["numeric"], glucose["units"], glucose["reference_range"], glucose["source"]) == (
        5.12, "mmol/L", "3,90-6,10", "OBX[1]",
    )
    assert (potassium["lis_code"], potassium["abnormal_flags"], potassium["result_status"]) == ("1002", ["H", "A"], "F")
    assert potassium["observed_at"] == "20261122082900" and potassium["specimen_barcode"] == "BC-N001"


@pytest.mark.parametrize("framed", [False, True], ids=["records", "transcript"])
def test_astm_results_map_the_same_way_and_a_qc_order_is_marked(framed: bool) -> None:
    body = b"\x05" + b"".join(frames_for_message(ASTM_RECORDS)) + b"\x04" if framed else ASTM_RECORDS
    document = ResultMapper(CODES).document(Payload(body, "application/x-astm"))
    patient, control = document["results"]
    assert (patient["specimen_barcode"], patient["lis_code"], patient["value"], patient["qc"]) == (
        "BC-N002", "1001", "6.4", False,
    )
    assert (control["specimen_barcode"], control["qc"]) == ("QC-LOT-7", True)
    assert document["instrument"] == "SYN-AU" and document["qc"] is True


def test_a_qc_message_by_astm_processing_id_and_by_an_instrument_convention() -> None:
    qc_header = ASTM_RECORDS.replace(b"|||||||P|LIS2-A2", b"|||||||QR|LIS2-A2")
    assert all(r.qc for r in read_results(Payload(qc_header, "application/x-astm")).results)
    mindray_qc = HL7_ORU.replace(b"UNICODE\r", b"UNICODE\r").replace(b"|P|2.3.1||||||", b"|P|2.3.1||||2||")
    rules = (QcWhen("MSH-16", "2"),)
    assert all(r.qc for r in read_results(Payload(mindray_qc, "application/hl7-v2"), qc_when=rules).results)
    assert not any(r.qc for r in read_results(Payload(HL7_ORU, "application/hl7-v2"), qc_when=rules).results)


def test_an_unmapped_code_is_refused_naming_the_code_and_the_table() -> None:
    table = CodeTable.parse("test_code,lis_code\nGLU,1001\n", "conf/lis_codes/syn.csv")
    with pytest.raises(UnmappedTestCode) as refused:
        ResultMapper(table).document(Payload(HL7_ORU, "application/hl7-v2"))
    assert refused.value.detail == {
        "lis_problem": "unmapped_test_code", "codes": "K", "table": "conf/lis_codes/syn.csv",
    }


def test_a_message_with_no_readable_result_is_refused_not_passed_on_empty() -> None:
    nothing = b"MSH|^~\\&|SYN||||20261122||ORU^R01|3|P|2.3.1\rOBR|1|BC-N009|GLU\r"
    with pytest.raises(NoResultsRead, match="ORU without OBX"):
        ResultMapper(CODES).document(Payload(nothing, "application/hl7-v2"))


def test_mindray_qc_without_obx_is_read_from_its_obr_fields() -> None:
    qc = shared_sample("hl7", "mindray_cl_oru_r01_qc_manual.mllp")
    table = CodeTable.parse("test_code,lis_code\nAST,2002\n")
    document = ResultMapper(table).document(Payload(qc, "application/hl7-v2"))
    [result] = document["results"]
    assert (result["lis_code"], result["value"], result["units"], result["qc"]) == ("2002", "0.137470", "nkat/L", True)
    assert (result["specimen_barcode"], result["source"]) == ("QUAL2/2222", "OBR[1]-20")
    assert document["warnings"] == ["ORU without OBX: QC results read from OBR-20/21 (Mindray QC layout)"]


def test_comma_decimal_fixture_values_reach_the_lis_with_points() -> None:
    table = CodeTable.parse("test_code,lis_code\n6690-2,WBC\n789-8,RBC\n718-7,HGB\n")
    document = ResultMapper(table).document(Payload(fixture_bytes("hl7", "oru_lf_comma_decimal_no_vt.hl7"), "x"))
    assert [(r["lis_code"], r["value"], r["numeric"]) for r in document["results"]] == [
        ("WBC", "11.49", 11.49), ("RBC", "4.61", 4.61), ("HGB", "128", 128.0),
    ]


def test_the_mindray_vendor_sample_maps_its_channel_numbers() -> None:
    table = CodeTable.parse("test_code,lis_code\n2,CA125\n5,CEA\n6,AFP\n")
    sample = shared_sample("hl7", "mindray_cl_oru_r01_patient_manual.mllp")
    document = ResultMapper(table).document(Payload(sample, "x"))
    assert [(r["lis_code"], r["value"], r["units"]) for r in document["results"]] == [
        ("CA125", "100", "umol/L"), ("CEA", "98.2", "umol/L"), ("AFP", "26.4", "umol/L"),
    ]
    assert document["specimens"] == ["12345678"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("code,item\nGLU,1\n", "header must name test_code, lis_code"),
        ("test_code,lis_code\nGLU,1\nGLU,2\n", "line 3: test code 'GLU' is listed twice"),
        ("test_code,lis_code\n# comment\nGLU,\n", "line 3: both test_code and lis_code are needed"),
    ],
)
def test_a_broken_code_table_is_a_configuration_error(text: str, problem: str) -> None:
    with pytest.raises(CodeTableError, match=problem):
        CodeTable.parse(text, "t.csv")
