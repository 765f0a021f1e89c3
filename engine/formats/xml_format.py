"""XML (and SOAP): element paths like `/Envelope/Body/Order[1]/Item[2]/@code`.

Namespace prefixes are dropped (`soap:Envelope` → `Envelope`) so paths read the same
whichever prefix a sender picked. An element gets an index (1-based, as in XPath) only when
it has siblings with the same local name. Leaves are attribute values and element text;
an element with neither text nor children is a leaf with the empty value.

Parsing goes through defusedxml: XML from outside cannot expand entities (billion laughs),
fetch external entities or DTDs. Such a document is "not this format" and is shown as text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import Any, ClassVar
from xml.dom.minidom import Node

import defusedxml.ElementTree as SafeET
import defusedxml.minidom as SafeMinidom
from defusedxml import DefusedXmlException

from engine.formats.text_format import TextualFormat, decode_declared, decode_guessing

_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_LOOKS_LIKE_XML = re.compile(r"^\s*<(\?xml|[A-Za-z_][\w.:-]*[\s/>])")


@lru_cache(maxsize=4096)
def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse(text: str) -> ET.Element:
    try:
        root: ET.Element = SafeET.fromstring(text)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    except RecursionError as exc:
        raise ValueError("XML nested too deeply") from exc
    return root


def _own_text(element: ET.Element) -> str:
    """Text directly inside an element, including text between its children."""
    if len(element) == 0:
        return (element.text or "").strip()
    parts = [element.text or ""] + [child.tail or "" for child in element]
    return "".join(parts).strip()


def _child_paths(element: ET.Element, path: str) -> list[tuple[str, ET.Element]]:
    children = [child for child in element if isinstance(child.tag, str)]
    if not children:
        return []
    names = [local_name(child.tag) for child in children]
    totals = Counter(names)
    seen: dict[str, int] = {}
    paths: list[tuple[str, ET.Element]] = []
    for child, name in zip(children, names, strict=True):
        if totals[name] == 1:
            paths.append((f"{path}/{name}", child))
        else:
            seen[name] = seen.get(name, 0) + 1
            paths.append((f"{path}/{name}[{seen[name]}]", child))
    return paths


def pairs_of(root: ET.Element) -> Iterator[tuple[str, str]]:
    """Every leaf in document order; iterative, so depth is no limit."""
    stack: list[tuple[str, ET.Element]] = [("/" + local_name(root.tag), root)]
    while stack:
        path, element = stack.pop()
        for attribute, value in element.attrib.items():
            yield f"{path}/@{local_name(attribute)}", value
        text = _own_text(element)
        children = _child_paths(element, path)
        if text or not children:
            yield path, text
        stack.extend(reversed(children))


def _drop_blank_text(node: Any) -> None:  # minidom's stubs type child nodes loosely
    for child in list(node.childNodes):
        if child.nodeType == Node.TEXT_NODE and not child.data.strip():
            node.removeChild(child)
        else:
            _drop_blank_text(child)


class XmlFormat(TextualFormat):
    name: ClassVar[str] = "xml"
    content_types: ClassVar[tuple[str, ...]] = (
        "application/xml",
        "text/xml",
        "application/soap+xml",
    )

    def decode(self, body: bytes) -> str:
        # expat cannot read multi-byte legacy encodings (GB18030), so decode here, honouring
        # the XML declaration, and parse the text (the parser then ignores the declaration).
        declared = _DECLARED_ENCODING.match(body)
        if declared:
            return decode_declared(body, declared.group(1).decode("ascii"))
        return decode_guessing(body)

    def sniff(self, body: bytes) -> bool:
        return _LOOKS_LIKE_XML.match(self.decode(body[:512]).lstrip("\ufeff")) is not None

    def flatten_text(self, text: str) -> Iterable[tuple[str, str]]:
        return list(pairs_of(_parse(text)))

    def render_text(self, text: str) -> str:
        _parse(text)  # the defused, well-formedness check; minidom below sees only safe input
        try:
            document = SafeMinidom.parseString(text)
            _drop_blank_text(document)
            pretty: str = document.toprettyxml(indent="  ")
        except RecursionError as exc:
            raise ValueError("XML nested too deeply to render") from exc
        return pretty.split("\n", 1)[1].rstrip("\n") if pretty.startswith("<?xml") else pretty
