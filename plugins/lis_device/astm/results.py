"""Results out of an ASTM message: every R record becomes a DeviceResult.

The hierarchy H (P (O (R C*)*)*) L gives each result its order (specimen barcode) and
attaches C records to the record before them. Vendor habits handled here:

- R-3 universal test id `^^^code^...`: the manufacturer's code is component 4 (ARCHITECT
  `^^^651^_B-hCG^...`, DxH `!!!WBC!33256-9`); when that is empty, component 1 is used
  (Mindray `1^CA125^^`). The whole field is kept in `extra["universal_test_id"]`.
- R-4 value with components: the first is the value; the rest (DxH `146!  H `,
  Immucor `3+^3+^45`, Mindray `10000.000000^^^^`) is kept in `extra["value_components"]`.
- R-6 range with a label component (Horiba `73.5-83.5^REFERENCE_RANGE`): component 1.
- the specimen barcode: the first non-empty of `specimen_fields` in the current O record
  (O-3 specimen id, then O-4 instrument specimen id).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from plugins.lis_device.astm.records import AstmMessage, AstmRecord, RecordPath
from plugins.lis_device.results import DeviceResult, ResultBatch, parse_number


@dataclass(frozen=True, slots=True)
class AstmResultLayout:
    """Where a device puts things. Defaults follow E1394 §10.1; `shifted_after_units()`
    covers devices (Beckman DxH) that insert an extra empty field after R-5."""

    specimen_fields: tuple[str, ...] = ("O.3.1", "O.4.1")
    code_component: int = 4
    fallback_code_component: int = 1
    name_component: int = 2
    instrument_path: str = "H.5.1"
    units_field: int = 5
    range_field: int = 6
    flags_field: int = 7
    status_field: int = 9
    operator_field: int = 11
    started_field: int = 12
    completed_field: int = 13
    instrument_field: int = 14

    @classmethod
    def shifted_after_units(cls, shift: int = 1, **overrides: Any) -> AstmResultLayout:
        fields = (
            "range_field",
            "flags_field",
            "status_field",
            "operator_field",
            "started_field",
            "completed_field",
            "instrument_field",
        )
        standard = cls()
        shifted = {name: getattr(standard, name) + shift for name in fields}
        return replace(standard, **{**shifted, **overrides})


def _specimen_of(order: AstmRecord | None, layout: AstmResultLayout) -> str:
    if order is None:
        return ""
    for text in layout.specimen_fields:
        where = RecordPath.parse(text)
        if where.record != "O" or where.field is None:
            continue
        value = order.value(where.field, where.repeat, where.component).strip()
        if value:
            return value
    return ""


def extract_results(
    message: AstmMessage, layout: AstmResultLayout = AstmResultLayout()
) -> ResultBatch:
    """Every R record as a DeviceResult; problems as warnings, never silent drops."""
    header = message.records[0]
    batch = ResultBatch(
        protocol="astm",
        message_type=header.value(12).strip(),
        control_id=header.value(3).strip(),
        instrument=message.get(layout.instrument_path).strip(),
        warnings=list(message.warnings),
    )
    order: AstmRecord | None = None
    barcode = ""
    last_result: DeviceResult | None = None
    counts = {"O": 0, "R": 0}
    total_r = len(message.records_of("R"))
    for record in message.records:
        kind = record.type
        if kind in counts:
            counts[kind] += 1
        if kind == "C":
            if last_result is not None:
                _attach_comment(last_result, record.value(4).strip())
            continue
        last_result = None
        if kind == "P":
            order, barcode = None, ""
        elif kind == "O":
            order = record
            barcode = _specimen_of(order, layout)
            if barcode and barcode not in batch.specimen_barcodes:
                batch.specimen_barcodes.append(barcode)
            if not barcode:
                batch.warnings.append(
                    f"O[{counts['O']}]: no specimen id in {', '.join(layout.specimen_fields)}"
                )
        elif kind == "R":
            source = f"R[{counts['R']}]" if total_r > 1 else "R"
            if order is None:
                batch.warnings.append(f"{source}: result without an O record before it")
            last_result = _result(record, source, barcode, batch, layout)
            if last_result is not None and order is not None and order.value(12).strip().upper() == "Q":
                last_result = replace(last_result, qc=True)  # O-12 action code Q: a QC specimen
            if last_result is not None:
                batch.results.append(last_result)
    return batch


def _attach_comment(result: DeviceResult, text: str) -> None:
    if text:
        earlier = result.extra.get("comments")
        result.extra["comments"] = f"{earlier}\n{text}" if earlier else text


def _result(
    record: AstmRecord, source: str, barcode: str, batch: ResultBatch, layout: AstmResultLayout
) -> DeviceResult | None:
    test_id = record.components(3)
    code = _nth(test_id, layout.code_component).strip()
    if not code:
        code = _nth(test_id, layout.fallback_code_component).strip()
    name = _nth(test_id, layout.name_component).strip()
    value_parts = record.components(4)
    value = value_parts[0].strip()
    if not code and not value:
        batch.warnings.append(f"{source}: no test id and no value; record kept in raw only")
        return None
    if not code:
        batch.warnings.append(f"{source}: value {value!r} has no test id")
    extra = {
        "universal_test_id": record.raw(3),
        "operator": record.value(layout.operator_field).strip(),
        "started_at": record.value(layout.started_field).strip(),
        "instrument_id": record.value(layout.instrument_field).strip(),
    }
    if any(part.strip() for part in value_parts[1:]):
        extra["value_components"] = record.value(4)
    unescape = record.delimiters.unescape
    flags = [unescape(flag, record.encoding).strip() for flag in record.repeats(layout.flags_field)]
    return DeviceResult(
        protocol="astm",
        source=source,
        test_code=code,
        test_name=name,
        value=value,
        numeric=parse_number(value),
        units=record.value(layout.units_field, component=1).strip(),
        reference_range=record.value(layout.range_field, component=1).strip(),
        abnormal_flags=tuple(flag for flag in flags if flag),
        result_status=record.value(layout.status_field).strip(),
        observed_at=(
            record.value(layout.completed_field).strip()
            or record.value(layout.started_field).strip()
        ),
        specimen_barcode=barcode,
        instrument=batch.instrument,
        extra={key: text for key, text in extra.items() if text},
    )


def _nth(parts: list[str], number: int) -> str:
    return parts[number - 1] if number <= len(parts) else ""
