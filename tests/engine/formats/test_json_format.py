import pytest

from engine.formats.json_format import MISSING, JsonFormat, split_path
from engine.message import Payload


@pytest.fixture
def fmt() -> JsonFormat:
    return JsonFormat()


def test_flatten_gives_paths_and_json_encoded_leaves(fmt: JsonFormat) -> None:
    body = Payload.from_json(
        {
            "infno": "2207",
            "input": {
                "data": {
                    "psn_name": "测试甲",
                    "amt": 12,
                    "ok": True,
                    "items": [{"code": "A1"}, None],
                }
            },
        }
    ).body
    assert list(fmt.flatten(body)) == [
        ("$.infno", '"2207"'),
        ("$.input.data.psn_name", '"测试甲"'),
        ("$.input.data.amt", "12"),
        ("$.input.data.ok", "true"),
        ("$.input.data.items[0].code", '"A1"'),
        ("$.input.data.items[1]", "null"),
    ]


def test_number_literals_are_kept_as_written(fmt: JsonFormat) -> None:
    assert list(fmt.flatten(b'{"amt": 12.50, "big": 12345678901234567890.10, "e": 1E3}')) == [
        ("$.amt", "12.50"),
        ("$.big", "12345678901234567890.10"),
        ("$.e", "1E3"),
    ]


def test_odd_keys_use_brackets_and_empty_containers_are_leaves(fmt: JsonFormat) -> None:
    pairs = list(fmt.flatten(b'{"drug code": {}, "1st": [], "a.b": "x", "\\"q": 1}'))
    assert pairs == [
        ('$["drug code"]', "{}"),
        ('$["1st"]', "[]"),
        ('$["a.b"]', '"x"'),
        ('$["\\"q"]', "1"),
    ]


def test_scalar_document_has_root_path(fmt: JsonFormat) -> None:
    assert list(fmt.flatten(b'"only"')) == [("$", '"only"')]


@pytest.mark.parametrize(
    "path", ["$", "$.a", "$.a.b[0].c", '$["drug code"][12]', "$.姓名", '$["\\"q"]']
)
def test_split_path_round_trips_flatten_paths(fmt: JsonFormat, path: str) -> None:
    segments = split_path(path)
    document: object = "leaf"
    for segment in reversed(segments):
        document = (
            [None] * segment + [document] if isinstance(segment, int) else {segment: document}
        )
    assert (path, '"leaf"') in list(fmt.flatten(Payload.from_json(document).body))


def test_split_path_accepts_single_quotes_and_relative_paths() -> None:
    assert split_path("$['a b'].c") == ["a b", "c"]
    assert split_path("input.data[1]") == ["input", "data", 1]


def test_split_path_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="not a JSON path"):
        split_path("$.a..b")


def test_lookup_walks_without_flattening(fmt: JsonFormat) -> None:
    text = '{"input": {"data": [{"no": 7}]}}'
    assert fmt.lookup_text(text, "$.input.data[0].no") == "7"
    assert fmt.lookup_text(text, "$.input.data[1]") is MISSING
    assert fmt.lookup_text(text, "$.input.nothing.deeper") is MISSING


def test_invalid_json_raises_value_error(fmt: JsonFormat) -> None:
    with pytest.raises(ValueError):
        fmt.flatten(b'{"a": ')


def test_deep_nesting_is_a_value_error_not_a_crash(fmt: JsonFormat) -> None:
    with pytest.raises(ValueError):
        fmt.flatten(b"[" * 100_000 + b"]" * 100_000)


def test_render_is_pretty_unicode_and_keeps_literals(fmt: JsonFormat) -> None:
    rendered = fmt.render('{"name":"测试甲","amt":12.50,"list":[1,{}],"empty":[]}'.encode())
    assert rendered == (
        '{\n  "name": "测试甲",\n  "amt": 12.50,\n  "list": [\n    1,\n    {}\n  ],\n'
        '  "empty": []\n}'
    )


def test_sniff_recognises_json_only(fmt: JsonFormat) -> None:
    assert fmt.sniff(b'  {"a": 1}')
    assert fmt.sniff(b"[1, 2]")
    assert not fmt.sniff(b"{not json")
    assert not fmt.sniff(b"<a/>")
    assert not fmt.sniff(b"MSH|^~\\&|")
