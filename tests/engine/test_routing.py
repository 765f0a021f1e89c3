import pytest

from engine.config.model import FilterSpec
from engine.formats.json_format import JsonFormat
from engine.formats.registry import FormatRegistry
from engine.formats.text_format import TextFormat
from engine.formats.xml_format import XmlFormat
from engine.message import Payload
from engine.routing import passes

REGISTRY = FormatRegistry({"json": JsonFormat(), "xml": XmlFormat(), "text": TextFormat()})
SETTLE = Payload.from_json(
    {"infno": "2207", "input": {"data": {"insutype": 310, "flags": [True, None], "list": [1]}}}
)
ORDER = Payload(
    b'<Envelope><Body><Order type="CT"><No>7</No></Order></Body></Envelope>', "text/xml"
)


def spec(path: str, **condition: object) -> FilterSpec:
    return FilterSpec.model_validate({"path": path, **condition})


def test_no_filter_always_passes() -> None:
    assert passes(None, Payload(b"not even json"), REGISTRY)


@pytest.mark.parametrize(
    ("filter_spec", "expected"),
    [
        (spec("$.infno", equals="2207"), True),
        (spec("$.infno", equals="2208"), False),
        (spec("$.infno", **{"in": ["2206", "2207"]}), True),
        (spec("$.infno", **{"in": ["2206"]}), False),
        (spec("$.infno", regex="^22"), True),
        (spec("$.infno", regex="^23"), False),
        (spec("$.input.data.insutype", equals="310"), True),
        (spec("$.input.data.flags[0]", equals="true"), True),
        (spec("$.input.data.flags[1]", equals="null"), True),
        (spec("input.data.insutype", equals="310"), True),
        (spec("$.missing", regex=".*"), False),
        (spec("$.input.data.list", regex=".*"), False),  # an array is not a value
        (spec("$.input..broken", regex=".*"), False),
    ],
)
def test_json_filters(filter_spec: FilterSpec, expected: bool) -> None:
    assert passes(filter_spec, SETTLE, REGISTRY) is expected


@pytest.mark.parametrize(
    ("filter_spec", "expected"),
    [
        (spec("/Envelope/Body/Order/@type", equals="CT"), True),
        (spec("/Envelope/Body/Order/@type", equals="MR"), False),
        (spec("/Envelope/Body/Order/No", **{"in": ["7", "8"]}), True),
        (spec("/Envelope/Body/Nothing", regex=""), False),
    ],
)
def test_xml_filters_use_element_paths(filter_spec: FilterSpec, expected: bool) -> None:
    assert passes(filter_spec, ORDER, REGISTRY) is expected


def test_text_filters_use_line_paths() -> None:
    payload = Payload(b"HEADER\nkind=urgent", "text/plain")
    assert passes(spec("line 2", regex="urgent"), payload, REGISTRY)
    assert not passes(spec("line 3", regex=""), payload, REGISTRY)


def test_charset_from_content_type_is_used() -> None:
    payload = Payload('{"dept": "检验科"}'.encode("gbk"), "application/json; charset=gbk")
    assert passes(spec("$.dept", equals="检验科"), payload, REGISTRY)


def test_unparseable_payload_never_passes() -> None:
    broken = Payload(b'{"infno": "2207"', "application/json")
    assert not passes(spec("$.infno", regex=".*"), broken, REGISTRY)
    assert not passes(spec("/a/@b", regex=".*"), Payload(b"<a b='1'>", "text/xml"), REGISTRY)


class NoFlattenJson(JsonFormat):
    def flatten_text(self, text: str) -> list[tuple[str, str]]:
        raise AssertionError("a JSON filter must walk its path, not flatten the document")


def test_json_filters_walk_the_path_without_flattening() -> None:
    registry = FormatRegistry({"json": NoFlattenJson(), "text": TextFormat()})
    assert passes(spec("$.input.data.insutype", equals="310"), SETTLE, registry)
