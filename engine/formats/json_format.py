"""JSON: paths like `$.input.data[0].psn_no`, leaves as JSON-encoded scalars.

Numbers keep their literal text (`12.50` stays `12.50`, not `12.5`): a diff must show what
was on the wire, and amounts in insurance messages are compared digit by digit.
Keys that are not identifiers are written in brackets: `$["drug code"]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from engine.formats.text_format import TextualFormat

_IDENTIFIER = re.compile(r"^[^\W\d]\w*$")
_PATH_TOKEN = re.compile(
    r"""\.(?P<name>[^\W\d]\w*)          # .name
      | \[(?P<index>\d+)\]              # [3]
      | \[(?P<quoted>"(?:[^"\\]|\\.)*") \]   # ["any key"]
      | \['(?P<single>[^']*)'\]         # ['any key']
    """,
    re.VERBOSE,
)


# json's own (C) string encoder, as json.dumps(..., ensure_ascii=False) uses; json.dumps per
# leaf costs several microseconds of setup that dominate flattening.
_encode_string: Callable[[str], str] = json.encoder.encode_basestring


class NumberLiteral(str):
    """A JSON number (or NaN/Infinity) kept as the text it was written with."""


class _Missing:
    pass


MISSING: Any = _Missing()


def parse_literal(text: str) -> Any:
    """json.loads keeping number literals as `NumberLiteral`; ValueError when not JSON."""
    try:
        return json.loads(
            text, parse_float=NumberLiteral, parse_int=NumberLiteral, parse_constant=NumberLiteral
        )
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def encode_leaf(value: Any) -> str:
    """A scalar (or empty container) as flatten() writes it."""
    if isinstance(value, NumberLiteral):
        return str(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    if isinstance(value, str):
        return _encode_string(value)
    return json.dumps(value)


def join_key(path: str, key: str) -> str:
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def split_path(path: str) -> list[str | int]:
    """`$.a["b c"][2]` → ["a", "b c", 2]. A path without `$` is read as relative to the root.

    Raises ValueError for text that is not a path."""
    rest = path.strip()
    if rest.startswith("$"):
        rest = rest[1:]
    elif rest and not rest.startswith(("[", ".")):
        rest = "." + rest
    segments: list[str | int] = []
    position = 0
    while position < len(rest):
        token = _PATH_TOKEN.match(rest, position)
        if token is None:
            raise ValueError(f"not a JSON path: {path!r} (at character {position + 1})")
        if token["name"] is not None:
            segments.append(token["name"])
        elif token["index"] is not None:
            segments.append(int(token["index"]))
        elif token["quoted"] is not None:
            segments.append(json.loads(token["quoted"]))
        else:
            segments.append(token["single"])
        position = token.end()
    return segments


def find(document: Any, segments: list[str | int]) -> Any:
    """The value at `segments` inside a parsed document, or MISSING."""
    current = document
    for segment in segments:
        in_list = isinstance(segment, int) and isinstance(current, list) and segment < len(current)
        in_object = isinstance(segment, str) and isinstance(current, dict) and segment in current
        if not (in_list or in_object):
            return MISSING
        current = current[segment]
    return current


def pairs_of(document: Any) -> Iterator[tuple[str, str]]:
    """Every leaf of a parsed document in document order; iterative, so depth is no limit."""
    stack: list[tuple[str, Any]] = [("$", document)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict) and value:
            stack.extend((join_key(path, k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list) and value:
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
        else:
            yield path, encode_leaf(value)


def _pretty(value: Any, indent: str, out: list[str]) -> None:
    inner = indent + "  "
    if isinstance(value, dict) and value:
        out.append("{\n")
        for number, (key, item) in enumerate(value.items()):
            out.append(f"{inner}{json.dumps(key, ensure_ascii=False)}: ")
            _pretty(item, inner, out)
            out.append(",\n" if number < len(value) - 1 else "\n")
        out.append(indent + "}")
    elif isinstance(value, list) and value:
        out.append("[\n")
        for number, item in enumerate(value):
            out.append(inner)
            _pretty(item, inner, out)
            out.append(",\n" if number < len(value) - 1 else "\n")
        out.append(indent + "]")
    else:
        out.append(encode_leaf(value))


class JsonFormat(TextualFormat):
    name: ClassVar[str] = "json"
    content_types: ClassVar[tuple[str, ...]] = ("application/json", "text/json")

    def sniff(self, body: bytes) -> bool:
        start = body.lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
        if start not in (b"{", b"["):
            return False
        try:
            parse_literal(self.decode(body))
        except ValueError:
            return False
        return True

    def flatten_text(self, text: str) -> Iterable[tuple[str, str]]:
        return list(pairs_of(parse_literal(text)))

    def render_text(self, text: str) -> str:
        out: list[str] = []
        try:
            _pretty(parse_literal(text), "", out)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply to render") from exc
        return "".join(out)

    def lookup_text(self, text: str, path: str) -> Any:
        """The parsed value at `path` (numbers as NumberLiteral), or MISSING; no flattening."""
        return find(parse_literal(text), split_path(path))
