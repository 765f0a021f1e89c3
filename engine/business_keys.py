"""Business keys: the indexed values (settlement id, barcode, every trace code of a sale)
that find a message without reading its payload.

Adapters return `KeysOut`: a name maps to one value or to a sequence of values. Inside the
engine keys travel as `Keys` (each name with its distinct values, in order); a view shows a
name with one value as that value, and a name with several as the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

KeysOut = Mapping[str, "str | Sequence[str]"]
Keys = dict[str, tuple[str, ...]]
KeysView = dict[str, "str | list[str]"]


def normalise(extracted: KeysOut) -> Keys:
    """Values as strings, empties dropped, duplicates removed, order kept."""
    keys: Keys = {}
    for name, value in extracted.items():
        values = [value] if isinstance(value, (str, int, float)) else list(value or ())
        kept = tuple(dict.fromkeys(str(v) for v in values if v not in (None, "")))
        if kept:
            keys[name] = kept
    return keys


def merge(into: Keys, more: Keys) -> Keys:
    """`into` with `more` added (values appended, not replaced); returns `into`."""
    for name, values in more.items():
        into[name] = tuple(dict.fromkeys(into.get(name, ()) + values))
    return into


def first_value(keys: Keys) -> str | None:
    """The correlation key: the first value of the first key."""
    return next((values[0] for values in keys.values()), None)


def rows(message_id: str, keys: KeysOut) -> list[dict[str, Any]]:
    return [{"message_id": message_id, "name": name, "value": value}
            for name, values in normalise(keys).items() for value in values]


def view(pairs: Iterable[tuple[str, str]]) -> KeysView:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}
