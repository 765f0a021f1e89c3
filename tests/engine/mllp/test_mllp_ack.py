from datetime import datetime

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from engine.mllp.ack import (
    AckCode,
    AckError,
    AckMode,
    Outcome,
    accept_ack_wanted,
    ack_code,
    ack_mode,
    acknowledge,
    build_ack,
)
from engine.mllp.header import MshHeader, decode_message

NOW = datetime(2024, 5, 6, 7, 8, 9)


def message(version="2.3.1", msh15="", msh16="", charset="", control="CTRL-9", structure=""):
    msg_type = "ORU^R01" + (f"^{structure}" if structure else "")
    return (
        f"MSH|^~\\&|ANALYSER|LAB|LIS|HOSP|20240506070000||{msg_type}|{control}|P|{version}"
        f"|||{msh15}|{msh16}||{charset}\rPID|1||SYN-1\rOBX|1|NM|GLU||5.1|mmol/L\r"
    )


def segments(ack: str) -> dict[str, list[str]]:
    assert ack.endswith("\r") and "\n" not in ack
    return {line[:3]: line.split("|") for line in ack.rstrip("\r").split("\r")}


@pytest.mark.parametrize(
    ("msh15", "msh16", "expected"),
    [
        ("", "", AckMode.ORIGINAL),
        ("AL", "NE", AckMode.ENHANCED),
        ("", "AL", AckMode.ENHANCED),
        ("ER", "", AckMode.ENHANCED),
        ("", "0", AckMode.ORIGINAL),  # Mindray: MSH-16 holds the result type
        ("P", "2", AckMode.ORIGINAL),
    ],
)
def test_ack_mode_from_msh15_16(msh15, msh16, expected):
    assert ack_mode(MshHeader.parse(message(msh15=msh15, msh16=msh16))) is expected


def test_per_device_override_wins():
    header = MshHeader.parse(message(msh15="AL", msh16="NE"))
    assert ack_mode(header, "original") is AckMode.ORIGINAL
    assert ack_mode(MshHeader.parse(message()), AckMode.ENHANCED) is AckMode.ENHANCED


def test_codes_per_mode_and_outcome():
    assert ack_code(AckMode.ORIGINAL, Outcome.ACCEPT) is AckCode.APPLICATION_ACCEPT
    assert ack_code(AckMode.ORIGINAL, Outcome.ERROR) is AckCode.APPLICATION_ERROR
    assert ack_code(AckMode.ORIGINAL, Outcome.REJECT) is AckCode.APPLICATION_REJECT
    assert ack_code(AckMode.ENHANCED, Outcome.ACCEPT) is AckCode.COMMIT_ACCEPT
    assert ack_code(AckMode.ENHANCED, Outcome.ERROR) is AckCode.COMMIT_ERROR
    assert ack_code(AckMode.ENHANCED, Outcome.REJECT) is AckCode.COMMIT_REJECT


@pytest.mark.parametrize(
    ("msh15", "outcome", "wanted"),
    [
        ("AL", Outcome.ACCEPT, True),
        ("NE", Outcome.ERROR, False),
        ("ER", Outcome.ACCEPT, False),
        ("ER", Outcome.REJECT, True),
        ("SU", Outcome.ACCEPT, True),
        ("SU", Outcome.ERROR, False),
        ("", Outcome.ACCEPT, True),
    ],
)
def test_enhanced_accept_ack_sent_as_msh15_asks(msh15, outcome, wanted):
    header = MshHeader.parse(message(msh15=msh15, msh16="AL"))
    assert accept_ack_wanted(header, AckMode.ENHANCED, outcome) is wanted
    assert accept_ack_wanted(header, AckMode.ORIGINAL, outcome) is True


def test_original_mode_aa_fields():
    header = MshHeader.parse(message())
    ack = build_ack(header, "AA", control_id="ACK-1", now=NOW)
    seg = segments(ack)
    msh, msa = seg["MSH"], seg["MSA"]
    assert msh[1] == "^~\\&"
    assert msh[2:6] == ["LIS", "HOSP", "ANALYSER", "LAB"]  # sender and receiver swapped
    assert msh[6] == "20240506070809"
    assert msh[8] == "ACK^R01^ACK"
    assert msh[9] == "ACK-1"
    assert msh[10:12] == ["P", "2.3.1"]
    assert msa == ["MSA", "AA", "CTRL-9"]
    assert "ERR" not in seg


def test_fresh_control_id_each_time():
    header = MshHeader.parse(message())
    first = segments(build_ack(header, "AA"))["MSH"][9]
    second = segments(build_ack(header, "AA"))["MSH"][9]
    assert first and second and first != second and first != "CTRL-9"


def test_error_ack_v231_has_msa6_and_err1():
    header = MshHeader.parse(message())
    error = AckError("101", "PID-3 | missing", ("PID", 1, 3))
    seg = segments(build_ack(header, "AE", error=error, now=NOW))
    assert seg["MSA"][:4] == ["MSA", "AE", "CTRL-9", "PID-3 \\F\\ missing"]
    assert seg["MSA"][6] == "101^Required field missing"
    assert seg["ERR"][1] == "PID^1^3^101&Required field missing&HL70357"


def test_error_ack_v25_has_err2_to_err4():
    header = MshHeader.parse(message(version="2.5.1", msh15="AL", msh16="NE"))
    error = AckError("200", "ORU^R01 not routed", ("MSH", 1, 9))
    seg = segments(build_ack(header, "CR", error=error, now=NOW))
    assert seg["MSA"][1:3] == ["CR", "CTRL-9"]
    assert seg["ERR"][2] == "MSH^1^9"
    assert seg["ERR"][3] == "200^Unsupported message type^HL70357"
    assert seg["ERR"][4] == "E"
    assert seg["MSH"][14:16] == ["NE", "NE"]  # an accept ACK asks for no ACK itself


@pytest.mark.parametrize("version", ["2.3.1", "2.4", "2.5", "2.5.1", "2.6"])
@pytest.mark.parametrize("code", ["AA", "AE", "AR", "CA", "CE", "CR"])
def test_acks_validate_against_hl7apy_structures(version, code):
    header = MshHeader.parse(message(version=version))
    error = None if code in ("AA", "CA") else AckError("207", "store unavailable", ("MSH", 1, 9))
    ack = build_ack(header, code, error=error, now=NOW)
    parsed = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT)
    assert parsed.validate()
    assert parsed.msa.msa_1.value == code
    assert parsed.msa.msa_2.value == "CTRL-9"


def test_mindray_style_echo_of_msh16():
    header = MshHeader.parse(message(msh16="2"))
    seg = segments(build_ack(header, "AA", copy_fields=(16,)))
    assert seg["MSH"][15] == "2"


def test_acknowledge_keeps_charset_and_swaps_chinese_names():
    raw = message(version="2.4", charset="GB 18030-2000").replace("LAB", "\u68c0\u9a8c\u79d1")
    reply = acknowledge(raw.encode("gb18030"), Outcome.ACCEPT, now=NOW)
    assert reply.code is AckCode.APPLICATION_ACCEPT and reply.send
    text = reply.payload.decode("gb18030")
    seg = segments(text)
    assert seg["MSH"][5] == "\u68c0\u9a8c\u79d1"
    assert seg["MSH"][17] == "GB 18030-2000"
    assert decode_message(reply.payload).codec == "gb18030"


def test_acknowledge_enhanced_never_ack_is_not_sent():
    reply = acknowledge(message(msh15="NE", msh16="AL").encode(), Outcome.ACCEPT)
    assert reply.mode is AckMode.ENHANCED and reply.code is AckCode.COMMIT_ACCEPT
    assert reply.send is False


def test_acknowledge_garbage_gets_a_reject_not_silence():
    reply = acknowledge(b"\x02hello there", Outcome.ACCEPT)
    assert reply.code is AckCode.APPLICATION_REJECT
    seg = segments(reply.payload.decode())
    assert seg["MSA"][1:3] == ["AR", ""]
    assert seg["ERR"][3].startswith("100^")
    assert seg["MSH"][8] == "ACK^^ACK"


def test_acknowledge_lf_separated_message_reads_control_id():
    raw = message(control="LF-7").replace("\r", "\n").encode()
    reply = acknowledge(raw, Outcome.ERROR, error=AckError("207", "boom"))
    seg = segments(reply.payload.decode())
    assert seg["MSA"][1:3] == ["AE", "LF-7"]
    assert seg["ERR"][1] == "^^^207&Application internal error&HL70357"
