import pytest

from engine.mllp.framing import MllpDecoder, MllpFrameTooLarge, encode

ORU = b"MSH|^~\\&|DEV|LAB|LIS|HOSP|20240101120000||ORU^R01|42|P|2.3.1\rPID|1||SYN001\rOBX|1|NM|GLU||5.2|mmol/L\r"
ACK = b"MSH|^~\\&|LIS|HOSP|DEV|LAB|20240101120001||ACK^R01|43|P|2.3.1\rMSA|AA|42\r"


def test_encode_wraps_in_vt_fs_cr():
    assert encode(b"MSH|x") == b"\x0bMSH|x\x1c\r"


def test_one_message_in_one_read():
    decoder = MllpDecoder()
    assert decoder.feed(encode(ORU)) == [ORU]
    assert not decoder.has_partial_message


def test_several_messages_in_one_read():
    decoder = MllpDecoder()
    assert decoder.feed(encode(ORU) + encode(ACK) + encode(ORU)) == [ORU, ACK, ORU]


def test_one_message_over_many_reads_byte_by_byte():
    decoder = MllpDecoder()
    wire = encode(ORU) + encode(ACK)
    received = []
    for position in range(len(wire)):
        received += decoder.feed(wire[position : position + 1])
    assert received == [ORU, ACK]
    assert decoder.pop_discarded() == []


def test_split_between_fs_and_cr_does_not_leak_cr_into_next_message():
    decoder = MllpDecoder()
    wire = encode(ORU)
    assert decoder.feed(wire[:-1]) == [ORU]
    assert decoder.feed(b"\r" + encode(ACK)) == [ACK]
    assert decoder.pop_discarded() == []


def test_junk_before_start_byte_is_reported_and_dropped():
    decoder = MllpDecoder()
    assert decoder.feed(b"garbage\x00\xff" + encode(ORU)) == [ORU]
    assert decoder.pop_discarded() == [b"garbage\x00\xff"]
    assert decoder.pop_discarded() == []


def test_junk_without_any_start_byte_is_dropped_at_next_block():
    decoder = MllpDecoder(accept_missing_start_block=False)
    assert decoder.feed(b"noise noise") == []
    assert decoder.pop_discarded() == [b"noise noise"]
    assert decoder.feed(encode(ACK)) == [ACK]


def test_fs_without_cr_and_without_vt_is_accepted_when_text_starts_with_msh():
    # Dymind DH3x style: leading LF, no VT, LF segment ends, FS with no CR.
    decoder = MllpDecoder()
    body = b"MSH|^~\\&|DH3x|||||||ORU^R01|7|P|2.3.1\n\nOBX|1|NM|WBC||11,49\n\n"
    assert decoder.feed(b"\n" + body + b"\x1c") == [body]
    assert decoder.feed(b"\n" + body + b"\x1c") == [body]


def test_missing_vt_is_junk_when_strict():
    decoder = MllpDecoder(accept_missing_start_block=False)
    assert decoder.feed(b"MSH|^~\\&|X\x1c\r" + encode(ACK)) == [ACK]
    assert decoder.pop_discarded() == [b"MSH|^~\\&|X\x1c\r"]


def test_text_without_msh_before_fs_is_junk():
    decoder = MllpDecoder()
    assert decoder.feed(b"HELLO\x1c\r" + encode(ACK)) == [ACK]
    assert decoder.pop_discarded() == [b"HELLO\x1c\r"]


def test_oversized_block_raises_then_resyncs_on_next_block():
    decoder = MllpDecoder(max_message_bytes=len(ORU))
    big = b"MSH|^~\\&|BIG|" + b"X" * 200
    with pytest.raises(MllpFrameTooLarge) as caught:
        decoder.feed(encode(big) + encode(ACK))
    assert caught.value.head.startswith(b"MSH|^~\\&|BIG|")
    assert caught.value.party == "device"
    assert decoder.feed(b"") == [ACK]


def test_oversized_block_arriving_in_pieces_is_skipped_to_its_end():
    decoder = MllpDecoder(max_message_bytes=100)
    decoder.feed(b"\x0bMSH|" + b"Y" * 60)
    with pytest.raises(MllpFrameTooLarge):
        decoder.feed(b"Y" * 60)
    assert decoder.feed(b"Y" * 500) == []
    assert decoder.feed(b"YY\x1c\r" + encode(ACK)) == [ACK]


def test_messages_before_an_oversized_block_are_returned_first():
    decoder = MllpDecoder(max_message_bytes=len(ORU))
    wire = encode(ACK) + encode(ORU + b"Z" * 10) + encode(ORU)
    assert decoder.feed(wire) == [ACK]
    with pytest.raises(MllpFrameTooLarge):
        decoder.feed(b"")
    assert decoder.feed(b"") == [ORU]


def test_new_start_byte_inside_oversized_block_resyncs_there():
    decoder = MllpDecoder(max_message_bytes=50)
    with pytest.raises(MllpFrameTooLarge):
        decoder.feed(b"\x0b" + b"Q" * 80)
    assert decoder.feed(b"QQQ" + encode(ACK[:40])) == [ACK[:40]]


def test_partial_message_is_visible_and_reset_returns_it():
    decoder = MllpDecoder()
    decoder.feed(b"\x0bMSH|^~\\&|half")
    assert decoder.has_partial_message
    assert decoder.reset() == b"MSH|^~\\&|half"
    assert not decoder.has_partial_message
    assert decoder.feed(encode(ACK)) == [ACK]


def test_configurable_block_characters():
    decoder = MllpDecoder(start_block=0x02, end_block=0x03, trailer=0x0A)
    wire = encode(ACK, start_block=0x02, end_block=0x03, trailer=0x0A)
    assert decoder.feed(wire * 2) == [ACK, ACK]


def test_limit_must_be_positive():
    with pytest.raises(ValueError):
        MllpDecoder(0)
