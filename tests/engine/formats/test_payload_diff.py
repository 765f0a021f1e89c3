import pytest

from engine.formats.diff import DiffEntry, alignment, diff_by_path, diff_payloads, render_diff
from engine.formats.json_format import JsonFormat
from engine.formats.registry import FormatRegistry
from engine.formats.text_format import TextFormat
from engine.formats.xml_format import XmlFormat
from engine.message import Payload

REGISTRY = FormatRegistry({"json": JsonFormat(), "xml": XmlFormat(), "text": TextFormat()})


def test_json_payloads_differ_by_path_in_document_order() -> None:
    raw = Payload.from_json({"psn_no": "P1", "amt": "12.50", "dept": "内科", "gone": 1})
    transformed = Payload.from_json(
        {"psn_no": "P1", "amt": 12.5, "dept": "外科", "insutype": "310"}
    )
    assert diff_payloads(raw, transformed, REGISTRY) == [
        DiffEntry("$.amt", "changed", '"12.50"', "12.5"),
        DiffEntry("$.dept", "changed", '"内科"', '"外科"'),
        DiffEntry("$.gone", "removed", "1", None),
        DiffEntry("$.insutype", "added", None, '"310"'),
    ]


def test_reordered_keys_are_not_differences() -> None:
    a = Payload(b'{"a": 1, "b": 2, "c": 3}')
    b = Payload(b'{"c": 3, "a": 1, "b": 2}')
    assert diff_payloads(a, b, REGISTRY) == []


def test_repeated_paths_are_matched_by_occurrence() -> None:
    a = [("OBX-5", "1.0"), ("OBX-5", "2.0")]
    b = [("OBX-5", "1.0"), ("OBX-5", "2.5"), ("OBX-5", "3.0")]
    assert diff_by_path(a, b) == [
        DiffEntry("OBX-5", "changed", "2.0", "2.5"),
        DiffEntry("OBX-5", "added", None, "3.0"),
    ]


def test_xml_payloads_differ_by_element_path() -> None:
    a = Payload(b'<r><item code="A">1</item></r>', "text/xml")
    b = Payload(b'<r><item code="B">1</item><note/></r>', "text/xml")
    assert diff_payloads(a, b, REGISTRY) == [
        DiffEntry("/r/item/@code", "changed", "A", "B"),
        DiffEntry("/r/note", "added", None, ""),
    ]


def test_text_is_aligned_by_line_content() -> None:
    a = Payload(b"one\ntwo\nthree\nfour", "text/plain")
    b = Payload(b"zero\none\ntwo\nTHREE\nfour", "text/plain")
    assert diff_payloads(a, b, REGISTRY) == [
        DiffEntry("line 1", "added", None, "zero"),
        DiffEntry("line 3 → line 4", "changed", "three", "THREE"),
    ]


def test_different_formats_are_aligned_by_value() -> None:
    raw = Payload.from_json({"name": "测试甲", "no": "P1", "note": "x"})
    sent = Payload("<Req><Name>测试甲</Name><No>P2</No><Extra>1</Extra></Req>".encode(), "text/xml")
    left, right = REGISTRY.flatten(raw), REGISTRY.flatten(sent)
    assert "aligned by value" in alignment(left, right)
    assert diff_payloads(raw, sent, REGISTRY) == [
        DiffEntry("$.no → /Req/No", "changed", '"P1"', "P2"),
        DiffEntry("$.note → /Req/Extra", "changed", '"x"', "1"),
    ]


def test_a_malformed_side_is_compared_as_text_by_value() -> None:
    good = Payload(b'{"a": 1}')
    broken = Payload(b'{"a": 1', "application/json")
    assert diff_payloads(good, broken, REGISTRY) == [
        DiffEntry("$.a → line 1", "changed", "1", '{"a": 1'),
    ]


def test_format_can_be_forced() -> None:
    a = Payload(b'{"a": 1}', "text/plain")
    b = Payload(b'{"a": 2}', "text/plain")
    assert diff_payloads(a, b, REGISTRY, format="json") == [DiffEntry("$.a", "changed", "1", "2")]
    with pytest.raises(KeyError):
        diff_payloads(a, b, REGISTRY, format="nope")


def test_render_is_one_line_per_entry_with_totals() -> None:
    rendered = render_diff(
        [
            DiffEntry("$.a", "changed", '"x"', '"y"'),
            DiffEntry("$.b", "removed", "", None),
            DiffEntry("line 2", "added", None, "multi\nline " + "z" * 300),
        ]
    )
    lines = rendered.splitlines()
    assert lines[0] == '~ $.a: "x" → "y"'
    assert lines[1] == "- $.b: (empty)"
    assert lines[2].startswith("+ line 2: multi\\nline zzz") and lines[2].endswith(
        "… (311 characters)"
    )
    assert lines[3] == "1 changed, 1 removed, 1 added"
    assert render_diff([]) == "no differences"
