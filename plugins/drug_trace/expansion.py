"""Case codes inside a sale: expanded into their box codes before the upload.

The pharmacy may scan a case or carton (a prefix marked `large` in the mapping table)
instead of each box. The centre wants the codes of what was sold, so before a 35xx upload
every such code is replaced by its smallest-package codes from the 码上放心 relation
query. That query is a network call, so it happens in send(), not when HIS hands the sale
over: transform() only lists the codes to expand (`EXPAND_FIELD` in the upload), and the box
codes are recorded in the sale ledger under the same document when they are known (a box
of a case sold before is refused then, naming the case's position).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from engine.adapters.base import Wire
from engine.errors import InputError, PermanentError
from plugins.drug_trace.ledger import SaleLedger
from plugins.drug_trace.top import CodeRelations

EXPAND_FIELD = "expand"


def plan(large: dict[str, str], *, ledger: str | None, document: str) -> dict[str, Any]:
    """What send() must expand: the large codes with the field HIS wrote each in, and the
    ledger step (`sell`, `take_back` or none) and document their box codes are recorded under."""
    return {"codes": large, "ledger": ledger, "document": document}


def trace_rows(input_: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every record of an upload's input that carries a `drugtracinfo` list (one node, or a
    batch variant's list of rows)."""
    for node in input_.values():
        for record in node if isinstance(node, list) else [node]:
            if isinstance(record, dict) and isinstance(record.get("drugtracinfo"), list):
                yield record


@dataclass
class Expanded:
    """The codes an upload carried in the end, and what each expanded code became."""

    codes: list[str] = field(default_factory=list)
    boxes: dict[str, list[str]] = field(default_factory=dict)


class CaseExpander:
    def __init__(self, relations: CodeRelations, ledger: SaleLedger, pattern: re.Pattern[str]) -> None:
        self.relations = relations
        self.ledger = ledger
        self.pattern = pattern

    async def expand(self, upload: dict[str, Any], wire: Wire) -> Expanded:
        """Replace, in place, each planned code of the upload's `drugtracinfo` lists by its box
        codes; returns the codes the upload now carries and the expansions made."""
        planned = upload.get(EXPAND_FIELD) or {}
        fields: dict[str, str] = planned.get("codes") or {}
        result = Expanded()
        for code, written_as in fields.items():
            wire.step(step="relation", code=code)
            boxes = result.boxes[code] = await self._boxes(code, written_as, wire)
            if planned.get("ledger") is not None:
                record = self.ledger.sell if planned["ledger"] == "sell" else self.ledger.take_back
                record(boxes, str(planned["document"]), fields=[f"{written_as}.boxes[{i}]" for i in range(len(boxes))])
        for row in trace_rows(upload["input"]):
            codes = [str(entry.get("drug_trac_codg")) for entry in row["drugtracinfo"] if isinstance(entry, dict)]
            codes = [box for code in codes for box in result.boxes.get(code, [code])]
            row["drugtracinfo"] = [{"drug_trac_codg": code} for code in codes]
            result.codes.extend(codes)
        return result

    async def _boxes(self, code: str, written_as: str, wire: Wire) -> list[str]:
        try:
            boxes = await self.relations.smallest_codes(code, wire)
        except InputError as unknown:
            raise InputError(unknown.reason, field=written_as) from unknown
        odd = [box for box in boxes if not self.pattern.fullmatch(box)]
        if odd:
            raise PermanentError(
                f"码上放心 expanded {code} into codes that are not trace codes: {', '.join(odd[:3])}",
                detail={"platform": "alihealth_top", "condition": "bad_relation"},
            )
        return boxes


__all__ = ["EXPAND_FIELD", "CaseExpander", "Expanded", "plan", "trace_rows"]
