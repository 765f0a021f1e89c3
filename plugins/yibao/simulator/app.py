"""The simulated centre as an ASGI app: callService, file upload/download, OAuth2 token,
and a small control API (`/_sim/...`) for fault injection from another process."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import simulation
from plugins.yibao.centre import ZHEJIANG_SIGN_IN_PATH, ZHEJIANG_SIGN_OUT_PATH, EndpointPaths
from plugins.yibao.simulator.auth import GatewayAuth, GatewayRefusal
from plugins.yibao.simulator.handlers import HANDLERS
from plugins.yibao.simulator.state import CentreRefusal, CentreState

log = structlog.get_logger(__name__)

NODE_IP = "10.70.130.148"
SIGN_IN_INVALID_TEXT = "签到信息已失效，请重新签到"

FaultKind = Literal[
    "slow", "drop", "drop_before", "error", "sign_in_invalid", "http_status", "malformed", "string_infcode"
]


@dataclass
class Fault(simulation.Fault):
    """One injected fault for the next `count` calls of `infno` ("*" = any).

    slow: answer after `delay` seconds (the call is processed first); drop: process the
    call, then close the connection without answering (a settlement applied, its answer
    lost); drop_before: close without processing; error: infcode -1 with `err_msg`;
    sign_in_invalid: forget every sign-in and refuse the call as the real centre does;
    http_status: answer `status` with a gateway error body; malformed: a non-JSON answer;
    string_infcode: a normal answer whose infcode is the string "0".
    """

    kind: FaultKind
    infno: str = simulation.ANY
    err_msg: str = "系统异常，请稍后再试"

    @property
    def target(self) -> str:
        return self.infno


@dataclass
class CentreSimulator(simulation.Simulator[Fault]):
    admvs: str = "440300"
    auth: GatewayAuth = field(default_factory=GatewayAuth)
    paths: EndpointPaths = field(default_factory=EndpointPaths)
    clock: Callable[[], datetime] = datetime.now
    first_serial: int = 1  # of setl_id, mdtrt_id, sign_no: past an earlier run's, so ids stay unique
    state: CentreState = field(init=False)

    def __post_init__(self) -> None:
        self.state = CentreState(admvs=self.admvs, first_serial=self.first_serial)
        super().__init__(Fault, [
            *(Route(path, self._call, methods=["POST"]) for path in dict.fromkeys((
                self.paths.call, self.paths.upload, self.paths.download, self.paths.sign_in, self.paths.sign_out,
                ZHEJIANG_SIGN_IN_PATH, ZHEJIANG_SIGN_OUT_PATH))),
            Route("/auth/oauth/token", self._token, methods=["POST"]),
            Route("/_sim/revoke", self._revoke, methods=["POST"]),
            Route("/_sim/settlements", self._settlements, methods=["GET"]),
        ])

    # --- the centre ----------------------------------------------------------------------------

    async def _call(self, request: Request) -> Response:
        body = await request.body()
        try:
            self.auth.check(request.headers, body)
            envelope = self.auth.open_input(json.loads(body))
        except GatewayRefusal as refused:
            return JSONResponse({"code": refused.status, "message": refused.message}, status_code=refused.status)
        except json.JSONDecodeError:
            return JSONResponse({"code": 400, "message": "请求报文不是JSON"}, status_code=400)
        infno = str(envelope.get("infno"))
        fault = self.faults.take(infno)
        if (dropped := await self.misbehave_before(fault, request)) is not None:
            return dropped
        if fault is not None and fault.kind == "http_status":
            return JSONResponse({"code": fault.status, "message": "网关异常"}, status_code=fault.status)
        if fault is not None and fault.kind == "malformed":
            return Response(b"<html><body>502 Bad Gateway</body></html>", media_type="text/html")
        try:
            if fault is not None and fault.kind == "error":
                raise CentreRefusal(fault.err_msg)
            if fault is not None and fault.kind == "sign_in_invalid":
                self.state.invalidate_sign_ins()
                raise CentreRefusal(SIGN_IN_INVALID_TEXT)
            output = self._process(infno, envelope)
        except CentreRefusal as refused:
            return self._answer(self._failure(str(refused)))
        self.state.calls.append(infno)
        self.state.call_paths.append((request.url.path, infno))
        if (dropped := await self.misbehave_after(fault, request)) is not None:
            return dropped
        if infno == "9102":
            return Response(output, media_type="application/octet-stream")
        answer = self._success(output)
        if fault is not None and fault.kind == "string_infcode":
            answer["infcode"] = "0"
        return self._answer(answer)

    def _process(self, infno: str, envelope: dict[str, Any]) -> Any:
        msgid = str(envelope.get("msgid") or "")
        if len(msgid) != 30 or not msgid.startswith(str(envelope.get("fixmedins_code") or "?")):
            raise CentreRefusal("报文ID格式错误：应为定点医药机构编号+时间+顺序号共30位")
        if msgid in self.state.seen_msgids:
            raise CentreRefusal(f"报文ID重复：{msgid}")
        if infno != "9001":
            sign_no = str(envelope.get("sign_no") or "")
            if not sign_no:
                raise CentreRefusal("未签到，请先签到")
            if sign_no not in self.state.sign_ins:
                raise CentreRefusal(SIGN_IN_INVALID_TEXT)
        if infno == "9102":
            node = (envelope.get("input") or {}).get("fsDownloadIn") or {}
            stored = self.state.files.get(str(node.get("file_qury_no")))
            if stored is None:
                raise CentreRefusal("文件不存在或已过期")
            self.state.seen_msgids.add(msgid)
            return stored[1]
        handler = HANDLERS.get(infno)
        if handler is None:
            raise CentreRefusal(f"交易编号{infno}不存在")
        output = handler(self.state, envelope, self.clock())
        self.state.seen_msgids.add(msgid)
        return output

    def _success(self, output: Any) -> dict[str, Any]:
        now = self.clock()
        stamp = f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}"
        return {"infcode": 0, "inf_refmsgid": self.state.ref_msgid(now), "refmsg_time": stamp,
                "respond_time": stamp, "err_msg": "success", "warn_msg": None, "cainfo": None,
                "signtype": None, "output": output}

    def _failure(self, err_msg: str) -> dict[str, Any]:
        now = self.clock()
        stamp = f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}"
        return {"infcode": -1, "inf_refmsgid": "", "refmsg_time": stamp, "respond_time": stamp,
                "err_msg": f"{err_msg}({secrets.token_hex(16)}@{NODE_IP})", "warn_msg": None,
                "cainfo": None, "signtype": None, "output": None}

    def _answer(self, answer: dict[str, Any]) -> Response:
        body = json.dumps(self.auth.seal_output(answer), ensure_ascii=False).encode()
        return Response(body, media_type="application/json;charset=utf-8")

    # --- OAuth2 and control ------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        try:
            token = self.auth.issue_token(request.headers, form)
        except GatewayRefusal as refused:
            return JSONResponse({"error": refused.message}, status_code=refused.status)
        return JSONResponse({"access_token": token, "token_type": "bearer", "expires_in": 7200})

    async def _revoke(self, request: Request) -> Response:
        setl_id = str((await request.json())["setl_id"])
        if setl_id not in self.state.settlements:
            return JSONResponse({"error": f"no settlement {setl_id}"}, status_code=404)
        self.state.revoke(setl_id)
        return JSONResponse({"revoked": setl_id})

    async def _settlements(self, request: Request) -> Response:
        return JSONResponse([
            {"setl_id": s.setl_id, "msgid": s.msgid, "infno": s.infno, "status": s.status,
             "medfee_sumamt": str(s.medfee_sumamt), "fund_pay_sumamt": str(s.fund_pay_sumamt),
             "acct_pay": str(s.acct_pay), "psn_cash_pay": str(s.psn_cash_pay)}
            for s in self.state.settlements.values()
        ])

