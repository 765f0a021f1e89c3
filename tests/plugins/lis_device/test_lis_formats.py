from importlib.metadata import entry_points

import pluggy
import pytest

from engine import hookspecs
from engine.formats.base import PayloadFormat
from plugins.lis_device import plugin
from plugins.lis_device.astm.frames import build_frame
from plugins.lis_device.formats import AstmFormat, Hl7Format
from tests.plugins.lis_device.samples import fixture_bytes

HL7 = Hl7Format()
ASTM = AstmFormat()


def test_plugin_registers_both_formats_through_the_hook():
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, name="lis_device")
    manager.check_pending()
    (formats,) = manager.hook.hisbridge_register_formats()
    assert sorted(fmt.name for fmt in formats) == ["astm", "hl7"]
    assert all(isinstance(fmt, PayloadFormat) for fmt in formats)


def test_bundled_entry_point_points_at_the_plugin_module():
    (entry,) = [
        entry for entry in entry_points(group="hisbridge.plugins") if entry.name == "lis_device"
    ]
    assert entry.load() is plugin


@pytest.mark.parametrize(
    ("body", "hl7", "astm"),
    [
        (b"\x0bMSH|^~\\&|A||||||ORU^R01|1|P|2.3\r\x1c\r", True, False),
        (b"\nMSH|^~\\&|DH|||||ORU^R01|1|P|2.3.1\n", True, False),
        (b"H|\\^&|||X\rL|1|N\r", False, True),
        (b"\x05" + build_frame(1, b"H|\\^&|||X\r", final=True) + b"\x04", False, True),
        (b'{"MSH": 1}', False, False),
        (b"MSHA|B", False, False),
        (b"Hello world", False, False),
    ],
)
def test_sniff(body, hl7, astm):
    assert HL7.sniff(body) is hl7
    assert ASTM.sniff(body) is astm


def test_hl7_flatten_uses_field_paths_and_msh18():
    pairs = dict(HL7.flatten(fixture_bytes("hl7", "oru_gb18030.hl7")))
    assert pairs["OBX-5"] == "12.6"
    assert pairs["PID-5"] == "\u6d4b\u8bd5\u60a3\u8005\u7532"
    assert pairs["MSH-9.2"] == "R01"


def test_hl7_diff_shows_comma_decimal_change():
    sent_by_device = dict(HL7.flatten(fixture_bytes("hl7", "oru_lf_comma_decimal_no_vt.hl7")))
    assert sent_by_device["OBX[1]-5"] == "11,49"


def test_hl7_render_one_segment_per_line():
    rendered = HL7.render(fixture_bytes("hl7", "oru_escapes_crlf.hl7"))
    assert rendered.splitlines()[0].startswith("MSH|^~\\&|ESCDEV")
    assert len(rendered.splitlines()) == 5


def test_invalid_bodies_raise_value_error_for_text_fallback():
    with pytest.raises(ValueError):
        HL7.flatten(b"not hl7")
    with pytest.raises(ValueError):
        ASTM.flatten(fixture_bytes("astm", "proprietary_not_astm.txt"))


def test_astm_flatten_records_and_transcript_problems():
    transcript = fixture_bytes("astm", "results_etb_split_transcript.astm")
    pairs = dict(ASTM.flatten(transcript))
    assert pairs["R[1].4"] == "5.6"
    assert pairs["H.5.1"] == "SYN-ANALYSER"
    assert not any(path.startswith("E1381") for path in pairs)
    damaged = transcript.replace(b"5.6|", b"5.7|", 1)
    damaged_pairs = dict(ASTM.flatten(damaged))
    assert damaged_pairs["R[1].4"] == "5.7"
    assert damaged_pairs["E1381.problem[1]"] == "frame 4: checksum mismatch"


def test_astm_render_names_control_characters():
    rendered = ASTM.render(fixture_bytes("astm", "results_etb_split_transcript.astm"))
    lines = rendered.splitlines()
    assert lines[0] == "<ENQ>"
    assert lines[1].startswith("<STX>1H|\\^&|")
    assert lines[1].endswith("20240310091500<CR><ETX>65<CR><LF>")
    assert "<ETB>" in rendered and lines[-1] == "L|1|N"


def test_astm_records_with_gb18030_text():
    body = "H|\\^&|||SYN\rR|1|^^^GLU|5.6|\u6beb\u6469\u5c14/\u5347\rL|1|N\r".encode("gb18030")
    assert dict(ASTM.flatten(body))["R.5"] == "\u6beb\u6469\u5c14/\u5347"
