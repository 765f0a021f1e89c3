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
from engine.errors import ConfigError
from engine.message import Delivery, Payload
from plugins.drug_trace.codes import DEFAULT_PATTERN, PRODUCT_PREFIX_DIGITS, CodeRules, ProductMap
from plugins.drug_trace.expansion import EXPAND_FIELD, CaseExpander
from plugins.drug_trace.ledger import SaleLedger
from plugins.drug_trace.settings import BaseDirConfig, TopAccess
from plugins.drug_trace.uploads import BATCH_INFNOS, UploadBuilder, call_keys
from plugins.yibao.api import (
    CentreClient,
    CentreRejected,
    CentreReply,
    Deployment,
    MsgIdGenerator,
    Operator,
    SigningConfig,
    SignInSessions,
    build_signer,
    catalogue,
    is_sign_in_invalid,
)

log = structlog.get_logger(__name__)


# A stock count states the whole inventory of an item: repeating it changes nothing.
REPEATABLE_INFNOS = frozenset({"3501", "3501A"})


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
    batch_variants: bool = Field(
        False, description="accept several records per message (`items`) and upload them as one 3505A "
        "(selinfoDetail) or 3501A (invinfoDetail): province-specific, only where the centre offers them",
    )
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
        uncatalogued = sorted(BATCH_INFNOS - set(catalogue())) if config.batch_variants else []
        if uncatalogued:
            raise ConfigError([f"drug_trace batch_variants: the yibao catalogue has no {', '.join(uncatalogued)} "
                               "(plugins.yibao.api.catalogue); the batch variants cannot be sent"])
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
        self.uploads = UploadBuilder(self.rules, self.ledger, self.default_operator,
                                     batch_variants=config.batch_variants, expand_large=self.expander is not None)

    # --- request -----------------------------------------------------------------------------

    def transform(self, request: Payload) -> Payload:
        return self.uploads.build(request)

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
        try:
            reply = await self._post(upload, operator, sign_no, wire, step="upload")
        except CentreRejected as refused:
            # a call refused for its sign-in recorded nothing: signing in again and sending it
            # once more (fresh msgid) cannot duplicate it
            if not is_sign_in_invalid(refused):
                raise
            sign_no = await self.sessions.renew(operator, sign_no, wire)
            reply = await self._post(upload, operator, sign_no, wire, step="upload_after_sign_in")
        answer: dict[str, Any] = {"infno": reply.infno, "msgid": reply.msgid, "output": reply.output}
        if expanded is not None:
            answer.update(trace_codes=expanded.codes, expanded=expanded.boxes)
        return Payload.from_json(answer)

    async def _post(self, upload: dict[str, Any], operator: Operator, sign_no: str, wire: Wire, *,
                    step: str) -> CentreReply:
        envelope = self.centre.envelope(
            infno=upload["infno"], input=upload["input"], operator=operator, sign_no=sign_no,
            insuplc_admdvs=upload.get("insuplc_admdvs"),
        )
        wire.step(step=step, infno=upload["infno"], msgid=envelope["msgid"])
        reply = await self.centre.post(envelope, wire)
        log.info("trace codes uploaded", infno=upload["infno"], msgid=envelope["msgid"])
        return reply

    async def aclose(self) -> None:
        self.ledger.close()
