from datetime import datetime

import pytest

from plugins.lis_device.astm.frames import scan_transcript
from plugins.lis_device.astm.queries import (
    OrderPatient,
    OrderRequest,
    build_order_download,
    read_orders,
    read_queries,
)
from plugins.lis_device.astm.records import (
    AstmDelimiters,
    AstmFormatError,
    AstmMessage,
    RecordPath,
    build_record,
)
from plugins.lis_device.astm.results import AstmResultLayout, extract_results
from tests.plugins.lis_device.samples import fixture_bytes, shared_sample, shared_sample_files

NOW = datetime(2024, 3, 14, 15, 9, 26)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("H|\\^&|||X", AstmDelimiters("|", "\\", "^", "&")),
        ("H|@^\\|||X", AstmDelimiters("|", "@", "^", "\\")),
        ("H|\\!~|||X", AstmDelimiters("|", "\\", "!", "~")),
        ("H|\\\\^&|||X", AstmDelimiters("|", "\\", "^", "&")),
        ("H|\\^&", AstmDelimiters("|", "\\", "^", "&")),
    ],
)
def test_delimiters_from_header(header, expected):
    assert AstmDelimiters.from_header(header) == expected


@pytest.mark.parametrize("header", ["P|1|", "1H|\\^&|", "H|", "H||||", "H|\\^|", "Habcd"])
def test_bad_headers_are_rejected(header):
    with pytest.raises(AstmFormatError):
        AstmDelimiters.from_header(header)


def test_record_paths():
    assert RecordPath.parse("R[2].4") == RecordPath("R", 2, 4)
    assert RecordPath.parse("O.5(2).4") == RecordPath("O", 1, 5, 2, 4)
    assert str(RecordPath.parse("R[3].4.1")) == "R[3].4.1"
    for bad in ("r.4", "R[0].4", "R.4.1.2", "R-4"):
        with pytest.raises(ValueError):
            RecordPath.parse(bad)


def test_dxh_style_delimiters_and_paths():
    message = AstmMessage.parse(fixture_bytes("astm", "results_dxh_delimiters_records.astm"))
    assert [record.type for record in message.records] == list("HPOCRRL")
    assert message.get("H.2") == "\\!~"
    assert message.get("H.5") == "SYNDXH"
    assert message.get("R[2].3.4") == "HGB"
    assert message.get("R[2].4.1") == "146"
    assert message.get("R[2].5") == "g/L"
    assert message.get("R[1].5") == "10^9/L"
    assert message.get("C.4") == "Synthetic comment with a | field delimiter"
    assert message.get("P.8.2") == "34"
    assert message.get("R[9].4") == ""
    assert message.warnings == []


def test_genexpert_delimiters_lf_lines_repeats_and_escapes():
    message = AstmMessage.parse(fixture_bytes("astm", "results_genexpert_delimiters_lf.astm"))
    assert message.delimiters == AstmDelimiters("|", "@", "^", "\\")
    assert message.get("O.5(2).4") == "ASSAY2"
    assert message.get("C[2].4") == "second ^ comment"
    leaves = dict(message.leaves())
    assert leaves["O.5(1).4"] == "ASSAY1"
    assert leaves["R[1].4"] == "7,41"
    for path, value in leaves.items():
        assert message.get(path) == value, path


def test_results_generic_layout_comma_decimals_censored_and_comments():
    batch = extract_results(
        AstmMessage.parse(fixture_bytes("astm", "results_genexpert_delimiters_lf.astm"))
    )
    assert batch.instrument == "SYNXPERT"
    assert batch.specimen_barcodes == ["BC240312003"]
    first, second = batch.results
    assert (first.source, first.test_code, first.value, first.numeric) == (
        "R[1]",
        "ASSAY1",
        "7,41",
        7.41,
    )
    assert (first.units, first.reference_range, first.abnormal_flags) == (
        "Ratio",
        "0,80 to 1,10",
        ("H",),
    )
    assert first.extra["comments"] == "first comment\nsecond ^ comment"
    assert (second.value, second.numeric, second.abnormal_flags) == (">8", None, (">",))
    assert second.observed_at == "20240312100900"
    assert batch.warnings == []


def test_results_dxh_layout_value_components_and_shifted_fields():
    message = AstmMessage.parse(fixture_bytes("astm", "results_dxh_delimiters_records.astm"))
    batch = extract_results(message, AstmResultLayout.shifted_after_units())
    wbc, hgb = batch.results
    assert (wbc.test_code, wbc.numeric, wbc.units, wbc.reference_range) == (
        "WBC",
        7.4,
        "10^9/L",
        "3.8 to 11.8",
    )
    assert (hgb.value, hgb.numeric, hgb.abnormal_flags, hgb.result_status) == (
        "146",
        146.0,
        ("A",),
        "F",
    )
    assert hgb.extra["value_components"] == "146!  H "
    assert hgb.extra["instrument_id"] == "SYN01"
    assert hgb.observed_at == "20240311075800"
    assert hgb.specimen_barcode == "BC240311002"


def test_etb_split_transcript_joins_into_records():
    scanned = scan_transcript(fixture_bytes("astm", "results_etb_split_transcript.astm"))
    assert scanned.problems == []
    assert scanned.frames == 7
    batch = extract_results(AstmMessage.parse(scanned.text))
    note = batch.results[1]
    assert note.value.startswith("slightly haemolysed, ") and note.value.endswith("END")
    assert batch.results[0].numeric == 5.6


def test_result_without_code_or_value_is_a_warning_not_a_silent_drop():
    text = "H|\\^&\rP|1\rO|1|\rR|1|||\rR|2|^^^K|4.1|mmol/L\rR|3||9\r"
    batch = extract_results(AstmMessage.parse(text))
    assert [result.test_code for result in batch.results] == ["K", ""]
    assert batch.warnings == [
        "message does not end with an L record",
        "O[1]: no specimen id in O.3.1, O.4.1",
        "R[1]: no test id and no value; record kept in raw only",
        "R[3]: value '9' has no test id",
    ]


def test_proprietary_text_is_rejected_not_half_parsed():
    with pytest.raises(AstmFormatError) as caught:
        AstmMessage.parse(fixture_bytes("astm", "proprietary_not_astm.txt"))
    assert caught.value.party == "device"
    with pytest.raises(AstmFormatError):
        AstmMessage.parse(b"\r\n\r\n")


def test_unknown_record_types_are_reported():
    message = AstmMessage.parse("H|\\^&\rX|1|odd\rL|1|N\r")
    assert message.warnings == ["record 2 has unknown type 'X'"]


def test_host_query_with_two_barcodes():
    (query,) = read_queries(
        AstmMessage.parse(fixture_bytes("astm", "host_query_two_barcodes_records.astm"))
    )
    assert query.barcodes == ["BC240313001", "BC240313002"]
    assert query.test_ids == ("ALL",)
    assert query.status_code == "O"
    assert not query.all_specimens


def test_build_record_escapes_and_components():
    d = AstmDelimiters()
    record = build_record("C", {2: "1", 3: "L", 4: "a|b^c\\d&e", 5: ("G", "x")}, d)
    assert record.text() == "C|1|L|a&F&b&S&c&R&d&E&e|G^x"
    assert record.value(4) == "a|b^c\\d&e"
    assert build_record("H", {}, AstmDelimiters("|", "@", "^", "\\")).text() == "H|@^\\"


def test_order_download_round_trip():
    patient = OrderPatient("SYN-PAT-09", "", "Synthetic", "Echo", "19750505", "F")
    orders = [
        OrderRequest("BC240314001", ("GLU", "K^NA"), patient, specimen_type="Serum", priority="S"),
        OrderRequest("BC240314002", ("HBA1C",), patient, requested_at="20240314150000"),
        OrderRequest("BC240314003", ("CRP",), OrderPatient("SYN-PAT-10")),
    ]
    message = build_order_download(orders, now=NOW, receiver="SYN-ANALYSER")
    text = message.text()
    assert text.startswith("H|\\^&|||LIS|||||SYN-ANALYSER||P|LIS2-A2|20240314150926\r")
    assert [record.type for record in message.records] == list("HPOOPOL")
    assert "|^^^GLU\\^^^K&S&NA|S|" in text
    assert text.endswith("L|1|N\r")
    parsed = AstmMessage.parse(text.encode("latin-1"))
    assert read_orders(parsed) == orders


@pytest.mark.parametrize(
    "delimiters", [AstmDelimiters("|", "@", "^", "\\"), AstmDelimiters("|", "\\", "!", "~")]
)
def test_order_download_round_trip_with_device_delimiters(delimiters):
    orders = [OrderRequest("BC1", ("A", "B"), OrderPatient("SYN-1", family_name="Syn"))]
    message = build_order_download(orders, now=NOW, delimiters=delimiters)
    parsed = AstmMessage.parse(message.text())
    assert parsed.delimiters == delimiters
    assert read_orders(parsed) == orders


def test_no_orders_answer_is_l_1_i():
    message = build_order_download([], now=NOW, sender="HIS", processing_id="QA")
    assert message.text() == "H|\\^&|||HIS|||||||QA|LIS2-A2|20240314150926\rL|1|I\r"


SHARED_ASTM = shared_sample_files("astm", ".astm")


@pytest.mark.samples
@pytest.mark.skipif(not SHARED_ASTM, reason="../shared/samples/astm absent beside the repo")
@pytest.mark.parametrize("path", SHARED_ASTM, ids=lambda path: path.name)
def test_every_shared_astm_sample_parses(path):
    raw = path.read_bytes()
    scanned = scan_transcript(raw)
    assert scanned.problems == []
    text = scanned.text if scanned.frames else raw
    message = AstmMessage.parse(text)
    assert message.records[0].type == "H"
    assert message.records[-1].type == "L"
    assert not [w for w in message.warnings if "unknown type" in w]
    batch = extract_results(message)
    assert len(batch.results) + sum("raw only" in w for w in batch.warnings) == len(
        message.records_of("R")
    )
    for leaf_path, value in message.leaves():
        assert message.get(leaf_path) == value


@pytest.mark.samples
def test_architect_results_by_hand():
    raw = shared_sample("astm", "abbott_architect_i1000sr_bhcg_frames.astm")
    scanned = scan_transcript(raw)
    assert scanned.frames == 14
    first_message = scanned.text.split(b"L|1\r")[0] + b"L|1\r"
    batch = extract_results(AstmMessage.parse(first_message))
    assert batch.instrument == "ARCHITECT"
    assert batch.specimen_barcodes == ["1379 levchenko"]
    concentration, interpretation, rlu = batch.results
    assert (concentration.test_code, concentration.value, concentration.numeric) == (
        "651",
        "> 15000.00",
        None,
    )
    assert concentration.abnormal_flags == (">",) and concentration.units == "mIU/mL"
    assert interpretation.value == "Positive"
    assert (rlu.numeric, rlu.units, rlu.observed_at) == (2423973.0, "RLU", "20120217144954")


@pytest.mark.samples
def test_beckman_dxh_results_by_hand():
    message = AstmMessage.parse(shared_sample("astm", "beckman_dxh_results_records.astm"))
    batch = extract_results(message, AstmResultLayout.shifted_after_units())
    assert len(batch.results) == 28
    hgb = batch.results[3]
    assert (hgb.test_code, hgb.value, hgb.numeric, hgb.units) == ("HGB", "146", 146.0, "g/L")
    assert (hgb.reference_range, hgb.abnormal_flags, hgb.result_status) == (
        "109 to 143",
        ("A",),
        "F",
    )
    assert hgb.specimen_barcode == "000004287888"


@pytest.mark.samples
def test_euroimmun_and_horiba_by_hand():
    euro = extract_results(
        AstmMessage.parse(shared_sample("astm", "euroimmun_analyzer1_records.astm"))
    )
    assert [r.value for r in euro.results[:2]] == [">8", "7,41"]
    assert euro.results[1].numeric == 7.41
    horiba = AstmMessage.parse(shared_sample("astm", "horiba_yumizen_h550_qc_records.astm"))
    assert horiba.delimiters == AstmDelimiters()
    mcv = extract_results(horiba).results[0]
    assert (mcv.test_code, mcv.numeric, mcv.reference_range) == ("MCV", 78.4, "73.5-83.5")


@pytest.mark.samples
def test_shared_host_queries_by_hand():
    aqua = read_queries(
        AstmMessage.parse(
            scan_transcript(shared_sample("astm", "aqualink_a9000p_host_query_frames.astm")).text
        )
    )
    assert aqua[0].barcodes == ["3788513"] and aqua[0].starting[0].rest == ("#ENTRADA 1", "D8")
    dxh = read_queries(
        AstmMessage.parse(shared_sample("astm", "beckman_dxh_host_query_q_records.astm"))
    )
    assert dxh[0].barcodes == ["000004287888"] and dxh[0].test_ids == ("ALL",)
    mindray = read_queries(
        AstmMessage.parse(
            scan_transcript(shared_sample("astm", "mindray_cl_astm_host_query_rq_frames.astm")).text
        )
    )
    assert mindray[0].barcodes == ["SAMPLE123"]


@pytest.mark.samples
def test_mindray_download_read_as_orders():
    message = AstmMessage.parse(
        scan_transcript(shared_sample("astm", "mindray_cl_astm_download_sa_frames.astm")).text
    )
    (order,) = read_orders(message, code_component=2)
    assert order.tests == ("CA125", "CA126", "TPSA", "HIV")
    assert order.instrument_specimen_id == "SAMPLE123"


def test_a_transcript_keeps_only_the_frames_the_receiver_accepted():
    from plugins.lis_device.astm.frames import ACK, ENQ, EOT, NAK, build_frame

    header, result, end = b"H|\\^&|||ANALYSER\r", b"R|1|^^^GLU|5.6|mmol/L\r", b"L|1|N\r"
    first = build_frame(1, header, final=True)
    second = build_frame(2, result, final=True)
    damaged = second.replace(b"5.6", b"9.6")  # checksum no longer matches
    transcript = b"".join([
        bytes((ENQ, ACK)), first, bytes((ACK,)),
        damaged, bytes((NAK,)),  # refused: the retransmission follows
        second, bytes((ACK,)),
        second, bytes((ACK,)),  # repeated after a lost ACK
        build_frame(3, end, final=True), bytes((ACK, EOT)),
    ])

    scanned = scan_transcript(transcript)

    assert scanned.text == header + result + end
    assert AstmMessage.parse(scanned.text).get("R[1].4") == "5.6"
    assert scanned.problems == ["frame 2: refused with NAK; its retransmission follows"]
