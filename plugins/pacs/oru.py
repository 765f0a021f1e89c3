"""ORU^R01 radiology reports → the plugin's `ExamReport`.

Shape (IHE RAD-28/RAD-128, the dcm4che MESA sample): `MSH PID [PV1] [ORC] OBR OBX+`.
OBR-18 is the accession number (OBR-3, the filler order number, when it is empty), OBR-19
the requested procedure id, OBR-4 the procedure, OBR-24 the modality, OBR-25 the result
status (`P` preliminary, `F` final, `C` corrected, `X` cancelled), OBR-32 the principal
interpreter (author) and OBR-22 the status-change time (verified_at). OBX rows:

- `113014^DICOM Study^DCM` (ST) is the Study Instance UID;
- TX/FT/ST text goes to `impression` (LOINC 19005-8, or a code/name saying impression,
  conclusion, 诊断, 印象, 结论), `recommendation` (18783-1, 建议) or else `findings`, lines
  joined in order (OBX-4 sub-ids group lines of one observation);
- ED `^Application^PDF^Base64^<data>` (or an image type) is an attachment. The `pacs_oru`
  source stores its bytes once in the engine's blob store before the message is stored and
  rewrites the field to `^Application^PDF^Blob^blob:sha256:<hex>&<size>`
  (`store_ready_oru`), so the raw stage and every later stage carry the reference only;
  `map_oru` maps that form and refuses inline Base64 (it has nowhere to keep the bytes).

OBX-16 (responsible observer) and OBX-14 stand in for a missing OBR-32/OBR-22, as
reporting systems that fill only the observation rows do. A report the engine cannot map
(broken base64, an attachment over the limit, no accession) is the sender's fault: an
`InputError` with the sender's party (`third_party` for a PACS), naming the segment and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from engine.errors import InputError
from engine.mllp.header import Hl7HeaderError, MshHeader, Separators, decode_message
from plugins.pacs.attachments import InlineAttachment, content_type_of, decode_base64
from plugins.pacs.model import ExamReport, ReportStatus

STUDY_UID_CODE = "113014"
_IMPRESSION = re.compile(r"(?i)^19005-8$|impression|conclusion|诊断|印象|结论")
_RECOMMENDATION = re.compile(r"(?i)^18783-1$|recommend|建议")
_TEXT_TYPES = frozenset({"TX", "FT", "ST"})
_STATUS = {
    "P": ReportStatus.PRELIMINARY,
    "F": ReportStatus.FINAL,
    "C": ReportStatus.CORRECTED,
    "X": ReportStatus.CANCELLED,
}
_SEX = frozenset({"M", "F", "O", "U"})
_MODALITY = re.compile(r"^[A-Z]{2,4}$")
_LF = re.compile(r"\r\n|\r|\n")


def _split_lines(text: str) -> list[str]:
    """Segments split at CR, HL7's separator, or at CRLF/LF from files and tools. The regex runs
    only when there is a LF: on a message with a 5 MB PDF it costs ~150 ms, str.split ~5 ms."""
    return _LF.split(text) if "\n" in text else text.split("\r")


BLOB_ENCODING = "Blob"
"""OBX-5.4 of an ED whose bytes the engine stored: OBX-5.5 is then `<blob ref>&<size>`."""
DEFAULT_PARTY = "third_party"


@dataclass(frozen=True)
class ReadyOru:
    """An ORU^R01 whose ED attachments are references, with the bytes to store for them."""

    message: bytes
    accession_number: str
    attachments: list[InlineAttachment]


class _Segments:
    def __init__(self, text: str, separators: Separators, codec: str) -> None:
        self.separators = separators
        self.codec = codec
        lines = [line for line in _split_lines(text) if line.strip()]
        self.rows = [line.split(separators.field) for line in lines]

    def all(self, name: str) -> list[list[str]]:
        return [row for row in self.rows if row[0] == name]

    def first(self, name: str) -> list[str]:
        found = self.all(name)
        return found[0] if found else [name]

    def value(self, row: list[str], number: int, component: int = 1) -> str:
        """Field `number` (HL7 numbering), component `component`, unescaped."""
        raw = row[number] if number < len(row) else ""
        parts = raw.split(self.separators.repetition)[0].split(self.separators.component)
        text = parts[component - 1] if component <= len(parts) else ""
        return self.separators.unescape(text.split(self.separators.subcomponent)[0], self.codec).strip()

    def raw(self, row: list[str], number: int) -> str:
        return row[number] if number < len(row) else ""


def _parse(raw: bytes, default_charset: str, party: str) -> tuple[str, str, _Segments, MshHeader]:
    """(codec, text, segments, header) of an ORU^R01."""
    decoded = decode_message(raw, default_charset)
    try:
        header = MshHeader.parse(decoded.text)
    except Hl7HeaderError as exc:
        raise InputError(exc.reason, field="MSH", party=party) from exc
    if (header.message_code, header.trigger_event) != ("ORU", "R01"):
        raise InputError(f"expected ORU^R01, got {header.field(9)}", field="MSH-9", party=party)
    return decoded.codec, decoded.text, _Segments(decoded.text, header.separators, decoded.codec), header


def _accession(segments: _Segments, party: str) -> str:
    obr = segments.first("OBR")
    accession = segments.value(obr, 18) or segments.value(obr, 3)
    if not accession:
        raise InputError("no accession number (OBR-18, or OBR-3)", field="OBR-18", party=party)
    return accession


def store_ready_oru(
    raw: bytes, *, default_charset: str = "utf-8", max_attachment_bytes: int, party: str = DEFAULT_PARTY
) -> ReadyOru:
    """Check an incoming ORU^R01 and take out its Base64 ED attachments: each is decoded
    (broken base64 or one over `max_attachment_bytes` is refused) and its OBX-5 rewritten to
    the blob reference the engine will store it under. Every other byte stays as it came."""
    codec, text, segments, header = _parse(raw, default_charset, party)
    accession = _accession(segments, party)
    separators = header.separators
    attachments: list[InlineAttachment] = []
    # Standard CR-separated text is rebuilt from its lines; text with LFs gets a (slower) replace.
    lines = text.split("\r") if "\n" not in text else None
    for index, row in enumerate(segments.all("OBX"), start=1):
        if segments.value(row, 2) != "ED" or segments.value(row, 5, 4).lower() != "base64":
            continue
        where = f"OBX[{index}]-5"
        components = row[5].split(separators.component)
        content_type = content_type_of(components[1], components[2], where=where, party=party)
        data = decode_base64(
            components[4] if len(components) > 4 else "", where=where, max_bytes=max_attachment_bytes, party=party
        )
        attachment = InlineAttachment(data, content_type, segments.value(row, 3, 2))
        attachments.append(attachment)
        received = separators.field.join(row)
        components[3:] = [BLOB_ENCODING, f"{attachment.ref}{separators.subcomponent}{len(data)}"]
        rewritten = separators.field.join([*row[:5], separators.component.join(components), *row[6:]])
        if lines is None:
            text = text.replace(received, rewritten, 1)
        else:
            lines[lines.index(received)] = rewritten
    if lines is not None:
        text = "\r".join(lines)
    return ReadyOru(text.encode(codec), accession, attachments)


def map_oru(raw: bytes, *, default_charset: str = "utf-8", party: str = DEFAULT_PARTY) -> ExamReport:
    """The report in an ORU^R01 whose attachments are blob references (see `store_ready_oru`)."""
    _, _, segments, _ = _parse(raw, default_charset, party)
    obr = segments.first("OBR")
    accession = _accession(segments, party)
    observations = _Observations(segments, party)
    for index, obx in enumerate(segments.all("OBX"), start=1):
        observations.add(index, obx)
    pid = segments.first("PID")
    author_id, author_name = _person(segments, obr, 32) or observations.observer or ("", "")
    report: dict[str, Any] = {
        "accession_number": accession,
        "requested_procedure_id": segments.value(obr, 19) or None,
        "study_instance_uid": observations.study_uid or None,
        "patient": {
            "id": segments.value(pid, 3),
            "name": " ".join(part for part in (segments.value(pid, 5, 1), segments.value(pid, 5, 2)) if part),
            "sex": segments.value(pid, 8) if segments.value(pid, 8) in _SEX else "U",
        },
        "modality": modality if _MODALITY.match(modality := segments.value(obr, 24)) else None,
        "status": _STATUS.get(segments.value(obr, 25), ReportStatus.FINAL),
        "findings": "\n".join(observations.findings),
        "impression": "\n".join(observations.impression),
        "recommendation": "\n".join(observations.recommendation),
        "author": {"id": author_id or "unknown", "name": author_name},
        "verified_at": _hl7_time(segments.value(obr, 22)) or observations.latest_time,
        "attachments": observations.attachment_refs,
    }
    if segments.value(obr, 4):
        report["procedure"] = {
            "code": segments.value(obr, 4, 1),
            "name": segments.value(obr, 4, 2) or segments.value(obr, 4, 1),
        }
    try:
        return ExamReport.model_validate(report)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(part) for part in first["loc"])
        raise InputError(f"{path}: {first['msg']}", field="report", party=party) from exc


class _Observations:
    def __init__(self, segments: _Segments, party: str) -> None:
        self.segments = segments
        self.party = party
        self.findings: list[str] = []
        self.impression: list[str] = []
        self.recommendation: list[str] = []
        self.study_uid = ""
        self.observer: tuple[str, str] | None = None
        self.latest_time: datetime | None = None
        self.attachment_refs: list[dict[str, Any]] = []

    def add(self, index: int, obx: list[str]) -> None:
        value_type = self.segments.value(obx, 2)
        code, name = self.segments.value(obx, 3, 1), self.segments.value(obx, 3, 2)
        observer = _person(self.segments, obx, 16)
        observed = _hl7_time(self.segments.value(obx, 14))
        signed = observed is not None and (self.latest_time is None or observed > self.latest_time)
        if signed:
            self.latest_time = observed
        if observer and (signed or self.latest_time is None):
            self.observer = observer  # the row signed last, else the last row naming someone
        if code == STUDY_UID_CODE:
            self.study_uid = self.segments.value(obx, 5)
        elif value_type == "ED":
            self._attachment(index, obx, name)
        elif value_type in _TEXT_TYPES:
            text = self.segments.separators.unescape(self.segments.raw(obx, 5), self.segments.codec).strip()
            if text:
                self._bucket(code, name).append(text)

    def _bucket(self, code: str, name: str) -> list[str]:
        if _IMPRESSION.search(code) or _IMPRESSION.search(name):
            return self.impression
        if _RECOMMENDATION.search(code) or _RECOMMENDATION.search(name):
            return self.recommendation
        return self.findings

    def _attachment(self, index: int, obx: list[str], title: str) -> None:
        where = f"OBX[{index}]-5"
        encoding = self.segments.value(obx, 5, 4)
        if encoding.lower() == "base64":
            raise InputError(
                "inline Base64 attachment: receive reports through source kind pacs_oru, which stores "
                "attachments once and puts their references here", field=where, party=self.party,
            )
        if encoding != BLOB_ENCODING:
            raise InputError(f"an ED attachment must be Base64 (got {encoding or 'nothing'})", field=where,
                             party=self.party)
        content_type = content_type_of(
            self.segments.value(obx, 5, 2), self.segments.value(obx, 5, 3), where=where, party=self.party
        )
        reference = self.segments.raw(obx, 5).split(self.segments.separators.component)[4]
        ref, _, size = reference.partition(self.segments.separators.subcomponent)
        self.attachment_refs.append({"ref": ref, "content_type": content_type,
                                     "size": int(size) if size.isdigit() else 0, "title": title})


def _person(segments: _Segments, row: list[str], number: int) -> tuple[str, str] | None:
    """An XCN/NDL person: `id^family^given` (OBR-32 wraps it in subcomponents: `id&family&given`)."""
    raw = segments.raw(row, number).split(segments.separators.repetition)[0]
    if not raw:
        return None
    components = raw.split(segments.separators.component)
    if segments.separators.subcomponent in components[0]:
        components = components[0].split(segments.separators.subcomponent)
    person_id = segments.separators.unescape(components[0]).strip()
    name = " ".join(segments.separators.unescape(part).strip() for part in components[1:3] if part.strip())
    return (person_id or name, name)


def _hl7_time(value: str) -> datetime | None:
    digits = re.sub(r"[^0-9]", "", value.split(".")[0].split("+")[0].split("-")[0])
    for width, pattern in ((14, "%Y%m%d%H%M%S"), (12, "%Y%m%d%H%M"), (8, "%Y%m%d")):
        if len(digits) >= width:
            try:
                return datetime.strptime(digits[:width], pattern)
            except ValueError:
                return None
    return None


__all__ = ["BLOB_ENCODING", "ReadyOru", "map_oru", "store_ready_oru"]
