"""Destination filters: does a message go to a destination at all?

A filter names a path in the payload's own path syntax (`$.infno` for JSON, `MSH-9.1` for
HL7, `/Envelope/Body/Order/@type` for XML) and a condition on the value found there:
`equals`, `in` (any of a list) or `regex` (searched, as `re.search` does; anchor it with
`^...$` to match the whole value). JSON strings are compared without their quotes; numbers,
`true`, `false` and `null` as written. A missing path, a path that ends on an object or array,
or a payload that is not valid in its format never passes.
"""

from __future__ import annotations

import re
from typing import Any

import structlog

from engine.config.model import FilterSpec
from engine.formats.base import PayloadFormat
from engine.formats.json_format import MISSING, JsonFormat, NumberLiteral, encode_leaf
from engine.formats.registry import FormatRegistry, decoded_text, flatten_with
from engine.message import Payload

log = structlog.get_logger(__name__)


def passes(filter: FilterSpec | None, payload: Payload, registry: FormatRegistry) -> bool:
    """True when there is no filter or the payload's value at `filter.path` matches it."""
    if filter is None:
        return True
    fmt = registry.for_payload(payload)
    try:
        if isinstance(fmt, JsonFormat):
            value = _json_value(fmt, payload, filter.path)
        else:
            value = _pair_value(fmt, payload, filter.path)
    except ValueError as exc:
        log.info("filter_payload_unreadable", path=filter.path, format=fmt.name, error=str(exc))
        return False
    return value is not None and _holds(filter, value)


def _json_value(fmt: JsonFormat, payload: Payload, path: str) -> str | None:
    # Walks the path in the parsed document: no flattening of the whole message.
    found: Any = fmt.lookup_text(decoded_text(fmt, payload), path)
    if found is MISSING or isinstance(found, (dict, list)):
        return None
    if isinstance(found, str) and not isinstance(found, NumberLiteral):
        return found
    return encode_leaf(found)


def _pair_value(fmt: PayloadFormat, payload: Payload, path: str) -> str | None:
    for pair_path, value in flatten_with(fmt, payload):
        if pair_path == path:
            return value
    return None


def _holds(filter: FilterSpec, value: str) -> bool:
    if filter.equals is not None:
        return value == filter.equals
    if filter.any_of is not None:
        return value in filter.any_of
    return filter.regex is not None and re.search(filter.regex, value) is not None
