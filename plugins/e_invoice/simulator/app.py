"""The simulated fiscal platform as an ASGI app: `/<service>/api/medical/<method>` plus a small
control API (`/_sim/faults`, `/_sim/bills`, `/_sim/stats`) for fault injection from another process."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import simulation
from plugins.e_invoice.envelope import SUCCESS, Credentials, answer_envelope, open_request
from plugins.e_invoice.simulator.state import (
    BAD_SIGN,
    UNKNOWN_METHOD,
    PlatformRefusal,
    PlatformState,
)

log = structlog.get_logger(__name__)

SERVICE = "/medical-web"
ISSUE_METHODS = frozenset({"invoiceEBillOutpatient", "invEBillHospitalized", "invEBillRegistration",
                           "invEBillCheckUp", "invoicePayMentVoucher", "writeOffPayMentVoucher"})

FaultKind = Literal["slow", "bad_signature", "drop", "drop_before", "error", "http_status"]


@dataclass
class Fault(simulation.Fault):
    """One injected fault for the next `count` calls of `method` ("*" = any).

    slow: process, then answer after `delay` seconds; bad_signature: a normal answer signed
    with the wrong key; drop: process the call, then close the connection unanswered (an
    invoice issued, its answer lost); drop_before: close without processing; error: answer
    `result`/`text` without processing; http_status: answer HTTP `status`.
    """

    kind: FaultKind
    method: str = simulation.ANY
    result: str = "E9999"
    text: str = "系统繁忙，请稍后再试"

    @property
    def target(self) -> str:
        return self.method


@dataclass
class PlatformSimulator(simulation.Simulator[Fault]):
    appid: str = "TESTAPPID0001"
    key: str = "testkey123"
    clock: Callable[[], datetime] = datetime.now
    state: PlatformState = field(default_factory=PlatformState)

    def __post_init__(self) -> None:
        self.credentials = Credentials(self.appid, self.key)
        super().__init__(Fault, [
            Route(SERVICE + "/api/medical/{method}", self._call, methods=["POST"]),
            Route("/_sim/bills", self._bills, methods=["GET"]),
            Route("/_sim/stats", self._stats, methods=["GET"]),
        ])

    async def _call(self, request: Request) -> Response:
        method = request.path_params["method"]
        body = await request.body()
        fault = self.faults.take(method)
        if (dropped := await self.misbehave_before(fault, request)) is not None:
            return dropped
        if fault is not None and fault.kind == "http_status":
            return Response(b"<html>gateway error</html>", status_code=fault.status, media_type="text/html")
        try:
            business = open_request(self.credentials, json.loads(body))
        except (ValueError, TypeError, AttributeError):
            return self._answer(*BAD_SIGN)
        if fault is not None and fault.kind == "error":
            return self._answer(fault.result, fault.text)
        self.state.calls.append(method)
        try:
            result = self._process(method, business)
        except PlatformRefusal as refused:
            return self._answer(refused.code, refused.text)
        if (dropped := await self.misbehave_after(fault, request)) is not None:
            return dropped
        return self._answer(SUCCESS, result, forged=fault is not None and fault.kind == "bad_signature")

    def _process(self, method: str, business: Any) -> dict[str, Any]:
        if not isinstance(business, dict):
            raise PlatformRefusal("E2002", "业务参数必须是JSON对象")
        now = self.clock()
        if method in ISSUE_METHODS:
            return self.state.issue(method, business, now)
        if method == "writeOffEBill":
            return self.state.write_off(business, now)
        if method == "getEBillStatesByBillInfo":
            return self.state.state_of(business)
        if method == "getBillByBusDate":
            return self.state.by_bus_date(business)
        raise PlatformRefusal(UNKNOWN_METHOD, f"服务{method}不存在")

    def _answer(self, result: str, message: Any, *, forged: bool = False) -> Response:
        signer = Credentials(self.appid, "not-" + self.key) if forged else self.credentials
        body = json.dumps(answer_envelope(signer, result, message), ensure_ascii=False).encode()
        return Response(body, media_type="application/json;charset=utf-8")

    async def _bills(self, request: Request) -> Response:
        return JSONResponse({"issued_count": self.state.issued_count,
                             "bills": [b.issued() | {"scarlet": b.scarlet_no} for b in self.state.bills.values()]})


    async def _stats(self, request: Request) -> Response:
        return JSONResponse({"issued_count": self.state.issued_count, "bills": len(self.state.bills),
                             "calls": len(self.state.calls)})

