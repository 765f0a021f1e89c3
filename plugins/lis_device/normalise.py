"""From what an analyser sent (HL7 or an ASTM transcript) to the result document the LIS gets.

`read_results()` reads either protocol into one `ResultBatch` (see `results`), marking
quality-control results: ASTM by the standard (H-12 processing id `Q`, Mindray `QR`; O-12
action code `Q` for one specimen), and any protocol by the instrument's own convention
given as `qc_when` paths (Mindray HL7: `MSH-16` = `2`).

`ResultMapper.document()` turns a batch into the JSON document delivered to the LIS (the
HTTP body, or the rows of the intermediate table), every test code looked up in the
instrument's code table (`lis_codes`). It refuses rather than drop:

- a test code missing from the table → `UnmappedTestCode`, attributed to the engine's
  configuration (rule `lis_device.unmapped_test_code`), naming the code and the table;
- a message with no result that could be read → `NoResultsRead` (rule
  `lis_device.no_results_read`): the device's layout needs configuring.

The LIS gets the value with a decimal comma turned into a point (`5,12` → `5.12`; nothing
else changes) and the number (`numeric`). The device's own text stays in the raw stage,
so `hisbridge diff` shows "device sent 5,12, LIS received 5.12" field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.errors import PermanentError
from engine.message import Payload
from plugins.lis_device.astm.frames import scan_transcript
from plugins.lis_device.astm.records import AstmMessage
from plugins.lis_device.astm.results import extract_results
from plugins.lis_device.hl7.observations import extract_observations
from plugins.lis_device.hl7.reader import Hl7Message
from plugins.lis_device.lis_codes import CodeTable, LisItem
from plugins.lis_device.results import DeviceResult, ResultBatch

RESULTS_KIND = "lis_results"
ASTM_QC_PROCESSING_IDS = frozenset({"Q", "QR"})
_FALLBACK_CODECS = ("utf-8", "gb18030", "latin-1")


@dataclass(frozen=True, slots=True)
class QcWhen:
    """A message is QC when the value at `path` (HL7 `MSH-16`, ASTM `H.12`) equals `equals`."""

    path: str
    equals: str


class UnmappedTestCode(PermanentError):
    def __init__(self, codes: list[str], table: str) -> None:
        super().__init__(
            f"test code(s) {', '.join(codes)} not in the code table {table}",
            detail={"lis_problem": "unmapped_test_code", "codes": ",".join(codes), "table": table},
        )


class NoResultsRead(PermanentError):
    def __init__(self, warnings: list[str]) -> None:
        super().__init__(
            "no result could be read from the message" + (f": {'; '.join(warnings)}" if warnings else ""),
            detail={"lis_problem": "no_results_read"},
        )


def _astm_text(body: bytes) -> bytes:
    if b"\x02" in body:
        scanned = scan_transcript(body)
        if scanned.frames:
            return scanned.text
    return body


def _decoded_astm(text: bytes, charset: str | None) -> AstmMessage:
    for codec in (charset,) if charset else _FALLBACK_CODECS:
        try:
            text.decode(codec)
        except UnicodeDecodeError:
            continue
        return AstmMessage.parse(text, codec)
    return AstmMessage.parse(text, "latin-1")


def _matches(rules: tuple[QcWhen, ...], get: Any) -> bool:
    return any(get(rule.path).strip() == rule.equals for rule in rules)


def read_results(payload: Payload, *, charset: str | None = None, qc_when: tuple[QcWhen, ...] = ()) -> ResultBatch:
    """Every result in an HL7 message or an ASTM transcript/records, QC marked."""
    body = payload.body
    if body.lstrip(b"\x0b\x1c\r\n\t \xef\xbb\xbf").startswith(b"MSH"):
        hl7 = Hl7Message.parse(body, charset or "utf-8")
        batch = extract_observations(hl7)
        qc = _matches(qc_when, hl7.get)
    else:
        astm = _decoded_astm(_astm_text(body), charset)
        batch = extract_results(astm)
        qc = batch.message_type.upper() in ASTM_QC_PROCESSING_IDS or _matches(qc_when, astm.get)
    if qc:
        batch.results = [replace(result, qc=True) for result in batch.results]
    return batch


def lis_value(result: DeviceResult) -> str:
    """The value for the LIS: a plain number with a decimal comma gets a point."""
    if result.numeric is not None and "," in result.value:
        return result.value.replace(",", ".")
    return result.value


class ResultMapper:
    """Maps one instrument's batches to LIS documents with its code table."""

    def __init__(self, codes: CodeTable, *, charset: str | None = None, qc_when: tuple[QcWhen, ...] = ()) -> None:
        self.codes = codes
        self.charset = charset
        self.qc_when = qc_when

    def document(self, payload: Payload) -> dict[str, Any]:
        batch = read_results(payload, charset=self.charset, qc_when=self.qc_when)
        if not batch.results:
            raise NoResultsRead(batch.warnings)
        unmapped = sorted({result.test_code or "(empty)" for result in batch.results if self._item(result) is None})
        if unmapped:
            raise UnmappedTestCode(unmapped, self.codes.source)
        return {
            "kind": RESULTS_KIND,
            "protocol": batch.protocol,
            "instrument": batch.instrument,
            "message_type": batch.message_type,
            "control_id": batch.control_id,
            "specimens": batch.specimen_barcodes,
            "qc": any(result.qc for result in batch.results),
            "results": [self._result(result) for result in batch.results],
            "warnings": batch.warnings,
        }

    def _item(self, result: DeviceResult) -> LisItem | None:
        return self.codes.lookup(result.test_code) if result.test_code else None

    def _result(self, result: DeviceResult) -> dict[str, Any]:
        item = self.codes.lookup(result.test_code)
        assert item is not None  # document() refused unmapped codes
        return {
            "specimen_barcode": result.specimen_barcode,
            "lis_code": item.code,
            "lis_name": item.name,
            "test_code": result.test_code,
            "test_name": result.test_name,
            "value": lis_value(result),
            "numeric": result.numeric,
            "units": result.units,
            "reference_range": result.reference_range,
            "abnormal_flags": list(result.abnormal_flags),
            "result_status": result.result_status,
            "observed_at": result.observed_at,
            "qc": result.qc,
            "source": result.source,
        }
