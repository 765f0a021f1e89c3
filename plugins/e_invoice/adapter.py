"""`EInvoiceAdapter`: HIS sends `{"method": "outpatient", "data": {...}}`, the platform gets a
signed envelope, HIS gets the bill's number, check code and picture links.

Delivery is async: HIS gets 202 and never waits on the platform. The adapter declares itself
idempotent, and that is true because of how it sends, not because the platform forgives:

* an issue is keyed by `busNo`. When its answer is lost (`OutcomeUnknownError`) the adapter
  looks the busNo up on the platform (`getBillByBusDate`, filtered by busNo) before anything
  else: found means issued (the bill is the reply), not found means it may post once more.
  A busNo whose outcome is still unknown is remembered, and the next attempt looks it up
  before posting. Should a repeat reach the platform anyway, it refuses a second bill for the
  busNo, and that duplicate answer is resolved to the existing bill by the same lookup;
* a red-flush whose answer was lost is checked with the bill's state (`isScarlet`), and an
  "already red-flushed" answer counts as done;
* queries are read-only.

So the engine may retry any of them, and the outbox drains an outage without duplicates.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import structlog
from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from engine.adapters.base import Adapter, AdapterConfig, AdapterServices, Wire
from engine.business_keys import KeysOut
from engine.config.model import SecretRef
from engine.config.secrets import resolve
from engine.errors import AdapterError, InputError, OutcomeUnknownError
from engine.message import Delivery, Payload
from plugins.e_invoice.envelope import Credentials
from plugins.e_invoice.methods import LOOKUP_METHOD, STATUS_METHOD, Method, method_named
from plugins.e_invoice.platform import (
    ALREADY_WRITTEN_OFF,
    DUPLICATE_BUS_NO,
    PlatformClient,
    PlatformRejected,
)
from plugins.e_invoice.validation import validated

log = structlog.get_logger(__name__)

RED_DATA_TYPES = frozenset({"2", "4"})
"""getBillByBusDate `dataType`s of red-flush bills (电子红票, 换开纸质红票) in one integration."""
REPLY_FIELDS = ("billBatchCode", "billNo", "random", "createTime", "ivcDateTime", "billBusDate", "pictureUrl",
                "pictureNetUrl", "billQRCode", "eScarletBillBatchCode", "eScarletBillNo", "eScarletRandom",
                "state", "isScarlet")


class EInvoiceConfig(AdapterConfig):
    base_url: str = Field(
        description="the platform's service base; `/api/medical/<method>` is appended",
        examples=["http://10.1.1.1:8080/medical-web"], pattern=r"^https?://",
    )
    appid: str = Field(description="应用账号 issued by the platform", min_length=1)
    app_key: SecretRef = Field(description="the appid's key, used as `key` in the sign",
                               examples=[{"$env": "EINVOICE_APP_KEY"}])
    version: str = Field("1.0", description="envelope version")
    timeout: float = Field(15.0, gt=0, description="seconds to wait for the platform's answer")
    verify: bool | str = Field(True, description="TLS verification: true, false or a CA bundle path")
    lookup_page_size: int = Field(100, ge=1, le=1000, description="bills per page when looking a busNo up")
    callback_url: str | None = Field(
        None, pattern=r"^https?://", description="HIS URL told (POST JSON) when an async invoice is finished",
        examples=["http://his.local/api/einvoice/notify"],
    )
    callback_token: SecretRef | None = Field(None, description="sent as `Authorization: Bearer` to callback_url")
    callback_attempts: int = Field(3, ge=1, le=10, description="tries per callback before giving up (HIS can poll)")
    callback_channel: str | None = Field(
        None, description="instead of callback_url: a channel (e.g. http_json to HIS) the finished invoice's JSON "
        "is handed to as a new message, so the callback is stored, retried and attributed like any delivery",
        examples=["his_invoice_notify"],
    )

    _base_dir: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _remember_base_dir(self, info: ValidationInfo) -> EInvoiceConfig:
        if self.callback_url is not None and self.callback_channel is not None:
            raise ValueError("give callback_url or callback_channel, not both")
        context = info.context if isinstance(info.context, dict) else {}
        base_dir = context.get("base_dir")
        self._base_dir = Path(base_dir) if base_dir else None
        return self


class EInvoiceAdapter(Adapter):
    name: ClassVar[str] = "e_invoice"
    Config: ClassVar[type[AdapterConfig]] = EInvoiceConfig
    delivery: ClassVar[Delivery] = Delivery.ASYNC
    idempotent: ClassVar[bool] = True
    business_keys: ClassVar[tuple[str, ...]] = ("bus_no", "invoice_no")
    description: ClassVar[str] = "fiscal medical e-invoice platform (财政电子票据, Bosssoft), signed base64 envelope"

    def __init__(self, config: AdapterConfig, services: AdapterServices) -> None:
        super().__init__(config, services)
        assert isinstance(config, EInvoiceConfig)
        self.settings = config
        credentials = Credentials(config.appid, resolve(config.app_key, config._base_dir), config.version)
        self.platform = PlatformClient(
            http=services.http_client(timeout=config.timeout, verify=config.verify),
            base_url=config.base_url, credentials=credentials,
        )
        self._unsettled: set[str] = set()
        """busNos whose issue answer was lost and not yet resolved by a lookup."""

    # --- request -----------------------------------------------------------------------------

    def transform(self, request: Payload) -> Payload:
        call = his_call(request)
        method = method_named(call.get("method"))
        business = validated(method, call.get("data"))
        sendable = {"method": method.name, "alias": method.alias, "data": business}
        # numbers HIS wrote with a point stay exact: they leave as decimal strings
        return Payload(json.dumps(sendable, ensure_ascii=False, default=str).encode(), "application/json")

    def extract_keys(self, request: Payload) -> Mapping[str, str]:
        try:
            data = request.json().get("data")
        except (ValueError, AttributeError):
            return {}
        if not isinstance(data, dict):
            return {}
        keys = {}
        if isinstance(data.get("busNo"), str) and data["busNo"]:
            keys["bus_no"] = data["busNo"]
        if isinstance(data.get("billNo"), str) and data["billNo"]:
            keys["invoice_no"] = f"{data.get('billBatchCode', '')}{data['billNo']}"
        return keys

    def extract_reply_keys(self, reply: Payload) -> KeysOut:
        """The number of the bill issued (or red-flushed): known only from the platform's answer."""
        try:
            answer = reply.json()
        except ValueError:
            return {}
        numbers = [f"{answer.get(code, '')}{answer[number]}"
                   for code, number in (("billBatchCode", "billNo"), ("eScarletBillBatchCode", "eScarletBillNo"))
                   if isinstance(answer, dict) and answer.get(number)]
        return {"invoice_no": numbers}

    # --- the call ----------------------------------------------------------------------------

    async def send(self, request: Payload, wire: Wire) -> Payload:
        call = request.json()
        method = method_named(call["alias"])
        business: dict[str, Any] = call["data"]
        if method.kind == "issue":
            answer, resolved_by = await self._issue(method, business, wire)
        elif method.kind == "write_off":
            answer, resolved_by = await self._write_off(method, business, wire)
        elif method.alias == "picture":
            answer, resolved_by = await self._picture(business, wire), "lookup"
        else:
            wire.step(step="query", method=method.name)
            answer, resolved_by = await self.platform.post(method.name, business, wire), "answered"
        return Payload.from_json({"method": method.alias, "busNo": business.get("busNo"),
                                  "resolved_by": resolved_by, "answer": answer})

    async def _issue(self, method: Method, business: dict[str, Any], wire: Wire) -> tuple[Any, str]:
        bus_no = str(business["busNo"])
        if bus_no in self._unsettled:
            found = await self._lookup(business, wire, why="earlier_answer_lost")
            if found is not None:
                self._unsettled.discard(bus_no)
                return found, "lookup"
        try:
            wire.step(step="issue", method=method.name, busNo=bus_no)
            outcome = await self._post_issue(method, business, wire)
        except OutcomeUnknownError as lost:
            self._unsettled.add(bus_no)
            found = await self._lookup_after(lost, business, wire)
            if found is not None:
                self._unsettled.discard(bus_no)
                return found, "lookup"
            wire.step(step="issue_again", method=method.name, busNo=bus_no)
            outcome = await self._post_issue(method, business, wire)
        self._unsettled.discard(bus_no)
        return outcome

    async def _post_issue(self, method: Method, business: dict[str, Any], wire: Wire) -> tuple[Any, str]:
        """Post an issue; a duplicate-busNo refusal resolves to the bill already issued."""
        try:
            return await self.platform.post(method.name, business, wire), "issued"
        except PlatformRejected as refused:
            if not DUPLICATE_BUS_NO.search(str(refused.detail.get("err_msg", ""))):
                raise
            found = await self._lookup(business, wire, why="duplicate_bus_no")
            if found is None:
                raise
            return found, "duplicate"

    async def _lookup_after(self, lost: OutcomeUnknownError, business: dict[str, Any], wire: Wire) -> Any:
        """The bill for the busNo after a lost answer; re-raises `lost` when the platform cannot
        say (the busNo stays unsettled, so the engine's next attempt looks it up first)."""
        try:
            return await self._lookup(business, wire, why="answer_lost")
        except AdapterError as exc:
            log.info("e-invoice lookup failed after a lost answer", error=str(exc))
            raise lost  # noqa: B904 - the lost call stays the error, chained to its own cause

    async def _lookup(self, business: dict[str, Any], wire: Wire, *, why: str) -> dict[str, Any] | None:
        """The bill issued for the business's busNo, searched among the bills of its business
        day (and its billing point, when known); red-flush bills listed for it are skipped."""
        bus_no, day = str(business["busNo"]), str(business["busDateTime"])[:8]
        query: dict[str, Any] = {"busBgnDate": f"{day}000000000", "busEndDate": f"{day}235959999"}
        if business.get("placeCode"):
            query["placeCode"] = business["placeCode"]
        page = 1
        while True:
            wire.step(step="lookup", method=LOOKUP_METHOD, busNo=bus_no, why=why, page=page)
            answer = await self.platform.post(
                LOOKUP_METHOD, {**query, "pageNo": page, "pageSize": self.settings.lookup_page_size}, wire
            )
            bills = answer.get("billList") if isinstance(answer, dict) else None
            bills = bills if isinstance(bills, list) else []
            for bill in bills:
                if (isinstance(bill, dict) and bill.get("busNo") == bus_no
                        and str(bill.get("dataType", "1")) not in RED_DATA_TYPES):
                    return bill
            if len(bills) < self.settings.lookup_page_size:
                return None
            page += 1

    async def _write_off(self, method: Method, business: dict[str, Any], wire: Wire) -> tuple[Any, str]:
        try:
            wire.step(step="write_off", method=method.name, billNo=business.get("billNo"))
            return await self.platform.post(method.name, business, wire), "written_off"
        except OutcomeUnknownError as lost:
            state = await self._state_or(lost, business, wire)
        except PlatformRejected as refused:
            if not ALREADY_WRITTEN_OFF.search(str(refused.detail.get("err_msg", ""))):
                raise
            state = await self._state_or(refused, business, wire)
        if str(state.get("isScarlet")) != "1":
            raise OutcomeUnknownError(
                "the red-flush's answer was lost and the bill is not red-flushed yet",
                detail={"platform": "e_invoice", "method": method.name, "condition": "timeout"},
            )
        return state, "status"

    async def _state_or(self, original: AdapterError, business: dict[str, Any], wire: Wire) -> dict[str, Any]:
        wire.step(step="status", method=STATUS_METHOD, billNo=business.get("billNo"))
        try:
            state = await self.platform.post(STATUS_METHOD, {"billBatchCode": business["billBatchCode"],
                                                             "billNo": business["billNo"]}, wire)
        except AdapterError as exc:
            log.info("e-invoice status query failed", error=str(exc))
            raise original  # noqa: B904 - the first failure stays the error, with its own cause
        return state if isinstance(state, dict) else {}

    async def _picture(self, business: dict[str, Any], wire: Wire) -> dict[str, Any]:
        found = await self._lookup(business, wire, why="picture")
        if found is None:
            raise PlatformRejected(
                f"the platform has no bill for busNo {business['busNo']}",
                detail={"platform": "e_invoice", "method": LOOKUP_METHOD, "condition": "no_such_bill"},
            )
        return found

    def transform_response(self, response: Payload) -> Payload:
        """HIS gets the bill's identifiers flat, plus how they were obtained."""
        reply = response.json()
        answer = reply.get("answer")
        flat = {name: answer[name] for name in REPLY_FIELDS if isinstance(answer, dict) and name in answer}
        if not flat:
            flat = {"answer": answer}
        return Payload.from_json({"method": reply["method"], "busNo": reply.get("busNo"),
                                  "resolved_by": reply["resolved_by"], **flat})


def his_call(request: Payload) -> dict[str, Any]:
    """HIS's JSON with every number read as an exact Decimal."""
    try:
        call = json.loads(request.body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not JSON: {exc}", field="body") from exc
    if not isinstance(call, dict):
        raise InputError('must be a JSON object {"method": ..., "data": {...}}', field="body")
    return call


__all__ = ["EInvoiceAdapter", "EInvoiceConfig", "his_call"]
