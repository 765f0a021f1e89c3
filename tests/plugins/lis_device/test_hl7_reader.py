import pytest

from plugins.lis_device.hl7.reader import FieldPath, Hl7HeaderError, Hl7Message
from tests.plugins.lis_device.samples import fixture_bytes


def test_field_paths_parse_and_print():
    assert FieldPath.parse("PID-5.1") == FieldPath("PID", 1, 5, None, 1)
    assert FieldPath.parse("OBX[2]-5") == FieldPath("OBX", 2, 5)
    assert FieldPath.parse("PID-3(2).1") == FieldPath("PID", 1, 3, 2, 1)
    assert FieldPath.parse("OBR-2.1.2") == FieldPath("OBR", 1, 2, None, 1, 2)
    assert str(FieldPath.parse("OBX[2]-3(1).2.1")) == "OBX[2]-3(1).2.1"
    assert str(FieldPath.parse("MSH")) == "MSH"


@pytest.mark.parametrize("bad", ["pid-5", "PID-", "PID-0", "OBX[0]-1", "PID-5..1", ""])
def test_bad_field_paths_raise(bad):
    with pytest.raises(ValueError):
        FieldPath.parse(bad)


def test_lf_terminators_no_vt_comma_decimals():
    message = Hl7Message.parse(fixture_bytes("hl7", "oru_lf_comma_decimal_no_vt.hl7"))
    assert [segment.name for segment in message.segments] == [
        "MSH",
        "PID",
        "PV1",
        "OBR",
        "OBX",
        "OBX",
        "OBX",
    ]
    assert message.get("MSH-1") == "|"
    assert message.get("MSH-2") == "^~\\&"
    assert message.get("MSH-9.2") == "R01"
    assert message.get("OBX[1]-5") == "11,49"
    assert message.get("OBX-5") == "11,49"
    assert message.get("OBX[3]-3.2") == "HGB"
    assert message.get("OBX[1]-8") == "H~A"
    assert message.get("OBX[1]-8(2)") == "A"
    assert message.get("OBX[9]-5") == ""
    assert message.get("PID-5.2") == "Alpha"
    assert message.warnings == []


def test_gb18030_message_decoded_per_msh18():
    message = Hl7Message.parse(fixture_bytes("hl7", "oru_gb18030.hl7"))
    assert message.codec == "gb18030"
    assert message.declared_charset == "GB 18030-2000"
    assert message.get("MSH-4") == "\u4e07\u5b5a\u6d4b\u8bd5"
    assert message.get("OBX-3.2") == "C\u53cd\u5e94\u86cb\u767d"


def test_gb18030_without_msh18_needs_the_device_default():
    raw = fixture_bytes("hl7", "oru_gb18030.hl7").replace(b"|GB 18030-2000", b"|")
    assert (
        Hl7Message.parse(raw, default_charset="GBK").get("PID-5")
        == "\u6d4b\u8bd5\u60a3\u8005\u7532"
    )


def test_utf8_repetitions_and_subcomponents():
    message = Hl7Message.parse(fixture_bytes("hl7", "oru_utf8_chinese_enhanced_ack.hl7"))
    assert message.codec == "utf-8"
    assert message.get("PID-3(1).1") == "SYN-0003"
    assert message.get("PID-3(2).4") == "GOV"
    assert message.get("PID-3.1") == "SYN-0003"
    assert message.get("SPM-2.1.1") == "SP240303042"
    assert message.get("SPM-2.1.2") == "LIS"
    assert message.get("OBX[2]-5") == "\u6807\u672c\u8f7b\u5ea6\u6eb6\u8840"
    assert message.version == "2.5.1"


def test_crlf_terminators_and_escape_sequences():
    message = Hl7Message.parse(fixture_bytes("hl7", "oru_escapes_crlf.hl7"))
    assert len(message.segments_named("OBX")) == 2
    assert message.get("OBX[1]-5") == "a|b^c&d~e\\f A \\H\\bold\\N\\"
    assert message.get("OBX[2]-6") == "mmol/L"


def test_text_input_and_segment_access():
    message = Hl7Message.parse("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.4\rPID|1||X~Y\r")
    segment = message.segment("PID")
    assert segment is not None and segment.repetitions(3) == ["X", "Y"]
    assert message.get("PID") == "PID|1||X~Y"
    assert message.get("MSH").startswith("MSH|^~\\&|A|B")
    assert message.segment("PID", 2) is None


def test_non_segment_lines_are_kept_and_reported():
    message = Hl7Message.parse("MSH|^~\\&|A|||||ORU^R01|1|P|2.3\rgarbage line\rOBX|1|NM|X||1\r")
    assert [segment.name for segment in message.segments] == ["MSH", "garbage line", "OBX"]
    assert message.warnings == ["line 2 does not start with a segment name: 'garbage li'"]


@pytest.mark.parametrize("raw", [b"", b"PID|1", b"\x0bhello\x1c\r", b"MSH"])
def test_no_msh_is_a_device_error(raw):
    with pytest.raises(Hl7HeaderError):
        Hl7Message.parse(raw)


def test_mllp_bytes_around_the_text_are_ignored():
    message = Hl7Message.parse(b"\x0bMSH|^~\\&|A||||||ORU^R01|77|P|2.3\rOBX|1|NM|X||1\r\x1c\r")
    assert message.control_id == "77"
    assert message.get("OBX-5") == "1"


def test_leaves_use_minimal_paths():
    message = Hl7Message.parse(
        "MSH|^~\\&|A||||20240101||ORU^R01|1|P|2.5\r"
        "PID|1||ID1^^^H&1.2&ISO~ID2||Doe^J\r"
        "OBX|1|NM|GLU||5,1\rOBX|2|ST|NOTE||a\\S\\b\r"
    )
    leaves = dict(message.leaves())
    assert leaves["MSH-1"] == "|"
    assert leaves["MSH-9.1"] == "ORU"
    assert leaves["PID-3(1).1"] == "ID1"
    assert leaves["PID-3(1).4.2"] == "1.2"
    assert leaves["PID-3(2)"] == "ID2"
    assert leaves["PID-5.2"] == "J"
    assert leaves["OBX[1]-5"] == "5,1"
    assert leaves["OBX[2]-5"] == "a^b"
    for path, value in leaves.items():
        assert message.get(path) == value, path
