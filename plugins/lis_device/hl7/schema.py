"""What hl7apy knows about HL7 structures, used off the hot path only.

hl7apy costs 65-100 ms to parse one ORU (bench/hl7_parse.py), so messages are read with
our own reader; hl7apy is asked where its tables pay: naming fields for `hisbridge diff`
(`OBX-5` → "Observation Value") and validating a message against the standard on demand.

hl7apy splits segments on CR only (an LF-separated message becomes one MSH segment), so
`validate()` first re-joins the segments our tolerant reader found with CR.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from hl7apy import load_reference  # type: ignore[import-untyped]
from hl7apy.consts import VALIDATION_LEVEL  # type: ignore[import-untyped]
from hl7apy.exceptions import HL7apyException  # type: ignore[import-untyped]
from hl7apy.parser import parse_message  # type: ignore[import-untyped]
from hl7apy.validation import Validator  # type: ignore[import-untyped]

from plugins.lis_device.hl7.reader import FieldPath, Hl7Message

DEFAULT_VERSION = "2.5"


def _title(name: str | None) -> str:
    return (name or "").replace("_", " ").title()


def _child(reference: Any, position: int) -> Any:
    """The reference of child `position` (1-based) of a composite, or None."""
    if not reference or reference[0] != "sequence" or position > len(reference[1]):
        return None
    return reference[1][position - 1][1]


@lru_cache(maxsize=4096)
def field_name(path: str, version: str = DEFAULT_VERSION) -> str:
    """Readable name of a field path: `PID-5.1` → "Patient Name / Family Name"; '' when
    the segment, field or version is unknown to hl7apy (Z segments, vendor fields)."""
    try:
        where = FieldPath.parse(path)
    except ValueError:
        return ""
    if where.field is None:
        return ""
    try:
        reference = load_reference(f"{where.segment}_{where.field}", "Field", version)
    except (HL7apyException, KeyError, ValueError):
        return ""
    names = [_title(reference[3])]
    for position in (where.component, where.subcomponent):
        if position is None:
            break
        reference = _child(reference, position)
        if reference is None:
            break
        names.append(_title(reference[3]))
    return " / ".join(name for name in names if name)


def validate(message: bytes | str, default_charset: str = "utf-8") -> list[str]:
    """Every problem hl7apy finds against the message's own version; [] when valid.

    Raises Hl7HeaderError when there is no MSH at all (like the reader)."""
    parsed = Hl7Message.parse(message, default_charset)
    text = "\r".join(segment.text() for segment in parsed.segments) + "\r"
    try:
        hl7apy_message = parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT)
    except HL7apyException as exc:
        return [f"not parseable by hl7apy: {exc}"]
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.txt"
        try:
            Validator.validate(hl7apy_message, report_file=str(report))
        except HL7apyException:
            pass
        if not report.exists():
            return []
        lines = report.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip()]
