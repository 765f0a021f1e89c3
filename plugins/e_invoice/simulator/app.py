"""The simulated fiscal platform as an ASGI app: `/<service>/api/medical/<method>` plus a small
control API (`/_sim/faults`, `/_sim/bills`, `/_sim/stats`) for fault injection from another process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

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
class Fault:
    """One injected fault for the next `count` calls of `method` ("*" = any).

    slow: process, then answer after `delay` seconds; bad_signature: a normal answer signed
    with the wrong key; drop: process the call, then close the connection unanswered (an
    invoice issued, its answer lost); drop_before: close without processing; error: answer
    `result`/`text` without processing; http_status: answer HTTP `status`.
    """

    kind: FaultKind
    method: str = "*"
    count: int = 1
    delay: float = 0.0
    result: str = "E9999"
    text: str = "系统繁忙，请稍后再试"
    status: int = 502


@dataclass
class PlatformSimulator:
    appid: str = "TESTAPPID0001"
    key: str = "testkey123"
    clock: Callable[[], datetime] = datetime.now
    state: PlatformState = field(default_factory=PlatformState)
    faults: list[Fault] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.credentials = Credentials(self.appid, self.key)
        self._stopping = asyncio.Event()
        self._app = Starlette(routes=[
            Route(SERVICE + "/api/medical/{method}", self._call, methods=["POST"]),
            Route("/_sim/faults", self._add_fault, methods=["POST"]),
            Route("/_sim/bills", self._bills, methods=["GET"]),
            Route("/_sim/stats", self._stats, methods=["GET"]),
        ])

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def stop(self) -> None:
        """Release answers held back by `slow` and unabortable `drop` faults (shutdown)."""
        self._stopping.set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope["e_invoice.abort"] = lambda: _abort_connection(send)
        await self._app(scope, receive, send)

    async def _call(self, request: Request) -> Response:
        method = request.path_params["method"]
        body = await request.body()
        fault = self._take_fault(method)
        if fault is not None and fault.kind == "drop_before":
            return await self._drop(request)
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
        if fault is not None and fault.kind == "drop":
            return await self._drop(request)
        if fault is not None and fault.kind == "slow":
            try:
                await asyncio.wait_for(self._stopping.wait(), fault.delay)
            except TimeoutError:
                pass
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

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.count > 0 and fault.method in ("*", method):
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault
        return None

    async def _drop(self, request: Request) -> Response:
        if not request.scope["e_invoice.abort"]():
            await self._stopping.wait()
        for _ in range(3):
            await asyncio.sleep(0)  # let the server notice the lost connection
        return Response(b"", status_code=500)

    async def _add_fault(self, request: Request) -> Response:
        self.inject(Fault(**await request.json()))
        return JSONResponse({"faults": [asdict(f) for f in self.faults]})

    async def _bills(self, request: Request) -> Response:
        return JSONResponse({"issued_count": self.state.issued_count,
                             "bills": [b.issued() | {"scarlet": b.scarlet_no} for b in self.state.bills.values()]})


    async def _stats(self, request: Request) -> Response:
        return JSONResponse({"issued_count": self.state.issued_count, "bills": len(self.state.bills),
                             "calls": len(self.state.calls)})


def _abort_connection(send: Send) -> bool:
    """Close the client's connection unanswered (uvicorn's response cycle holds the transport)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return False
    transport.abort()
    return True
