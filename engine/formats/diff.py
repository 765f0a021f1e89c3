"""Field-by-field differences between two payloads, computed on their flattened pairs.

How pairs are aligned depends on what the two payloads are:

- **Same structured format** (JSON and JSON, XML and XML, HL7 and HL7): by path. A field
  present on both sides with different values is `changed`; one side only is `removed` or
  `added`. Entries come in document order. An element inserted into an array shifts the
  indexes after it, so those fields show as changed: paths are positions, not identities.
- **Both text** (or a malformed body shown as text): by line content, as `diff` does, so an
  inserted line does not make every later line differ. A changed line whose number moved
  shows both: `line 7 → line 8`.
- **Different formats** (JSON in, XML out): by value, in document order. Values carried
  over unchanged are not differences, whatever their paths; the rest pair up as
  `changed` (path `a-path → b-path`) or stand alone as `removed`/`added`. JSON strings are
  compared without quotes so `"测试甲"` in JSON matches `测试甲` in XML.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from engine.formats.base import PayloadFormat
from engine.formats.json_format import JsonFormat
from engine.formats.registry import Flattened, FormatRegistry
from engine.formats.text_format import TextFormat
from engine.message import Payload

DiffKind = Literal["added", "removed", "changed"]
Pair = tuple[str, str]

_MAX_SHOWN = 200


@dataclass(frozen=True)
class DiffEntry:
    path: str
    kind: DiffKind
    old: str | None
    new: str | None


def diff_payloads(
    a: Payload, b: Payload, registry: FormatRegistry, *, format: str | None = None
) -> list[DiffEntry]:
    """Differences from `a` to `b`; `format` forces one format (by name) for both sides."""
    left = registry.flatten(a, format=format)
    right = registry.flatten(b, format=format)
    return diff_flattened(left, right)


def diff_flattened(left: Flattened, right: Flattened) -> list[DiffEntry]:
    if left.format.name != right.format.name:
        return diff_by_value(left.pairs, right.pairs, _plain_values(left), _plain_values(right))
    if isinstance(left.format, TextFormat):
        return diff_by_value(left.pairs, right.pairs)
    return diff_by_path(left.pairs, right.pairs)


def alignment(left: Flattened, right: Flattened) -> str:
    """One line saying how `diff_flattened` aligned these two (for headers)."""
    if left.format.name != right.format.name:
        return f"formats differ ({left.format.name} vs {right.format.name}): aligned by value"
    if isinstance(left.format, TextFormat):
        return "text: aligned by line content"
    return f"{left.format.name}: aligned by path"


def diff_by_path(a: Sequence[Pair], b: Sequence[Pair]) -> list[DiffEntry]:
    a_keys, b_keys = _keyed(a), _keyed(b)
    a_values = dict(zip(a_keys, (value for _, value in a), strict=True))
    b_values = dict(zip(b_keys, (value for _, value in b), strict=True))
    entries: list[DiffEntry] = []
    matcher = difflib.SequenceMatcher(None, a_keys, b_keys, autojunk=False)
    for _, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        for key in a_keys[a_start:a_end]:
            path = key[0]
            if key not in b_values:
                entries.append(DiffEntry(path, "removed", a_values[key], None))
            elif a_values[key] != b_values[key]:
                entries.append(DiffEntry(path, "changed", a_values[key], b_values[key]))
        entries.extend(
            DiffEntry(key[0], "added", None, b_values[key])
            for key in b_keys[b_start:b_end]
            if key not in a_values
        )
    return entries


def diff_by_value(
    a: Sequence[Pair],
    b: Sequence[Pair],
    a_compared: Sequence[str] | None = None,
    b_compared: Sequence[str] | None = None,
) -> list[DiffEntry]:
    """Align by value; `*_compared` are the values to compare when they differ from shown ones."""
    left = list(a_compared) if a_compared is not None else [value for _, value in a]
    right = list(b_compared) if b_compared is not None else [value for _, value in b]
    entries: list[DiffEntry] = []
    matcher = difflib.SequenceMatcher(None, left, right, autojunk=False)
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        olds, news = a[a_start:a_end], b[b_start:b_end]
        for (old_path, old), (new_path, new) in zip(olds, news, strict=False):
            path = old_path if old_path == new_path else f"{old_path} → {new_path}"
            entries.append(DiffEntry(path, "changed", old, new))
        entries.extend(DiffEntry(path, "removed", old, None) for path, old in olds[len(news) :])
        entries.extend(DiffEntry(path, "added", None, new) for path, new in news[len(olds) :])
    return entries


def render_diff(entries: Sequence[DiffEntry]) -> str:
    """One line per difference: `~ path: old → new`, `- path: old`, `+ path: new`."""
    if not entries:
        return "no differences"
    lines = []
    for entry in entries:
        if entry.kind == "changed":
            lines.append(f"~ {entry.path}: {_shown(entry.old)} → {_shown(entry.new)}")
        elif entry.kind == "removed":
            lines.append(f"- {entry.path}: {_shown(entry.old)}")
        else:
            lines.append(f"+ {entry.path}: {_shown(entry.new)}")
    counts = Counter(entry.kind for entry in entries)
    lines.append(
        f"{counts['changed']} changed, {counts['removed']} removed, {counts['added']} added"
    )
    return "\n".join(lines)


def _keyed(pairs: Sequence[Pair]) -> list[tuple[str, int]]:
    """(path, occurrence): a format may repeat a path (e.g. repeated HL7 segments)."""
    seen: Counter[str] = Counter()
    keys = []
    for path, _ in pairs:
        keys.append((path, seen[path]))
        seen[path] += 1
    return keys


def _plain_values(flattened: Flattened) -> list[str]:
    return [_plain(flattened.format, value) for _, value in flattened.pairs]


def _plain(fmt: PayloadFormat, value: str) -> str:
    if isinstance(fmt, JsonFormat) and value.startswith('"'):
        decoded = json.loads(value)
        return decoded if isinstance(decoded, str) else value
    return value


def _shown(value: str | None) -> str:
    if value is None:
        return ""
    if value == "":
        return "(empty)"
    text = value.replace("\r", "\\r").replace("\n", "\\n")
    if len(text) > _MAX_SHOWN:
        return f"{text[:_MAX_SHOWN]}… ({len(value)} characters)"
    return text
