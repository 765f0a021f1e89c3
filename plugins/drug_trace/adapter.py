"""`DrugTraceAdapter`: HIS hands over a sale, a return or a stock record with its trace
codes and carries on; the outbox uploads it to the insurance platform as 3505, 3506,
3501 or 3502 with the `drugtracinfo` list, signed and enveloped by the yibao plugin's
public API.

HIS sends `{"kind": "sale", "record": {...selinfo fields...}, "trace_codes": [...],
"insuplc_admdvs": "440304", "operator": {"opter", "opter_name"}}`. transform() checks
the codes (shape, mapped product prefix, one catalogue item per record), fills or checks
`med_list_codg` from the mapping table, and for sales and returns consults the sale
ledger: a code sold and not returned cannot be sold again, a code never sold cannot come
back. send() builds the envelope with a fresh msgid per attempt, signs in when needed and
posts.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import structlog
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.business_keys import KeysOut
from engine.errors import InputError
from engine.message import Delivery, Payload
from plugins.drug_trace.codes import DEFAULT_PATTERN, PRODUCT_PREFIX_DIGITS, CodeRules, ProductMap
from plugins.drug_trace.expansion import EXPAND_FIELD, CaseExpander, plan
from plugins.drug_trace.ledger import SaleLedger
from plugins.drug_trace.settings import BaseDirConfig, TopAccess
from plugins.yibao.api import (
    CentreClient,
    Deployment,
    MsgIdGenerator,
    Operator,
    SigningConfig,
    SignInSessions,
    build_signer,
    validate_input,
)

log = structlog.get_logger(__name__)


class Kind(BaseModel):
    infno: str
    node: str
    ledger: str | None = None  # "sell", "take_back" or none


KINDS: dict[str, Kind] = {
    "sale": Kind(infno="3505", node="selinfo", ledger="sell"),
    "return": Kind(infno="3506", node="selinfo", ledger="take_back"),
    "stock": Kind(infno="3501", node="invinfo"),
    "stock_change": Kind(infno="3502", node="invinfo"),
}
# A stock count states the whole inventory of an item: repeating it changes nothing.
REPEATABLE_INFNOS = frozenset({"3501"})
DOCUMENT_FIELD = "rtal_docno"


class OperatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opter: str = Field(description="operator id (opter, also 9001 opter_no)", max_length=30)
    opter_name: str = Field(description="operator name", max_length=50)


class DrugTraceConfig(BaseDirConfig):
    base_url: str = Field(description="insurance centre or front-machine base URL (the yibao call path is appended)")
    fixmedins_code: str = Field(pattern=r"^[A-Za-z0-9]{12}$", description="定点医药机构编号")
    fixmedins_name: str = Field(max_length=200, description="定点医药机构名称")
    mdtrtarea_admvs: str = Field(pattern=r"^\d{6}$", description="就医地医保区划")
    recer_sys_code: str = Field("YBXT", max_length=10, description="接收方系统代码: YBXT, MBS_LOCAL, FSI_LOCAL, ...")
    operator: OperatorConfig = Field(description="default operator when HIS names none")
    signing: SigningConfig = Field(
        default={"scheme": "none"}, validate_default=True,
        description="gateway scheme as in the yibao adapter: none, tif, zhejiang_sm3, jilin",
    )
    mapping_table: str = Field(
        description="the four-code mapping table: CSV with trace_prefix, med_list_codg; e.g. "
        "conf/drug_trace_codes.csv (relative to the base dir)"
    )
    ledger_file: str = Field(
        "var/drug_trace_ledger.sqlite", description="SQLite file of sold and returned codes (relative to the base dir)"
    )
    code_pattern: str = Field(DEFAULT_PATTERN, description="regular expression every trace code must match")
    prefix_digits: int = Field(PRODUCT_PREFIX_DIGITS, ge=1, description="leading characters that name the product")
    timeout: float = Field(30.0, gt=0, description="seconds to wait for the centre's answer")
    msgid_node: int = Field(0, ge=0, description="this engine node's number (msgids unique across nodes)")
    msgid_nodes: int = Field(1, ge=1, le=9000, description="how many engine nodes share this fixmedins_code")
    relation: TopAccess | None = Field(
        None, description="the 码上放心 relation query: when given, codes whose prefix the mapping table marks "
        "`large` (cases, cartons) are expanded into their box codes before upload",
    )

    @model_validator(mode="after")
    def _check(self) -> DrugTraceConfig:
        try:
            re.compile(self.code_pattern)
        except re.error as exc:
            raise ValueError(f"code_pattern is not a regular expression: {exc}") from exc
        if self.msgid_node >= self.msgid_nodes:
            raise ValueError(f"msgid_node must be below msgid_nodes ({self.msgid_nodes})")
        return self


class DrugTraceAdapter(Adapter):
    name: ClassVar[str] = "drug_trace"
    Config: ClassVar[type[AdapterConfig]] = DrugTraceConfig
    delivery: ClassVar[Delivery] = Delivery.ASYNC
    idempotent: ClassVar[bool] = False
    business_keys: ClassVar[tuple[str, ...]] = ("rtal_docno", "setl_id", "rxno", "trace_code", "kind")
    description: ClassVar[str] = (
        "drug trace codes (药品追溯码) uploaded as 3501/3502/3505/3506 through the insurance platform"
    )

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        super().__init__(config, services)
        assert isinstance(config, DrugTraceConfig)
        self.settings = config
        self.rules = CodeRules(
            re.compile(config.code_pattern),
            ProductMap.load(config.path(config.mapping_table), prefix_digits=config.prefix_digits),
        )
        self.ledger = SaleLedger(config.path(config.ledger_file))
        self.default_operator = Operator(config.operator.opter, config.operator.opter_name)
        self.centre = CentreClient(
            http=services.http_client(timeout=config.timeout),
            base_url=config.base_url,
            deployment=Deployment(
                fixmedins_code=config.fixmedins_code, fixmedins_name=config.fixmedins_name,
                mdtrtarea_admvs=config.mdtrtarea_admvs, recer_sys_code=config.recer_sys_code,
            ),
            signer=build_signer(
                config.signing, base_url=config.base_url, fixmedins_code=config.fixmedins_code,
                base_dir=config.base_dir,
            ),
            msgids=MsgIdGenerator(config.fixmedins_code, node=config.msgid_node, nodes=config.msgid_nodes),
        )
        self.sessions = SignInSessions(self.centre, mac="00-00-00-00-00-00", ip="127.0.0.1")
        self.expander = None if config.relation is None else CaseExpander(
            config.relation.relations(services, config.base_dir), self.ledger, self.rules.pattern
        )

    # --- request -----------------------------------------------------------------------------

    def transform(self, request: Payload) -> Payload:
        call = _his_call(request)
        kind = KINDS[call["kind"]]
        record = dict(call["record"])
        codes, catalogue_code = self.rules.check(call.get("trace_codes"), field="trace_codes")
        given = record.setdefault("med_list_codg", catalogue_code)
        if given != catalogue_code:
            raise InputError(
                f"the trace codes belong to catalogue item {catalogue_code}, not {given}", field="record.med_list_codg"
            )
        record["drugtracinfo"] = [{"drug_trac_codg": code} for code in codes]
        input_ = {kind.node: record}
        validate_input(kind.infno, input_)
        document = ""
        if kind.ledger is not None:
            given_document = record.get(DOCUMENT_FIELD)
            if not isinstance(given_document, str) or not given_document:
                raise InputError("the retail document number is needed to track its codes", field="record.rtal_docno")
            document = f"{call['kind']}:{given_document}"
            record_in_ledger = self.ledger.sell if kind.ledger == "sell" else self.ledger.take_back
            record_in_ledger(codes, document, field="trace_codes")
        upload: dict[str, Any] = {"infno": kind.infno, "input": input_, "operator": self._operator(call)}
        large = [code for code in codes if self.rules.products.is_large(code)]
        if large and self.expander is not None:
            upload[EXPAND_FIELD] = plan(codes, large, ledger=kind.ledger, document=document)
        insuplc = call.get("insuplc_admdvs")
        if insuplc not in (None, ""):
            if not (isinstance(insuplc, str) and re.fullmatch(r"\d{6}", insuplc)):
                raise InputError("must be a 6-digit area code", field="insuplc_admdvs")
            upload["insuplc_admdvs"] = insuplc
        return Payload.from_json(upload)

    def _operator(self, call: dict[str, Any]) -> dict[str, str]:
        given = call.get("operator")
        if given is None:
            return {"opter": self.default_operator.opter, "opter_name": self.default_operator.opter_name}
        if not (isinstance(given, dict) and isinstance(given.get("opter"), str)
                and isinstance(given.get("opter_name"), str)):
            raise InputError("needs opter and opter_name strings", field="operator")
        return {"opter": given["opter"], "opter_name": given["opter_name"]}

    def is_idempotent(self, request: Payload) -> bool:
        return str(request.json().get("infno")) in REPEATABLE_INFNOS

    def extract_keys(self, request: Payload) -> KeysOut:
        return call_keys(request)

    # --- the call ------------------------------------------------------------------------------

    def extract_reply_keys(self, reply: Payload) -> KeysOut:
        """The box codes a case was expanded into, known only once uploaded."""
        try:
            boxes = reply.json().get("expanded")
        except (ValueError, AttributeError):
            return {}
        if not isinstance(boxes, dict):
            return {}
        return {"trace_code": [code for codes in boxes.values() if isinstance(codes, list) for code in codes]}

    async def send(self, request: Payload, wire: Wire) -> Payload:
        upload = request.json()
        expanded = None
        if upload.get(EXPAND_FIELD) and self.expander is not None:
            expanded = await self.expander.expand(upload, wire)
        operator = Operator(**upload["operator"])
        sign_no = await self.sessions.sign_no(operator, wire)
        envelope = self.centre.envelope(
            infno=upload["infno"], input=upload["input"], operator=operator, sign_no=sign_no,
            insuplc_admdvs=upload.get("insuplc_admdvs"),
        )
        wire.step(step="upload", infno=upload["infno"], msgid=envelope["msgid"])
        reply = await self.centre.post(envelope, wire)
        log.info("trace codes uploaded", infno=upload["infno"], msgid=envelope["msgid"])
        answer: dict[str, Any] = {"infno": reply.infno, "msgid": reply.msgid, "output": reply.output}
        if expanded is not None:
            answer.update(trace_codes=expanded.codes, expanded=expanded.boxes)
        return Payload.from_json(answer)

    async def aclose(self) -> None:
        self.ledger.close()


def _his_call(request: Payload) -> dict[str, Any]:
    try:
        call = request.json()
    except ValueError as exc:
        raise InputError(f"body is not JSON: {exc}", field="body") from exc
    if not isinstance(call, dict):
        raise InputError("must be a JSON object", field="body")
    if call.get("kind") not in KINDS:
        raise InputError(f"must be one of {', '.join(KINDS)}", field="kind")
    if not isinstance(call.get("record"), dict):
        raise InputError(f"must be the {KINDS[call['kind']].node} fields as an object", field="record")
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
    # the first key is the message's correlation key: the retail document when there is one
    record = call.get("record")
    keys: dict[str, str | list[str]] = {}
    if isinstance(record, dict):
        keys.update({name: record[name] for name in ("rtal_docno", "setl_id", "rxno")
                     if isinstance(record.get(name), str)})
    codes = call.get("trace_codes")
    if isinstance(codes, list):
        keys["trace_code"] = [code for code in codes if isinstance(code, str) and code]
    if isinstance(call.get("kind"), str):
        keys["kind"] = call["kind"]
    return keys
