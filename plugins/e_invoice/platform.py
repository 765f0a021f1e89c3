"""One call to the fiscal platform: seal, post, record on the wire, verify, decode.

Every error raised here carries `platform: e_invoice`, the `method`, and for business
failures the platform's `result` code and decoded `err_msg`, so the plugin's fault rules
recognise them. A "busy" text is a `PlatformBusy` (transient): nothing was issued.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import structlog

from engine.adapters.base import Wire
from engine.errors import AdapterError, PermanentError, TransientError
from engine.message import Payload
from engine.transports import status_error
from engine.transports.http import exchange
from plugins.e_invoice.envelope import Credentials, PlatformAnswer, open_answer, seal

log = structlog.get_logger(__name__)

API_PATH = "/api/medical/"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
BUSY = re.compile(r"系统(繁忙|忙|异常)|请稍后|服务.{0,4}(不可用|超时)")
DUPLICATE_BUS_NO = re.compile(r"业务流水号.{0,6}(重复|已存在|已开具)|重复开(票|具)")
ALREADY_WRITTEN_OFF = re.compile(r"已冲红|已开红票|已作废")


class PlatformRejected(PermanentError):
    """The platform answered `result != S0000`; detail holds result and err_msg."""


class PlatformBusy(TransientError):
    """The platform answered, but only that it cannot work now; try again later."""


class PlatformClient:
    def __init__(self, *, http: httpx.AsyncClient, base_url: str, credentials: Credentials) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials

    def url(self, method: str) -> str:
        return f"{self.base_url}{API_PATH}{method}"

    async def post(self, method: str, business: dict[str, Any], wire: Wire) -> Any:
        """The decoded business answer of `method`; raises engine errors for every failure."""
        try:
            answer = await self._post(method, business, wire)
        except AdapterError as exc:
            exc.detail.setdefault("platform", "e_invoice")
            exc.detail.setdefault("method", method)
            raise
        if answer.ok:
            return answer.business
        detail: dict[str, object] = {"result": answer.result, "err_msg": answer.text}
        text = f"platform rejected {method}: {answer.result} {answer.text}"
        if BUSY.search(answer.text):
            raise PlatformBusy(text, detail={**detail, "platform": "e_invoice", "method": method})
        raise PlatformRejected(text, detail={**detail, "platform": "e_invoice", "method": method})

    async def _post(self, method: str, business: dict[str, Any], wire: Wire) -> PlatformAnswer:
        body = Payload.from_json(seal(self.credentials, business)).body
        request = self.http.build_request(
            "POST", self.url(method), content=body, headers={"Content-Type": JSON_CONTENT_TYPE}
        )
        response = await exchange(self.http, request, wire)
        if not response.is_success:
            raise status_error(response.status_code, excerpt=response.text[:500])
        answer = open_answer(self.credentials, response.content)
        wire.current.ack_code = answer.result
        return answer
