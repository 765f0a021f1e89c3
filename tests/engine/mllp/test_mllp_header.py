import pytest

from engine.mllp.header import (
    Hl7HeaderError,
    MshHeader,
    Separators,
    codec_for_charset,
    decode_message,
    sniff_declared_charset,
)


def msh(charset: str = "", extra: str = "") -> str:
    return (
        f"MSH|^~\\&|DEV|LAB|LIS|HOSP|20240101||ORU^R01^ORU_R01|C1|P|2.5|||AL|NE||{charset}{extra}\r"
    )


def test_header_numbers_fields_like_hl7():
    header = MshHeader.parse(msh("UNICODE UTF-8") + "PID|1\r")
    assert header.field(1) == "|"
    assert header.field(2) == "^~\\&"
    assert header.field(3) == "DEV"
    assert (header.message_code, header.trigger_event, header.message_structure) == (
        "ORU",
        "R01",
        "ORU_R01",
    )
    assert header.control_id == "C1"
    assert header.version == "2.5"
    assert (header.accept_ack_type, header.application_ack_type) == ("AL", "NE")
    assert header.declared_charset == "UNICODE UTF-8"
    assert header.field(40) == ""


def test_header_with_unusual_separators():
    header = MshHeader.parse("MSH#!@%$#A#B#C#D#2024##ADT!A01#9#P#2.4\n")
    assert header.separators == Separators("#", "!", "@", "%", "$")
    assert header.trigger_event == "A01"


def test_missing_msh_is_a_device_input_error():
    with pytest.raises(Hl7HeaderError) as caught:
        MshHeader.parse("PID|1|||\r")
    assert caught.value.party == "device"


@pytest.mark.parametrize(
    ("declared", "codec"),
    [
        ("UNICODE UTF-8", "utf-8"),
        ("UTF8", "utf-8"),
        ("unicode", "utf-8"),
        ("GB 18030-2000", "gb18030"),
        ("GBK", "gb18030"),
        ("8859/1", "latin-1"),
        ("8859/5", "iso8859-5"),
        ("ASCII", "ascii"),
        ("KLINGON", None),
        ("", None),
    ],
)
def test_charset_names(declared, codec):
    assert codec_for_charset(declared) == codec


def test_msh18_read_from_raw_bytes_first_repetition():
    assert sniff_declared_charset(msh("UNICODE UTF-8~GB 18030-2000").encode()) == "UNICODE UTF-8"
    assert sniff_declared_charset(b"MSH|^~\\&|A\r") == ""
    assert sniff_declared_charset(b"garbage") == ""


def test_gb18030_decoded_per_msh18():
    raw = (msh("GB 18030-2000") + "PID|1||SYN||\u6d4b\u8bd5\u60a3\u8005\r").encode("gb18030")
    decoded = decode_message(raw)
    assert decoded.codec == "gb18030"
    assert "\u6d4b\u8bd5\u60a3\u8005" in decoded.text
    assert decoded.warnings == ()


def test_gbk_trail_byte_equal_to_separator_does_not_fool_charset_detection():
    # U+5104 encodes as 83 7C in GBK: its trail byte is '|'.
    raw = msh("GB 18030-2000").replace("LAB", "\u5104").encode("gb18030")
    assert b"\x83|" in raw
    decoded = decode_message(raw)
    assert decoded.codec == "gb18030"
    assert MshHeader.parse(decoded.text).field(4) == "\u5104"


def test_default_charset_used_when_msh18_absent():
    raw = (msh() + "PID|1||SYN||\u6d4b\u8bd5\r").encode("gb18030")
    assert decode_message(raw, "GBK").codec == "gb18030"
    assert decode_message(raw, "gb18030").codec == "gb18030"


def test_declared_latin1_over_utf8_bytes_is_read_as_utf8_with_warning():
    raw = (msh("8859/1") + "NTE|1||12\u201335\r").encode("utf-8")
    decoded = decode_message(raw)
    assert decoded.codec == "utf-8"
    assert "\u2013" in decoded.text
    assert any("UTF-8" in warning for warning in decoded.warnings)


def test_undecodable_bytes_never_raise_and_keep_every_byte():
    raw = msh("ASCII").encode() + b"NTE|1||\xff\xfe\x81\r"
    decoded = decode_message(raw, "ascii")
    assert decoded.text.encode(decoded.codec) == raw
    assert decoded.warnings


def test_escape_round_trip_and_unknown_sequences_left_intact():
    s = Separators()
    text = "a|b^c&d~e\\f"
    escaped = s.escape_text(text)
    assert escaped == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f"
    assert s.unescape(escaped) == text
    assert s.unescape("x\\X4142\\y") == "xABy"
    assert s.unescape("\\H\\bold\\N\\ \\.br\\") == "\\H\\bold\\N\\ \\.br\\"
    assert s.unescape("open \\F") == "open \\F"
    assert s.unescape("bad \\XZZ\\") == "bad \\XZZ\\"
    assert s.unescape("\\XE6B58B\\", "utf-8") == "\u6d4b"
