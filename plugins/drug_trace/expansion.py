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


def plan(codes: list[str], large: list[str], *, ledger: str | None, document: str) -> dict[str, Any]:
    """What send() must expand: the large codes with their positions in HIS's list, and the
    ledger step (`sell`, `take_back` or none) and document their box codes are recorded under."""
    return {"codes": {code: codes.index(code) for code in large}, "ledger": ledger, "document": document}


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
        positions: dict[str, int] = planned.get("codes") or {}
        result = Expanded()
        for code, position in positions.items():
            wire.step(step="relation", code=code)
            result.boxes[code] = await self._boxes(code, position, wire)
            if planned.get("ledger") is not None:
                record = self.ledger.sell if planned["ledger"] == "sell" else self.ledger.take_back
                record(result.boxes[code], str(planned["document"]), field=f"trace_codes[{position}].boxes")
        for row in trace_rows(upload["input"]):
            codes = [str(entry.get("drug_trac_codg")) for entry in row["drugtracinfo"] if isinstance(entry, dict)]
            codes = [box for code in codes for box in result.boxes.get(code, [code])]
            row["drugtracinfo"] = [{"drug_trac_codg": code} for code in codes]
            result.codes.extend(codes)
        return result

    async def _boxes(self, code: str, position: int, wire: Wire) -> list[str]:
        try:
            boxes = await self.relations.smallest_codes(code, wire)
        except InputError as unknown:
            raise InputError(unknown.reason, field=f"trace_codes[{position}]") from unknown
        odd = [box for box in boxes if not self.pattern.fullmatch(box)]
        if odd:
            raise PermanentError(
                f"码上放心 expanded {code} into codes that are not trace codes: {', '.join(odd[:3])}",
                detail={"platform": "alihealth_top", "condition": "bad_relation"},
            )
        return boxes


__all__ = ["EXPAND_FIELD", "CaseExpander", "Expanded", "plan", "trace_rows"]
