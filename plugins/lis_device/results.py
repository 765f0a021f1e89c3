"""One result model for HL7 and ASTM analysers.

A value is kept exactly as the device sent it (`value`, e.g. `7,41`, `> 15000.00`,
`3+`), and additionally as a number when it is one (`numeric`; a decimal comma is read as
a decimal point). Censored values (`>8`) and text results keep `numeric = None`: the LIS
decides what to do with them, the interface never guesses.

Extraction never drops a result silently: whatever cannot be read becomes a warning on the
batch, naming the record (`OBX[3]`, `R[2]`), and the result is still listed when there is
any value to list.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][+-]?\d+)?$")


def parse_number(text: str) -> float | None:
    """The number written in `text` (surrounding spaces ignored, `,` as decimal point), or
    None when it is not a plain number (`>8`, `Positive`, `1,234.5`, '')."""
    candidate = text.strip()
    if not candidate or not _NUMBER.match(candidate):
        return None
    number = float(candidate.replace(",", "."))
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class DeviceResult:
    """One measured value as the analyser reported it.

    `source` names where it came from in the device's message (`OBX[3]`, `R[2]`), so a diff
    or a complaint can point at the exact bytes. Times are the device's text (HL7 TS or
    ASTM YYYYMMDDHHMMSS); device clocks are often wrong (1970), so no conversion here.
    `qc` marks a quality-control measurement (a control material, not a patient specimen).
    """

    protocol: str
    source: str
    test_code: str
    value: str
    numeric: float | None = None
    test_name: str = ""
    units: str = ""
    reference_range: str = ""
    abnormal_flags: tuple[str, ...] = ()
    result_status: str = ""
    observed_at: str = ""
    specimen_barcode: str = ""
    instrument: str = ""
    qc: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ResultBatch:
    """Every result of one device message, plus what could not be read."""

    protocol: str
    message_type: str = ""
    control_id: str = ""
    instrument: str = ""
    specimen_barcodes: list[str] = field(default_factory=list)
    results: list[DeviceResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
