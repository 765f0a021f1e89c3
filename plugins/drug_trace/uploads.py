"""From a HIS call to the upload the outbox sends: which transaction, which node, which codes.

HIS sends one record with its codes, `{"kind": "sale", "record": {...}, "trace_codes": [...]}`,
or, where the deployment uses the batch ("A") variants, several:
`{"kind": "sale", "items": [{"record": {...}, "trace_codes": [...]}, ...]}`, uploaded as one
3505A (`selinfoDetail[]`) or 3501A (`invinfoDetail[]`), the only batch variants whose list
node the spec names (§1, "probably province-specific"). Every refusal names the field as HIS
wrote it (`items[1].trace_codes[0]`, `record.sel_retn_cnt`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from engine.errors import InputError
from engine.message import Payload
from plugins.drug_trace.codes import CodeRules
from plugins.drug_trace.expansion import EXPAND_FIELD, plan
from plugins.drug_trace.ledger import SaleLedger
from plugins.yibao.api import Operator, validate_input


@dataclass(frozen=True)
class Kind:
    infno: str
    node: str
    ledger: str | None = None  # "sell", "take_back" or none
    batch_infno: str | None = None
    batch_node: str | None = None


KINDS: dict[str, Kind] = {
    "sale": Kind("3505", "selinfo", "sell", "3505A", "selinfoDetail"),
    "return": Kind("3506", "selinfo", "take_back"),
    "stock": Kind("3501", "invinfo", None, "3501A", "invinfoDetail"),
    "stock_change": Kind("3502", "invinfo"),
}
BATCH_INFNOS = frozenset(kind.batch_infno for kind in KINDS.values() if kind.batch_infno)
DOCUMENT_FIELD = "rtal_docno"


@dataclass(frozen=True)
class Item:
    """One record of a call and where HIS wrote it (`""` or `items[i].`)."""

    record: dict[str, Any]
    codes: object
    at: str


@dataclass
class UploadBuilder:
    rules: CodeRules
    ledger: SaleLedger
    default_operator: Operator
    batch_variants: bool = False
    expand_large: bool = False

    def build(self, request: Payload) -> Payload:
        """The upload for a HIS call; InputError (party his) naming the field at fault."""
        call = his_call(request)
        kind = KINDS[call["kind"]]
        items = self._items(call, kind)
        records: list[dict[str, Any]] = []
        codes: list[str] = []
        fields: list[str] = []
        for item in items:
            record, checked = self._record(kind, item)
            records.append(record)
            codes.extend(checked)
            fields.extend(f"{item.at}trace_codes[{index}]" for index in range(len(checked)))
        seen: set[str] = set()
        for code, field in zip(codes, fields, strict=True):
            if code in seen:
                raise InputError("the same code twice in one message", field=field)
            seen.add(code)
        document = self._document(call["kind"], kind, records, items)
        if kind.ledger is not None:
            record_in_ledger = self.ledger.sell if kind.ledger == "sell" else self.ledger.take_back
            record_in_ledger(codes, document, fields=fields)
        batch = "items" in call
        upload: dict[str, Any] = {
            "infno": kind.batch_infno if batch else kind.infno,
            "input": {kind.batch_node: records} if batch and kind.batch_node else {kind.node: records[0]},
            "operator": self._operator(call),
        }
        large = {code: field for code, field in zip(codes, fields, strict=True) if self.rules.products.is_large(code)}
        if large and self.expand_large:
            upload[EXPAND_FIELD] = plan(large, ledger=kind.ledger, document=document)
        insuplc = call.get("insuplc_admdvs")
        if insuplc not in (None, ""):
            if not (isinstance(insuplc, str) and re.fullmatch(r"\d{6}", insuplc)):
                raise InputError("must be a 6-digit area code", field="insuplc_admdvs")
            upload["insuplc_admdvs"] = insuplc
        return Payload.from_json(upload)

    def _items(self, call: dict[str, Any], kind: Kind) -> list[Item]:
        if "items" not in call:
            if not isinstance(call.get("record"), dict):
                raise InputError(f"must be the {kind.node} fields as an object", field="record")
            return [Item(dict(call["record"]), call.get("trace_codes"), "")]
        if kind.batch_infno is None:
            raise InputError(f"{call['kind']} has no batch variant; send one record per message", field="items")
        if not self.batch_variants:
            raise InputError("this deployment uploads one record per message (batch_variants is off)", field="items")
        given = call["items"]
        if not isinstance(given, list) or not given:
            raise InputError('must be a non-empty list of {"record": {...}, "trace_codes": [...]}', field="items")
        items = []
        for index, entry in enumerate(given):
            if not isinstance(entry, dict) or not isinstance(entry.get("record"), dict):
                raise InputError(f"must hold the {kind.node} fields as an object", field=f"items[{index}].record")
            items.append(Item(dict(entry["record"]), entry.get("trace_codes"), f"items[{index}]."))
        return items

    def _record(self, kind: Kind, item: Item) -> tuple[dict[str, Any], list[str]]:
        record = item.record
        codes, catalogue_code = self.rules.check(item.codes, field=f"{item.at}trace_codes")
        given = record.setdefault("med_list_codg", catalogue_code)
        if given != catalogue_code:
            raise InputError(f"the trace codes belong to catalogue item {catalogue_code}, not {given}",
                             field=f"{item.at}record.med_list_codg")
        record["drugtracinfo"] = [{"drug_trac_codg": code} for code in codes]
        try:
            validate_input(kind.infno, {kind.node: record})
        except InputError as refused:
            written_as = f"{item.at}record."
            raise InputError(refused.reason.replace(f"input.{kind.node}.", written_as),
                             field=(refused.field or "").replace(f"input.{kind.node}.", written_as)) from refused
        return record, codes

    @staticmethod
    def _document(name: str, kind: Kind, records: list[dict[str, Any]], items: list[Item]) -> str:
        """The ledger's document for the call: its retail document numbers (needed for sales
        and returns, whose codes are tracked)."""
        documents: list[str] = []
        for record, item in zip(records, items, strict=True):
            document = record.get(DOCUMENT_FIELD)
            if isinstance(document, str) and document:
                documents.append(document)
            elif kind.ledger is not None:
                raise InputError("the retail document number is needed to track its codes",
                                 field=f"{item.at}record.{DOCUMENT_FIELD}")
        return f"{name}:{'+'.join(dict.fromkeys(documents))}"

    def _operator(self, call: dict[str, Any]) -> dict[str, str]:
        given = call.get("operator")
        if given is None:
            return {"opter": self.default_operator.opter, "opter_name": self.default_operator.opter_name}
        if not (isinstance(given, dict) and isinstance(given.get("opter"), str)
                and isinstance(given.get("opter_name"), str)):
            raise InputError("needs opter and opter_name strings", field="operator")
        return {"opter": given["opter"], "opter_name": given["opter_name"]}


def his_call(request: Payload) -> dict[str, Any]:
    try:
        call = request.json()
    except ValueError as exc:
        raise InputError(f"body is not JSON: {exc}", field="body") from exc
    if not isinstance(call, dict):
        raise InputError("must be a JSON object", field="body")
    if call.get("kind") not in KINDS:
        raise InputError(f"must be one of {', '.join(KINDS)}", field="kind")
    return call


def call_keys(request: Payload) -> dict[str, str | list[str]]:
    """The business keys of a HIS call, as far as it can be read (also for a refused one):
    `trace_code` holds every code of the call, so any of them finds the message."""
    try:
        call = request.json()
    except ValueError:
        return {}
    if not isinstance(call, dict):
        return {}
    items = call.get("items")
    entries: list[Any] = items if isinstance(items, list) else [call]
    keys: dict[str, str | list[str]] = {}
    codes: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        record = entry.get("record")
        # the first key is the message's correlation key: the retail document when there is one
        if isinstance(record, dict):
            for name in ("rtal_docno", "setl_id", "rxno"):
                if isinstance(record.get(name), str):
                    keys.setdefault(name, record[name])
        if isinstance(entry.get("trace_codes"), list):
            codes.extend(code for code in entry["trace_codes"] if isinstance(code, str) and code)
    keys["trace_code"] = codes
    if isinstance(call.get("kind"), str):
        keys["kind"] = call["kind"]
    return keys
