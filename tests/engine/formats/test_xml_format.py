import pytest

from engine.formats.xml_format import XmlFormat

SOAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:his">
  <soap:Body>
    <h:Order no="A-1">
      <h:Item code="X1">first</h:Item>
      <h:Item code="X2"/>
      <h:Note>see <b>this</b> and more</h:Note>
    </h:Order>
    <h:Order no="A-2"><![CDATA[<raw & text>]]></h:Order>
  </soap:Body>
</soap:Envelope>"""


@pytest.fixture
def fmt() -> XmlFormat:
    return XmlFormat()


def test_flatten_uses_local_names_and_indexes_only_repeated_siblings(fmt: XmlFormat) -> None:
    assert list(fmt.flatten(SOAP)) == [
        ("/Envelope/Body/Order[1]/@no", "A-1"),
        ("/Envelope/Body/Order[1]/Item[1]/@code", "X1"),
        ("/Envelope/Body/Order[1]/Item[1]", "first"),
        ("/Envelope/Body/Order[1]/Item[2]/@code", "X2"),
        ("/Envelope/Body/Order[1]/Item[2]", ""),
        ("/Envelope/Body/Order[1]/Note", "see  and more"),
        ("/Envelope/Body/Order[1]/Note/b", "this"),
        ("/Envelope/Body/Order[2]/@no", "A-2"),
        ("/Envelope/Body/Order[2]", "<raw & text>"),
    ]


def test_declared_gb18030_is_decoded(fmt: XmlFormat) -> None:
    body = '<?xml version="1.0" encoding="GB18030"?><p><name>测试乙</name></p>'.encode("gb18030")
    assert list(fmt.flatten(body)) == [("/p/name", "测试乙")]


def test_undeclared_gb18030_is_guessed(fmt: XmlFormat) -> None:
    assert list(fmt.flatten("<p>测试乙</p>".encode("gb18030"))) == [("/p", "测试乙")]


def test_entity_expansion_is_refused(fmt: XmlFormat) -> None:
    bomb = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""
    with pytest.raises(ValueError, match="not well-formed XML"):
        fmt.flatten(bomb)
    with pytest.raises(ValueError):
        fmt.render(bomb)


def test_external_entity_is_refused(fmt: XmlFormat) -> None:
    xxe = (
        b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""
    )
    with pytest.raises(ValueError):
        fmt.flatten(xxe)


def test_malformed_xml_raises_value_error(fmt: XmlFormat) -> None:
    with pytest.raises(ValueError):
        fmt.flatten(b"<a><b></a>")


def test_deep_nesting_is_flattened_iteratively(fmt: XmlFormat) -> None:
    depth = 3000
    pairs = list(fmt.flatten(b"<a>" * depth + b"x" + b"</a>" * depth))
    assert pairs == [("/a" * depth, "x")]


def test_render_indents_and_keeps_prefixes(fmt: XmlFormat) -> None:
    rendered = fmt.render(b"<h:a xmlns:h='urn:x'>  <h:b k='1'>t</h:b>\n<c/></h:a>")
    assert rendered == '<h:a xmlns:h="urn:x">\n  <h:b k="1">t</h:b>\n  <c/>\n</h:a>'


def test_sniff(fmt: XmlFormat) -> None:
    assert fmt.sniff(b"<?xml version='1.0'?><a/>")
    assert fmt.sniff(b"\n  <Envelope xmlns='x'>")
    assert not fmt.sniff(b'{"a": 1}')
    assert not fmt.sniff(b"< not a tag")
