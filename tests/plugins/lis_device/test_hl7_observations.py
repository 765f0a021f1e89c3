import pytest

from plugins.lis_device.hl7.observations import ObservationLayout, extract_observations
from plugins.lis_device.hl7.reader import Hl7Message
from plugins.lis_device.results import parse_number
from tests.plugins.lis_device.samples import fixture_bytes, shared_sample, shared_sample_files


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("5.2", 5.2),
        (" 11,49 ", 11.49),
        ("-3", -3.0),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("57.000000", 57.0),
    ],
)
def test_parse_number(text, number):
    assert parse_number(text) == number


@pytest.mark.parametrize(
    "text", ["", ">8", "> 15000.00", "Positive", "1,234.5", "3+", "nan", "3,50-9,50"]
)
def test_parse_number_refuses_non_numbers(text):
    assert parse_number(text) is None


def results_of(raw: bytes, **kwargs):
    return extract_observations(Hl7Message.parse(raw, **kwargs))


def test_comma_decimals_kept_as_text_and_parsed():
    batch = results_of(fixture_bytes("hl7", "oru_lf_comma_decimal_no_vt.hl7"))
    assert batch.message_type == "ORU^R01"
    assert batch.instrument == "DH36"
    assert batch.specimen_barcodes == ["BC240301001"]
    wbc, rbc, hgb = batch.results
    assert (wbc.source, wbc.test_code, wbc.test_name) == ("OBX[1]", "6690-2", "WBC")
    assert (wbc.value, wbc.numeric, wbc.units) == ("11,49", 11.49, "10*9/L")
    assert wbc.reference_range == "3,50-9,50"
    assert wbc.abnormal_flags == ("H", "A")
    assert (wbc.result_status, wbc.observed_at) == ("F", "20240301101400")
    assert wbc.specimen_barcode == "BC240301001"
    assert rbc.numeric == 4.61 and hgb.numeric == 128.0 and hgb.abnormal_flags == ()
    assert batch.warnings == []


def test_spm_barcode_and_cwe_flags_v25():
    batch = results_of(fixture_bytes("hl7", "oru_utf8_chinese_enhanced_ack.hl7"))
    assert batch.specimen_barcodes == ["SP240303042"]
    plt, note = batch.results
    assert plt.abnormal_flags == ("N",)
    assert (plt.result_status, plt.observed_at) == ("F", "20240303085500")
    assert plt.test_name == "\u8840\u5c0f\u677f"
    assert note.numeric is None and note.value == "\u6807\u672c\u8f7b\u5ea6\u6eb6\u8840"
    assert plt.extra == {"value_type": "NM"}


def test_quirks_never_drop_a_result_silently():
    batch = results_of(fixture_bytes("hl7", "oru_device_quirks.hl7"))
    codes = [(result.source, result.test_code, result.value) for result in batch.results]
    assert codes == [
        ("OBX[1]", "TBIL", "17.2"),
        ("OBX[2]", "ALT", "high"),
        ("OBX[4]", "AST", ">500"),
    ]
    assert batch.results[2].numeric is None
    assert batch.warnings == [
        "OBX[1]: OBX-3 empty, test code taken from OBX-4",
        "OBX[2]: NM value 'high' is not a plain number",
        "OBX[3]: no test code and no value; segment kept in raw only",
        "OBX[4]: NM value '>500' is not a plain number",
    ]


def test_layout_can_point_the_barcode_elsewhere():
    raw = fixture_bytes("hl7", "oru_utf8_chinese_enhanced_ack.hl7")
    batch = extract_observations(
        Hl7Message.parse(raw), ObservationLayout(specimen_paths=("OBR-3.1",))
    )
    assert batch.specimen_barcodes == ["FIL-1"]


def test_oru_without_obx_is_reported():
    batch = results_of(b"MSH|^~\\&|QC||||20240101||ORU^R01|3|P|2.3.1\rOBR|1|7|AST\r")
    assert batch.results == []
    assert batch.warnings == ["ORU without OBX segments: no results to extract"]


SHARED_HL7 = shared_sample_files("hl7", ".hl7", ".mllp")


@pytest.mark.samples
@pytest.mark.skipif(not SHARED_HL7, reason="../shared/samples/hl7 absent beside the repo")
@pytest.mark.parametrize("path", SHARED_HL7, ids=lambda path: path.name)
def test_every_shared_hl7_sample_parses(path):
    message = Hl7Message.parse(path.read_bytes())
    assert message.message_code
    assert message.control_id
    batch = extract_observations(message)
    obx_count = len(message.segments_named("OBX"))
    from_obx = [result for result in batch.results if result.source.startswith("OBX")]
    assert len(from_obx) + sum("kept in raw only" in w for w in batch.warnings) == obx_count
    for path_text, value in message.leaves():
        assert message.get(path_text) == value


@pytest.mark.samples
def test_mindray_patient_results_by_hand():
    batch = results_of(shared_sample("hl7", "mindray_cl_oru_r01_patient_manual.mllp"))
    assert batch.specimen_barcodes == ["12345678"]
    assert [(r.test_code, r.test_name, r.value, r.numeric, r.units) for r in batch.results] == [
        ("2", "TBil", "100", 100.0, "umol/L"),
        ("5", "ALT", "98.2", 98.2, "umol/L"),
        ("6", "AST", "26.4", 26.4, "umol/L"),
    ]
    assert batch.results[0].observed_at == "20120405194245"


@pytest.mark.samples
def test_wondfo_utf8_and_gb18030_give_the_same_results():
    utf8 = Hl7Message.parse(shared_sample("hl7", "wondfo_finecare_plus_oru_r01_chinese_utf8.hl7"))
    gb = Hl7Message.parse(shared_sample("hl7", "DERIVED_wondfo_oru_r01_reencoded_gb18030.hl7"))
    assert (utf8.codec, gb.codec) == ("utf-8", "gb18030")
    assert utf8.get("MSH-4.1") == gb.get("MSH-4.1") != ""
    first, second = extract_observations(utf8), extract_observations(gb)
    assert first.results == second.results
    (mau,) = first.results
    assert (mau.test_code, mau.value, mau.numeric, mau.units, mau.reference_range) == (
        "MAU",
        "23.7",
        23.7,
        "mg/L",
        "0.0-20.0",
    )
    assert mau.specimen_barcode == "F20617504"


@pytest.mark.samples
def test_bionote_v26_and_mindray_polish_by_hand():
    bionote = results_of(shared_sample("hl7", "bionote_vcheck_ihe_pcd_oru_r01_v26.hl7"))
    (cprg,) = bionote.results
    assert (cprg.test_code, cprg.test_name, cprg.numeric, cprg.units) == (
        "BN0280",
        "cPRG",
        1.33,
        "ng/mL",
    )
    assert cprg.reference_range == "[1.00;30.00]" and cprg.result_status == "F"
    polish = results_of(shared_sample("hl7", "mindray_bs_cl_oru_r01_polish_site_manual.hl7"))
    (hdl,) = polish.results
    assert (hdl.test_code, hdl.test_name, hdl.numeric, hdl.abnormal_flags) == (
        "25",
        "HDL C",
        57.0,
        ("Normale",),
    )


@pytest.mark.samples
def test_dcm4che_latin1_label_over_utf8_bytes():
    message = Hl7Message.parse(
        shared_sample("hl7", "dcm4che_mesa_orm_o01_generalorder_msh9_is_omi_o23.hl7")
    )
    assert message.codec == "utf-8"
    assert "\u2013" in message.get("OBR-31.2")
    assert (message.message_code, message.trigger_event) == ("OMI", "O23")
