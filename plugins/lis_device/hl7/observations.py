"""Results out of an HL7 ORU^R01 (or any message carrying OBX segments).

Devices disagree on where things go, so the places are data (`ObservationLayout`):

- the test: OBX-3.1 code and OBX-3.2 name by the standard; Mindray puts a channel number
  in OBX-3 and the name in OBX-4, PointcareM leaves OBX-3 empty and puts the code in
  OBX-4. When the code is empty the layout's fallback field is used and a warning says so.
- the specimen barcode: per order group (OBR and what follows it), the first non-empty
  of `specimen_paths`: SPM-2 (v2.5+), OBR-2 placer (Mindray, Wondfo), OBR-3 filler.
- QC without OBX (Mindray): an ORU with no OBX whose OBR-20 holds a value is read as a QC
  result from OBR fields, with a warning saying so; the specimen is `control/lot`.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugins.lis_device.hl7.reader import FieldPath, Hl7Message, Segment
from plugins.lis_device.results import DeviceResult, ResultBatch, parse_number

_NUMERIC_TYPES = frozenset({"NM", "SN"})


@dataclass(frozen=True, slots=True)
class ObservationLayout:
    specimen_paths: tuple[str, ...] = ("SPM-2.1.1", "OBR-2.1", "OBR-3.1")
    code_fallback_field: int = 4
    instrument_path: str = "MSH-3.1"


class _OrderGroup:
    __slots__ = ("order", "specimens")

    def __init__(self, order: Segment | None) -> None:
        self.order = order
        self.specimens: list[Segment] = []

    def find_barcode(self, paths: tuple[str, ...]) -> str:
        for text in paths:
            where = FieldPath.parse(text)
            candidates: list[Segment] = []
            if where.segment == "OBR" and self.order is not None:
                candidates = [self.order]
            elif where.segment == "SPM":
                candidates = self.specimens
            for segment in candidates:
                if where.field is None:
                    continue
                value = segment.value(
                    where.field, where.repetition, where.component, where.subcomponent
                ).strip()
                if value:
                    return value
        return ""


def extract_observations(
    message: Hl7Message, layout: ObservationLayout = ObservationLayout()
) -> ResultBatch:
    """Every OBX as a DeviceResult; problems as warnings, never silent drops."""
    batch = ResultBatch(
        protocol="hl7",
        message_type="^".join(filter(None, (message.message_code, message.trigger_event))),
        control_id=message.control_id,
        instrument=message.get(layout.instrument_path),
        warnings=list(message.warnings),
    )
    groups: list[_OrderGroup] = [_OrderGroup(None)]
    pending: list[tuple[int, Segment, _OrderGroup]] = []
    obx_number = 0
    for segment in message.segments:
        if segment.name == "OBR":
            groups.append(_OrderGroup(segment))
        elif segment.name == "SPM":
            groups[-1].specimens.append(segment)
        elif segment.name == "OBX":
            obx_number += 1
            pending.append((obx_number, segment, groups[-1]))
    barcodes = {id(group): group.find_barcode(layout.specimen_paths) for group in groups}
    for barcode in barcodes.values():
        if barcode and barcode not in batch.specimen_barcodes:
            batch.specimen_barcodes.append(barcode)
    source_prefix = "OBX" if obx_number == 1 else None
    for number, segment, group in pending:
        source = source_prefix or f"OBX[{number}]"
        result = _observation(segment, source, barcodes[id(group)], layout, batch)
        if result is not None:
            batch.results.append(result)
    if message.message_code == "ORU" and obx_number == 0:
        qc_results = [result for group in groups if (result := _qc_in_obr(group.order, batch)) is not None]
        if qc_results:
            batch.warnings.append("ORU without OBX: QC results read from OBR-20/21 (Mindray QC layout)")
            batch.results.extend(qc_results)
        else:
            batch.warnings.append("ORU without OBX segments: no results to extract")
    return batch


def _qc_in_obr(obr: Segment | None, batch: ResultBatch) -> DeviceResult | None:
    """Mindray sends QC results without OBX, in re-purposed OBR fields: OBR-3 test,
    OBR-13 control, OBR-14 lot, OBR-15 expiry, OBR-17 level, OBR-18 mean, OBR-19 SD,
    OBR-20 result, OBR-21 unit."""
    if obr is None or not obr.value(20).strip():
        return None
    value = obr.value(20).strip()
    control = {"control": 13, "lot": 14, "expires": 15, "level": 17, "target_mean": 18, "target_sd": 19}
    extra = {name: obr.value(number).strip() for name, number in control.items()}
    number = obr.value(1).strip() or "1"
    return DeviceResult(
        protocol="hl7",
        source=f"OBR[{number}]-20",
        test_code=obr.value(3).strip() or obr.value(4, component=1).strip(),
        value=value,
        numeric=parse_number(value),
        units=obr.value(21).strip(),
        observed_at=obr.value(8).strip() or obr.value(7).strip(),
        specimen_barcode="/".join(part for part in (extra["control"], extra["lot"]) if part),
        instrument=batch.instrument,
        qc=True,
        extra={key: text for key, text in extra.items() if text},
    )


def _observation(
    obx: Segment,
    source: str,
    barcode: str,
    layout: ObservationLayout,
    batch: ResultBatch,
) -> DeviceResult | None:
    test_id = obx.components(3) + ["", ""]
    code, name = test_id[0].strip(), test_id[1].strip()
    fallback = obx.value(layout.code_fallback_field).strip()
    if not code and fallback:
        code = fallback
        batch.warnings.append(
            f"{source}: OBX-3 empty, test code taken from OBX-{layout.code_fallback_field}"
        )
    elif not name and fallback and fallback != code:
        name = fallback
    value = obx.value(5).strip()
    value_type = obx.value(2).strip()
    if not code and not value:
        batch.warnings.append(f"{source}: no test code and no value; segment kept in raw only")
        return None
    if not code:
        batch.warnings.append(f"{source}: value {value!r} has no test code")
    numeric = parse_number(value)
    if value_type in _NUMERIC_TYPES and value and numeric is None:
        batch.warnings.append(f"{source}: {value_type} value {value!r} is not a plain number")
    extra = {"value_type": value_type, "sub_id": obx.value(4).strip()}
    return DeviceResult(
        protocol="hl7",
        source=source,
        test_code=code,
        test_name=name,
        value=value,
        numeric=numeric,
        units=obx.components(6)[0].strip(),
        reference_range=obx.value(7).strip(),
        abnormal_flags=_flags(obx),
        result_status=obx.value(11).strip(),
        observed_at=obx.value(14).strip(),
        specimen_barcode=barcode,
        instrument=batch.instrument,
        extra={key: text for key, text in extra.items() if text},
    )


def _flags(obx: Segment) -> tuple[str, ...]:
    """OBX-8 repetitions (`H~A`); from v2.5 each is a CWE, so only its code counts."""
    component = obx.separators.component
    codes = (flag.split(component)[0].strip() for flag in obx.repetitions(8))
    return tuple(code for code in codes if code)
