"""`YibaoAdapter`: HIS sends `{"infno", "input", "insuplc_admdvs"}`, the centre gets a signed envelope.

transform() checks the input against the catalogue (a missing psn_no is HIS's fault, and
nothing is sent) and builds the full envelope with its msgid. send() signs in when needed
(9001 once per operator per day), posts, re-signs in once when the centre calls the
sign-in invalid, and for money-moving calls whose outcome is unknown reverses them with
2601 and tells HIS the settlement did not happen. aclose() signs out (9002).

Retry safety is per transaction (`is_idempotent`): queries may be repeated by the engine,
each repeat under a fresh msgid; settlements and other money-moving calls never are.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, model_validator

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.errors import InputError, OutcomeUnknownError
from engine.message import Delivery, Payload
from plugins.yibao.centre import CentreClient, CentreReply, EndpointPaths
from plugins.yibao.envelope import Deployment, Operator
from plugins.yibao.msgid import MsgIdGenerator, tool_generator
from plugins.yibao.response import CentreRejected, is_sign_in_invalid
from plugins.yibao.session import SignInSessions
from plugins.yibao.settlement import reverse_lost_call
from plugins.yibao.signing import NoSigning, SigningConfig, build_signer
from plugins.yibao.transactions import Transaction, transaction, validate_input

log = structlog.get_logger(__name__)

ENGINE_MANAGED = frozenset({"9001", "9002"})
HEADER_INFNO = "x-yibao-infno"
HEADER_MSGID = "x-yibao-msgid"
SENT_MSGIDS_KEPT = 10_000


class OperatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    opter: str = Field(description="operator or terminal id (opter, also 9001 opter_no)", max_length=30)
    opter_name: str = Field(description="operator name", max_length=50)
    opter_type: str = Field("1", pattern=r"^[123]$", description="1 经办人, 2 自助终端, 3 移动终端")


class YibaoConfig(AdapterConfig):
    base_url: str = Field(description="centre or front-machine base, e.g. http://10.1.1.1:8080 (paths are appended)")
    paths: dict[str, str] = Field(
        default_factory=dict,
        description="override endpoint paths: call, upload, download, sign_in, sign_out (defaults "
        "/fsi/api/rsfComIfsService/callService, /fsi/api/fileupload/upload, /fsi/api/fileupload/download, and "
        "callService for sign-in/out; Zhejiang: sign_in /fsi/api/signInSignOutService/signIn, "
        "sign_out /fsi/api/signInSignOutService/signOut)",
    )
    fixmedins_code: str = Field(pattern=r"^[A-Za-z0-9]{12}$", description="定点医药机构编号, e.g. H44030400123")
    fixmedins_name: str = Field(max_length=200)
    mdtrtarea_admvs: str = Field(pattern=r"^\d{6}$", description="就医地医保区划, e.g. 440300")
    recer_sys_code: str = Field("YBXT", max_length=10, description="YBXT, MBS_LOCAL, FSI_LOCAL, sys01, ...")
    infver: str = Field("V1.0", max_length=6)
    dev_no: str = ""
    dev_safe_info: str = ""
    signtype: str = Field("", max_length=10)
    operator: OperatorConfig = Field(description="default operator when HIS names none")
    terminal_mac: str = Field("00-00-00-00-00-00", description="mac sent in 9001 signIn")
    terminal_ip: str = Field("127.0.0.1", description="ip sent in 9001 signIn")
    signing: SigningConfig = Field(
        default_factory=NoSigning, description="gateway scheme: none, tif, zhejiang_sm3, jilin"
    )
    timeout: float = Field(30.0, gt=0, description="seconds to wait for the centre's answer")
    verify: bool | str = Field(True, description="TLS verification: true, false or a CA bundle path")
    msgid_node: int = Field(
        0, ge=0, description="this engine node's number, 0..msgid_nodes-1 (unique msgid across nodes)"
    )
    msgid_nodes: int = Field(1, ge=1, le=9000, description="how many engine nodes share this fixmedins_code")
    reversal_attempts: int = Field(3, ge=1, description="2601 tries after a settlement's answer was lost")
    sign_out_on_shutdown: bool = True

    _base_dir: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> YibaoConfig:
        if self.msgid_node >= self.msgid_nodes:
            raise ValueError(f"msgid_node must be below msgid_nodes ({self.msgid_nodes})")
        known = {endpoint.name for endpoint in dataclasses.fields(EndpointPaths)}
        unknown = set(self.paths) - known
        if unknown:
            raise ValueError(f"unknown paths: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        context = info.context if isinstance(info.context, dict) else {}
        base_dir = context.get("base_dir")
        self._base_dir = Path(base_dir) if base_dir else None
        return self


class YibaoAdapter(Adapter):
    name: ClassVar[str] = "yibao"
    Config: ClassVar[type[AdapterConfig]] = YibaoConfig
    delivery: ClassVar[Delivery] = Delivery.SYNC
    idempotent: ClassVar[bool] = False
    business_keys: ClassVar[tuple[str, ...]] = ("infno", "mdtrt_id", "setl_id", "psn_no", "chrg_bchno")
    description: ClassVar[str] = "national medical-insurance platform (国家医保信息平台), signed JSON envelope"

    def __init__(
        self, config: AdapterConfig, services: AdapterServices, *, msgid_role: Literal["daemon", "tool"] = "daemon"
    ) -> None:
        super().__init__(config, services)
        assert isinstance(config, YibaoConfig)
        self.settings = config
        self.deployment = Deployment(
            fixmedins_code=config.fixmedins_code,
            fixmedins_name=config.fixmedins_name,
            mdtrtarea_admvs=config.mdtrtarea_admvs,
            recer_sys_code=config.recer_sys_code,
            infver=config.infver,
            dev_no=config.dev_no,
            dev_safe_info=config.dev_safe_info,
            signtype=config.signtype,
        )
        self.default_operator = Operator(**config.operator.model_dump())
        self.centre = CentreClient(
            http=services.http_client(timeout=config.timeout, verify=config.verify),
            base_url=config.base_url,
            deployment=self.deployment,
            signer=build_signer(
                config.signing, base_url=config.base_url, fixmedins_code=config.fixmedins_code,
                base_dir=config._base_dir,
            ),
            msgids=(
                tool_generator(config.fixmedins_code) if msgid_role == "tool"
                else MsgIdGenerator(config.fixmedins_code, node=config.msgid_node, nodes=config.msgid_nodes)
            ),
            paths=EndpointPaths(**config.paths),
        )
        self.sessions = SignInSessions(self.centre, mac=config.terminal_mac, ip=config.terminal_ip)
        self._sent_msgids: OrderedDict[str, None] = OrderedDict()
        self._closed = False

    # --- request -----------------------------------------------------------------------------

    def is_idempotent(self, request: Payload) -> bool:
        """Queries may be repeated; money-moving calls never (see the catalogue's retry_safe)."""
        return transaction(str(request.json()["infno"])).retry_safe

    def _remember_sent(self, msgid: str) -> None:
        self._sent_msgids[msgid] = None
        if len(self._sent_msgids) > SENT_MSGIDS_KEPT:
            self._sent_msgids.popitem(last=False)

    def transform(self, request: Payload) -> Payload:
        call = _his_request(request)
        infno = _infno(call)
        if infno in ENGINE_MANAGED:
            raise InputError("sign-in and sign-out are managed by the engine; send the business call", field="infno")
        validate_input(infno, call["input"])
        insuplc = call.get("insuplc_admdvs")
        if insuplc not in (None, "") and not (isinstance(insuplc, str) and len(insuplc) == 6 and insuplc.isdigit()):
            raise InputError("must be a 6-digit area code", field="insuplc_admdvs")
        envelope = self.centre.envelope(
            infno=infno, input=call["input"], operator=self._operator(call), insuplc_admdvs=insuplc or None
        )
        return Payload.from_json(envelope)

    def extract_keys(self, request: Payload) -> Mapping[str, str]:
        try:
            call = request.json()
        except ValueError:
            return {}
        if not isinstance(call, dict):
            return {}
        keys: dict[str, str] = {}
        if isinstance(call.get("infno"), (str, int)):
            keys["infno"] = str(call["infno"])
        _collect_keys(call.get("input"), keys)
        return keys

    def extract_reply_keys(self, reply: Payload) -> Mapping[str, str]:
        """Keys only the centre's answer knows: the `setl_id` a 2207/2304 settlement gets, the
        `mdtrt_id` a 2201 registration gets (from the first record of each output node)."""
        if reply.content_type != "application/json":
            return {}
        answer = reply.json()
        keys: dict[str, str] = {}
        if isinstance(answer, dict):
            _collect_keys(answer.get("output"), keys)
        return keys

    # --- the call ----------------------------------------------------------------------------

    async def send(self, request: Payload, wire: Wire) -> Payload:
        envelope: dict[str, Any] = request.json()
        spec = transaction(str(envelope["infno"]))
        operator = Operator(envelope["opter"], envelope["opter_name"], envelope["opter_type"])
        sign_no = await self.sessions.sign_no(operator, wire) if spec.sign_in else ""
        # the engine retries only retry-safe calls, and a repeat needs its own msgid
        repeat = envelope["msgid"] in self._sent_msgids
        envelope = _stamped(envelope, sign_no=sign_no, msgid=self.centre.msgids.next() if repeat else None)
        self._remember_sent(envelope["msgid"])
        wire.step(step="call", infno=spec.infno, msgid=envelope["msgid"])
        try:
            reply = await self._post_or_reverse(spec, envelope, operator, wire)
        except CentreRejected as refused:
            if not spec.sign_in or not is_sign_in_invalid(refused):
                raise
            sign_no = await self.sessions.renew(operator, sign_no, wire)
            envelope = _stamped(envelope, sign_no=sign_no, msgid=self.centre.msgids.next())
            wire.step(step="call_after_sign_in", infno=spec.infno, msgid=envelope["msgid"])
            reply = await self._post_or_reverse(spec, envelope, operator, wire)
        headers = {HEADER_INFNO: spec.infno, HEADER_MSGID: reply.msgid}
        if reply.file is not None:
            return Payload(reply.file, "application/zip", headers)
        assert reply.answer is not None
        return Payload.from_json(reply.answer.envelope, headers=headers)

    async def _post_or_reverse(
        self, spec: Transaction, envelope: dict[str, Any], operator: Operator, wire: Wire
    ) -> CentreReply:
        try:
            return await self.centre.post(envelope, wire)
        except OutcomeUnknownError as lost:
            if spec.reversal is None:
                raise
            await reverse_lost_call(
                self.centre, envelope, lost, wire,
                operator=operator,
                sign_no=lambda: self.sessions.sign_no(operator, wire),
                renew_sign_no=lambda failed: self.sessions.renew(operator, failed, wire),
                attempts=self.settings.reversal_attempts,
            )

    def transform_response(self, response: Payload) -> Payload:
        """HIS gets the centre's output with the call's identifiers; files pass through as bytes."""
        if response.content_type != "application/json":
            return response
        envelope = response.json()
        return Payload.from_json(
            {
                "infno": response.headers.get(HEADER_INFNO),
                "msgid": response.headers.get(HEADER_MSGID),
                "infcode": 0,
                "inf_refmsgid": envelope.get("inf_refmsgid"),
                "warn_msg": envelope.get("warn_msg"),
                "output": envelope.get("output"),
            }
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.settings.sign_out_on_shutdown:
            await self.sessions.sign_out_all(Wire())

    def _operator(self, call: dict[str, Any]) -> Operator:
        if not call.get("opter"):
            return self.default_operator
        if not call.get("opter_name"):
            raise InputError("required when opter is given", field="opter_name")
        return Operator(str(call["opter"]), str(call["opter_name"]), str(call.get("opter_type") or "1"))


def _his_request(request: Payload) -> dict[str, Any]:
    try:
        call = request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}", field="body") from exc
    if not isinstance(call, dict):
        raise InputError('must be a JSON object {"infno": ..., "input": {...}}', field="body")
    if "input" not in call:
        raise InputError("required: the transaction's business fields", field="input")
    return call


def _infno(call: dict[str, Any]) -> str:
    infno = call.get("infno")
    if isinstance(infno, int) and not isinstance(infno, bool):
        infno = str(infno)
    if not isinstance(infno, str) or not infno:
        raise InputError("required: the transaction code, e.g. \"2207\"", field="infno")
    return infno


def _stamped(envelope: dict[str, Any], *, sign_no: str, msgid: str | None = None) -> dict[str, Any]:
    stamped = {**envelope, "sign_no": sign_no, "inf_time": f"{datetime.now():%Y-%m-%d %H:%M:%S}"}
    if msgid is not None:
        stamped["msgid"] = msgid
    return stamped


_KEY_FIELDS = ("mdtrt_id", "setl_id", "psn_no", "chrg_bchno")


def _collect_keys(value: Any, keys: dict[str, str]) -> None:
    """Business keys from the first record of each node. certno (an ID number) is never indexed."""
    if isinstance(value, list):
        value = value[0] if value else None
    if not isinstance(value, dict):
        return
    for name in _KEY_FIELDS:
        found = value.get(name)
        if name not in keys and isinstance(found, (str, int)) and not isinstance(found, bool) and found != "":
            keys[name] = str(found)
    for nested in value.values():
        if isinstance(nested, (dict, list)):
            _collect_keys(nested, keys)


__all__ = ["OperatorConfig", "YibaoAdapter", "YibaoConfig"]
