from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import pluggy
import pytest

from engine import hookimpl, hookspecs
from engine.catalogue import Catalogue
from engine.formats import builtin
from engine.formats.base import PayloadFormat
from engine.formats.registry import FormatRegistry
from engine.message import Payload


class PipeFormat(PayloadFormat):
    """A bytes-only plugin format: `a|b|c` → field 1..n."""

    name: ClassVar[str] = "pipe"
    content_types: ClassVar[tuple[str, ...]] = ("x-application/pipe",)

    def sniff(self, body: bytes) -> bool:
        return body.startswith(b"PIPE|")

    def flatten(self, body: bytes) -> Iterable[tuple[str, str]]:
        text = body.decode("utf-8")
        return [(f"F-{i}", v) for i, v in enumerate(text.split("|"), start=1)]


class PipePlugin:
    @hookimpl
    def hisbridge_register_formats(self) -> list[PayloadFormat]:
        return [PipeFormat()]


def plugin_manager(*plugins: object) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.register(builtin, name="engine.formats")
    for number, plugin in enumerate(plugins):
        pm.register(plugin, name=f"plugin{number}")
    return pm


@pytest.fixture
def registry() -> FormatRegistry:
    return FormatRegistry(Catalogue.build(plugin_manager(PipePlugin())).formats)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json; charset=utf-8", b"{}", "json"),
        ("application/fhir+json", b"{}", "json"),
        ("text/xml", b"<a/>", "xml"),
        ("application/soap+xml", b"<a/>", "xml"),
        ("application/vnd.vendor+xml", b"<a/>", "xml"),
        ("x-application/pipe", b"a|b", "pipe"),
        ("text/plain", b'{"a": 1}', "text"),
        ("application/octet-stream", b'{"a": 1}', "json"),
        ("", b"<Envelope/>", "xml"),
        ("", b"PIPE|x", "pipe"),
        ("", b"just words", "text"),
    ],
)
def test_for_payload_uses_content_type_then_sniffing_then_text(
    registry: FormatRegistry, content_type: str, body: bytes, expected: str
) -> None:
    assert registry.for_payload(Payload(body, content_type)).name == expected


def test_content_type_charset_is_honoured(registry: FormatRegistry) -> None:
    body = '{"name": "测试丙"}'.encode("gbk")
    flattened = registry.flatten(Payload(body, "application/json; charset=GBK"))
    assert flattened.pairs == [("$.name", '"测试丙"')]
    xml = '<?xml version="1.0" encoding="UTF-8"?><n>测试丙</n>'.encode("gbk")
    # the content type wins over the document's own declaration (RFC 7303)
    assert registry.flatten(Payload(xml, "text/xml; charset=gbk")).pairs == [("/n", "测试丙")]



def test_bytes_formats_get_the_bytes_unchanged(registry: FormatRegistry) -> None:
    # A format that takes bytes decodes them by its own rules (HL7: MSH-18); re-encoding
    # them to UTF-8 would contradict a charset the document itself declares.
    pipe = "PIPE|测试丙".encode()
    flattened = registry.flatten(Payload(pipe, "x-application/pipe; charset=gb18030"))
    assert flattened.pairs == [("F-1", "PIPE"), ("F-2", "测试丙")]


def test_malformed_body_falls_back_to_text(registry: FormatRegistry) -> None:
    flattened = registry.flatten(Payload(b'{"a":\n 1', "application/json"))
    assert flattened.fell_back and flattened.format.name == "text"
    assert flattened.pairs == [("line 1", '{"a":'), ("line 2", " 1")]
    fmt, rendered = registry.render(Payload(b"<a><b></a>", "text/xml"))
    assert (fmt.name, rendered) == ("text", "<a><b></a>")


def test_format_can_be_forced_by_name(registry: FormatRegistry) -> None:
    flattened = registry.flatten(Payload(b'{"a": 1}', "text/plain"), format="json")
    assert flattened.pairs == [("$.a", "1")]


def test_unknown_name_lists_known_ones(registry: FormatRegistry) -> None:
    with pytest.raises(KeyError, match="json, pipe, text, xml"):
        registry.get("hl8")


def test_text_is_always_available() -> None:
    registry = FormatRegistry({})
    assert registry.for_payload(Payload(b"{}", "application/json")).name == "text"


SAMPLES = Path(__file__).parents[3] / ".." / "shared" / "samples"


@pytest.mark.samples
def test_shared_samples_are_shown_line_by_line_without_a_plugin(registry: FormatRegistry) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"{SAMPLES} not present")
    sample = SAMPLES / "hl7" / "DERIVED_wondfo_oru_r01_reencoded_gb18030.hl7"
    if not sample.is_file():
        pytest.skip(f"{sample} not present")
    flattened = registry.flatten(Payload(sample.read_bytes(), ""))
    assert flattened.format.name == "text"
    assert flattened.pairs[0][1].startswith("MSH|")
    assert "\ufffd" not in "".join(value for _, value in flattened.pairs)
