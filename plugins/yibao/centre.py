"""One call to the insurance centre: seal, sign, post, record on the wire, parse.

`CentreClient` is shared by the adapter, the sign-in session and the settlement recovery,
and is part of the plugin's public API (drug_trace posts 35xx through it). Every error it
raises carries `centre: yibao`, `infno` and `msgid` in its detail, so the plugin's fault
rules can recognise yibao failures whichever adapter made the call.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import structlog

from engine.adapters.base import Wire
from engine.errors import AdapterError, OutcomeUnknownError, PermanentError, TransientError
from engine.transports.http import exchange
from plugins.yibao.envelope import Deployment, Operator, build_envelope
from plugins.yibao.msgid import MsgIdGenerator
from plugins.yibao.response import CentreAnswer, parse_answer, rejection
from plugins.yibao.signing.base import GatewaySigner
from plugins.yibao.transactions import Transaction, transaction

log = structlog.get_logger(__name__)

JSON_CONTENT_TYPE = "application/json;charset=utf-8"


CALL_PATH = "/fsi/api/rsfComIfsService/callService"
ZHEJIANG_SIGN_IN_PATH = "/fsi/api/signInSignOutService/signIn"
ZHEJIANG_SIGN_OUT_PATH = "/fsi/api/signInSignOutService/signOut"


@dataclass(frozen=True)
class EndpointPaths:
    """Paths under `base_url` (§1.1): most transactions use `call`. Sign-in (9001) and
    sign-out (9002) go there too, except where a deployment has its own service for them
    (Zhejiang: ZHEJIANG_SIGN_IN_PATH / ZHEJIANG_SIGN_OUT_PATH)."""

    call: str = CALL_PATH
    upload: str = "/fsi/api/fileupload/upload"
    download: str = "/fsi/api/fileupload/download"
    sign_in: str = CALL_PATH
    sign_out: str = CALL_PATH


@dataclass(frozen=True)
class CentreReply:
    """A successful call: the parsed answer, or the raw file for 9102."""

    infno: str
    msgid: str
    answer: CentreAnswer | None
    file: bytes | None = None

    @property
    def output(self) -> Any:
        return self.answer.output if self.answer else None


class CentreClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        deployment: Deployment,
        signer: GatewaySigner,
        msgids: MsgIdGenerator,
        paths: EndpointPaths = EndpointPaths(),
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.deployment = deployment
        self.signer = signer
        self.msgids = msgids
        self.paths = paths

    def envelope(
        self,
        *,
        infno: str,
        input: dict[str, Any],
        operator: Operator,
        sign_no: str = "",
        insuplc_admdvs: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any]:
        """A complete request envelope with a fresh msgid."""
        return build_envelope(
            self.deployment, operator, infno=infno, msgid=self.msgids.next(), input=input,
            sign_no=sign_no, insuplc_admdvs=insuplc_admdvs, now=now,
        )

    def url(self, spec: Transaction) -> str:
        return self.base_url + str(getattr(self.paths, spec.endpoint))

    async def post(self, envelope: dict[str, Any], wire: Wire) -> CentreReply:
        """Send one envelope as it is; CentreRejected when `infcode != 0`."""
        infno, msgid = str(envelope["infno"]), str(envelope["msgid"])
        try:
            return await self._post(transaction(infno), envelope, wire)
        except AdapterError as exc:
            exc.detail.setdefault("centre", "yibao")
            exc.detail.setdefault("infno", infno)
            exc.detail.setdefault("msgid", msgid)
            raise

    async def _post(self, spec: Transaction, envelope: dict[str, Any], wire: Wire) -> CentreReply:
        body = sealed_body(self.signer, envelope)
        response = await self._exchange(spec, body, wire)
        if response.status_code == 401 and self.signer.renews_credentials:
            self.signer.forget_credentials()
            wire.step(step="renew_credentials", infno=spec.infno)
            response = await self._exchange(spec, body, wire)
        msgid = str(envelope["msgid"])
        if spec.endpoint == "download" and _is_file(response):
            return CentreReply(spec.infno, msgid, None, file=response.content)
        answer = self._answer(spec, response)
        wire.current.ack_code = str(answer.infcode)
        if not answer.ok:
            raise rejection(answer, spec.infno)
        return CentreReply(spec.infno, msgid, answer)

    async def _exchange(self, spec: Transaction, body: bytes, wire: Wire) -> httpx.Response:
        headers = await request_headers(self.signer, body, self.http)
        request = self.http.build_request("POST", self.url(spec), content=body, headers=headers)
        return await exchange(self.http, request, wire)

    def _answer(self, spec: Transaction, response: httpx.Response) -> CentreAnswer:
        status = response.status_code
        try:
            answer = parse_answer(response.content, http_status=status)
        except PermanentError as exc:
            if status >= 500 or status in (408, 429):
                error = OutcomeUnknownError if spec.moves_money else TransientError
                raise error(f"HTTP {status} without an envelope", detail=exc.detail) from exc
            raise
        unsealed = self.signer.unseal(answer.envelope)
        if unsealed is not answer.envelope:
            answer = dataclasses.replace(answer, output=unsealed.get("output"), envelope=unsealed)
        return answer


def sealed_body(signer: GatewaySigner, envelope: dict[str, Any]) -> bytes:
    """The exact bytes to post: the envelope as the scheme seals it, UTF-8 JSON."""
    return json.dumps(signer.seal(envelope), ensure_ascii=False).encode()


async def request_headers(signer: GatewaySigner, body: bytes, http: httpx.AsyncClient) -> dict[str, str]:
    """Content type plus the scheme's gateway headers for `body`."""
    return {"Content-Type": JSON_CONTENT_TYPE, **await signer.headers(body, http)}


def _is_file(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "")
    return response.status_code == 200 and "json" not in kind and "text" not in kind
