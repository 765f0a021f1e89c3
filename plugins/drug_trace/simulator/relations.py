"""The 码上放心 relation query on a simulated TOP gateway (a real HTTP server).

It checks what the real gateway checks first (app key, md5/hmac sign, timestamp within
±10 minutes) and answers `...yljg.query.relation` from packages registered with
`add_package` (or `POST /_sim/packages`): a large-package code, its children and theirs. A code nobody
registered answers with status `E` (码不存在). `unavailable` answers 503 that many times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.serving import LocalServer
from plugins.drug_trace.top import CHINA_TIME, RELATION_METHOD, TIMESTAMP_FORMAT, response_root, top_sign

GATEWAY_PATH = "/router/rest"
PACKAGES_PATH = "/_sim/packages"
ALLOWED_SKEW = timedelta(minutes=10)


@dataclass
class RelationSimulator:
    app_key: str
    secret: str
    clock: Callable[[], datetime] = lambda: datetime.now(CHINA_TIME)
    parents: dict[str, str] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    calls: int = 0
    unavailable: int = 0

    def add_package(self, code: str, children: dict[str, list[str]] | list[str]) -> None:
        """Register `code` over its children: a list of small codes, or {middle: [small...]}."""
        middles = children if isinstance(children, dict) else {child: [] for child in children}
        self.children[code] = list(middles)
        for middle, smalls in middles.items():
            self.parents[middle] = code
            self.children[middle] = list(smalls)
            for small in smalls:
                self.parents[small] = middle
                self.children[small] = []

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route(GATEWAY_PATH, self._gateway, methods=["GET", "POST"]),
            Route(PACKAGES_PATH, self._add_packages, methods=["POST"]),
        ])

    async def _add_packages(self, request: Request) -> Response:
        """`{"<case code>": ["<small>", ...] | {"<middle>": ["<small>", ...]}, ...}`"""
        try:
            packages = await request.json()
        except ValueError:
            packages = None
        if not isinstance(packages, dict) or not all(isinstance(c, (list, dict)) for c in packages.values()):
            return JSONResponse({"error": "expected {code: [children] | {middle: [children]}}"}, status_code=400)
        for code, children in packages.items():
            self.add_package(str(code), children)
        return JSONResponse({"packages": len(packages)})

    async def _gateway(self, request: Request) -> Response:
        self.calls += 1
        if self.unavailable > 0:
            self.unavailable -= 1
            return Response("gateway busy", status_code=503)
        # parsed here: starlette's form parser needs python-multipart, which the engine does not use
        params = dict(request.query_params)
        params.update(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))
        refusal = self._refusal(params)
        if refusal is not None:
            return JSONResponse({"error_response": {**refusal, "request_id": "sim"}})
        if params.get("method") != RELATION_METHOD:
            return JSONResponse({"error_response": {"code": 22, "msg": "Invalid method", "request_id": "sim"}})
        result = self._relation(params.get("code", ""), simplified=params.get("simplify") == "true")
        if params.get("simplify") == "true":
            return JSONResponse({"result": result, "request_id": "sim"})
        return JSONResponse({response_root(RELATION_METHOD): {"result": result, "request_id": "sim"}})

    def _refusal(self, params: dict[str, str]) -> dict[str, Any] | None:
        if params.get("app_key") != self.app_key:
            return {"code": 29, "msg": "Invalid app Key"}
        method = params.get("sign_method", "md5")
        if method not in ("md5", "hmac"):
            return {"code": 25, "msg": "Invalid signature method"}
        if params.get("sign") != top_sign(params, self.secret, "md5" if method == "md5" else "hmac"):
            return {"code": 25, "msg": "Invalid signature"}
        try:
            sent = datetime.strptime(params.get("timestamp", ""), TIMESTAMP_FORMAT).replace(tzinfo=CHINA_TIME)
        except ValueError:
            return {"code": 31, "msg": "Invalid timestamp"}
        if abs(self.clock() - sent) > ALLOWED_SKEW:
            return {"code": 31, "msg": "Invalid timestamp"}
        return None

    def _relation(self, code: str, *, simplified: bool) -> dict[str, Any]:
        if code not in self.children:
            rows = [{"code": code, "parent_code": "", "status": "E", "code_level": "1", "code_pack_level": "1"}]
        else:
            top = code
            while top in self.parents:
                top = self.parents[top]
            rows = self._rows(top, level=1)
            rows = [row for row in rows if row["code"] == code or self._under(row["code"], code)]
        relation: dict[str, Any] = {
            "is_smallest": "true" if not self.children.get(code) else "false",
            "code_relation_list": rows if simplified else {"code_info": rows},
        }
        return {"response_success": True, "msg_code": "SUCCESS", "msg_info": "调用成功",
                "model_list": [relation] if simplified else {"code_relation_dto": [relation]}}

    def _rows(self, code: str, *, level: int) -> list[dict[str, str]]:
        rows = [{"code": code, "parent_code": self.parents.get(code, ""), "status": "A", "code_level": str(level),
                 "code_pack_level": str(self._depth(code))}]
        for child in self.children.get(code, []):
            rows.extend(self._rows(child, level=level + 1))
        return rows

    def _depth(self, code: str) -> int:
        return 1 + max((self._depth(child) for child in self.children.get(code, [])), default=0)

    def _under(self, code: str, ancestor: str) -> bool:
        while code in self.parents:
            code = self.parents[code]
            if code == ancestor:
                return True
        return False


class RelationServer(LocalServer):
    """`async with RelationServer(simulator) as server:` serves on 127.0.0.1 until the block ends."""

    def __init__(self, simulator: RelationSimulator, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        super().__init__(simulator.app(), host=host, port=port)

    @property
    def gateway_url(self) -> str:
        return self.url + GATEWAY_PATH
