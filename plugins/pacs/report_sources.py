"""Source kinds through which a PACS hands reports to the engine.

`pacs_oru`: ORU^R01 over MLLP. The engine's MLLP listener with one step in front of the
store: the report's accession must be known, each Base64 ED attachment is stored once as a
blob and its OBX-5 rewritten to the reference (plugins.pacs.oru.store_ready_oru). A refused
report is stored as a failed message blamed on the PACS and answered with an AE whose ERR
segment and MSA-3 say why; the connection stays open for the next message.

`pacs_report_http`: one HTTP listener with
    GET  /ExamReportService?wsdl   the WSDL of the SOAP report service
    POST /ExamReportService        SOAP SubmitExamReport (plugins.pacs.report_soap)
    POST /reports                  REST: the report model as JSON, attachments as
                                   `{"content_type", "title", "data": <base64>}`
Both map to the report model JSON with attachment references, which becomes the message
(the raw stage). Refusals answer 4xx: 422 an unknown accession, 413 an attachment over the
limit, 400 anything else unusable (SOAP: a `soap:Client` fault with that status).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import structlog
from pydantic import Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine.errors import EngineError, InputError
from engine.message import Payload
from engine.mllp.listener import MllpListener, MllpListenerConfig
from engine.serving import LocalServer
from engine.sources import Receipt, Source, SourceBinding, SourceConfig
from plugins.pacs import report_soap
from plugins.pacs.attachments import AttachmentTooLarge, InlineAttachment, decode_base64, mime_type
from plugins.pacs.oru import store_ready_oru
from plugins.pacs.report_intake import ReportIntake, ReportSourceConfig, UnknownAccession

log = structlog.get_logger(__name__)

SOAP_PATH = "/ExamReportService"
REST_PATH = "/reports"
JSON = "application/json"
THREAD_ABOVE_BYTES = 256 * 1024
"""Reports larger than this are decoded in a worker thread."""


class PacsOruConfig(MllpListenerConfig, ReportSourceConfig):
    """MLLP listener settings and the report checks."""


class PacsOruSource(MllpListener):
    """`source: {kind: pacs_oru, config: {port: 8741}}`"""

    kind: ClassVar[str] = "pacs_oru"
    Config = PacsOruConfig
    description: ClassVar[str] = (
        "ORU^R01 reports from a PACS over MLLP: accession checked, attachments stored once, AE when refused"
    )

    def __init__(self, config: PacsOruConfig, binding: SourceBinding) -> None:
        self.intake = ReportIntake(config, binding)
        self.report_settings = config
        super().__init__(config, dataclasses.replace(binding, accept=self._accept_report))

    async def start(self) -> None:
        self.intake.attach()
        await super().start()

    async def _accept_report(self, payload: Payload) -> Receipt:
        settings = self.report_settings
        prepare = functools.partial(
            store_ready_oru, payload.body, default_charset=settings.charset,
            max_attachment_bytes=settings.max_attachment_bytes, party=settings.party,
        )
        try:
            ready = await _off_the_loop_if_large(payload.body, prepare)
        except InputError as exc:
            return await self.intake.refuse(payload, exc)
        message = Payload(ready.message, payload.content_type, payload.headers)
        receipt, _ = await self.intake.take(message, ready.accession_number, ready.attachments, received=payload)
        return receipt


class PacsReportHttpConfig(ReportSourceConfig):
    host: str = Field("127.0.0.1", description="address to listen on; 0.0.0.0 for a PACS on the LAN")
    port: int = Field(description="TCP port of the SOAP service and the REST endpoint", ge=0, le=65535)
    max_body_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="larger request bodies are refused with 413 before they are read"
    )


class PacsReportHttpSource(Source):
    """`source: {kind: pacs_report_http, config: {port: 8742}}`"""

    kind: ClassVar[str] = "pacs_report_http"
    Config: ClassVar[type[SourceConfig]] = PacsReportHttpConfig
    description: ClassVar[str] = (
        "reports from a PACS as SOAP callbacks (WSDL served) or REST posts: accession checked, attachments stored once"
    )

    def __init__(self, config: SourceConfig, binding: SourceBinding) -> None:
        assert isinstance(config, PacsReportHttpConfig)
        super().__init__(config, binding)
        self.settings = config
        self.intake = ReportIntake(config, binding)
        app = Starlette(routes=[
            Route(SOAP_PATH, self.soap, methods=["GET", "POST"]),
            Route(REST_PATH, self.rest, methods=["POST"]),
        ])
        self.server = LocalServer(app, host=config.host, port=config.port)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def wsdl_url(self) -> str:
        return f"{self.server.url}{SOAP_PATH}?wsdl"

    async def start(self) -> None:
        self.intake.attach()
        await self.server.start()
        log.info("pacs report service listening", channel=self.binding.channel, url=self.server.url)

    async def stop(self) -> None:
        await self.server.stop()

    # --- the two styles share one flow ------------------------------------------------------

    async def soap(self, request: Request) -> Response:
        if request.method == "GET":
            address = str(request.url.replace(query="", fragment=""))
            return Response(report_soap.service_wsdl(address), media_type=report_soap.CONTENT_TYPE)
        decode = functools.partial(
            report_soap.read_report, max_attachment_bytes=self.settings.max_attachment_bytes, party=self.settings.party
        )
        return await self._receive(request, "soap", decode, _SOAP_ANSWERS)

    async def rest(self, request: Request) -> Response:
        return await self._receive(request, "rest", self._rest_report, _REST_ANSWERS)

    async def _receive(self, request: Request, style: str, decode: Decoder, answers: _Answers) -> Response:
        """Read, decode (attachments out), check and store one report; answer in the style's words."""
        body = await self._body(request)
        if body is None:
            too_large = AttachmentTooLarge(
                f"request body over the limit of {self.settings.max_body_bytes} bytes", field="body",
                party=self.settings.party,
            )
            return _refused(answers, too_large, None)
        received = Payload(body, answers.content_type)
        try:
            try:
                report, attachments = await _off_the_loop_if_large(body, functools.partial(decode, body))
            except InputError as exc:
                return _refused(answers, exc, await self.intake.refuse(received, exc))
            message = Payload(json.dumps(report, ensure_ascii=False).encode(), JSON, {"x-pacs-report-style": style})
            accession = str(report.get("accession_number") or "")
            receipt, error = await self.intake.take(message, accession, attachments, received=received)
        except EngineError as exc:
            log.error("pacs report not stored", channel=self.binding.channel, error=str(exc))
            return answers.unstored(f"report not stored, send it again: {exc}")
        if error is not None or not receipt.accepted:
            return _refused(answers, error, receipt)
        return answers.accepted(receipt.message_id, receipt.status)

    def _rest_report(self, body: bytes) -> tuple[dict[str, Any], list[InlineAttachment]]:
        party = self.settings.party
        try:
            report = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"body is not valid JSON: {exc}", field="body", party=party) from exc
        if not isinstance(report, dict):
            raise InputError("the report must be a JSON object", field="body", party=party)
        items = report.get("attachments") or []
        if not isinstance(items, list):
            raise InputError("attachments must be a list", field="attachments", party=party)
        attachments = []
        for index, item in enumerate(items):
            where = f"attachments[{index}]"
            if not isinstance(item, dict) or not isinstance(item.get("data"), str):
                raise InputError("each attachment needs content_type and base64 data", field=where, party=party)
            content_type = mime_type(str(item.get("content_type", "")), where=f"{where}.content_type", party=party)
            data = decode_base64(item["data"], where=f"{where}.data",
                                 max_bytes=self.settings.max_attachment_bytes, party=party)
            attachments.append(InlineAttachment(data, content_type, str(item.get("title") or "")))
        report["attachments"] = [attachment.reference() for attachment in attachments]
        return report, attachments

    async def _body(self, request: Request) -> bytes | None:
        """The body, or None once it is over `max_body_bytes` (not read further)."""
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.settings.max_body_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.settings.max_body_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


T = TypeVar("T")


async def _off_the_loop_if_large(body: bytes, decode: Callable[[], T]) -> T:
    """Decoding megabytes of base64 takes tens of ms: not on the loop that serves every connection."""
    return await asyncio.to_thread(decode) if len(body) > THREAD_ABOVE_BYTES else decode()


Decoder = Callable[[bytes], tuple[dict[str, Any], list[InlineAttachment]]]


@dataclass(frozen=True)
class _Answers:
    """How one style answers: accepted (message id, status), refused (reason, field, message
    id, HTTP status) and not stored (reason; the sender should try again)."""

    content_type: str
    accepted: Callable[[str, str], Response]
    refused: Callable[[str, str | None, str | None, int], Response]
    unstored: Callable[[str], Response]


def _soap_response(body: bytes, status: int = 200) -> Response:
    return Response(body, status, media_type=report_soap.CONTENT_TYPE)


def _rest_refused(reason: str, field: str | None, message_id: str | None, status: int) -> Response:
    error = {"code": "report_refused", "reason": reason, "field": field, "message_id": message_id}
    return JSONResponse({"error": {key: value for key, value in error.items() if value is not None}}, status)


_SOAP_ANSWERS = _Answers(
    report_soap.CONTENT_TYPE,
    accepted=lambda message_id, _status: _soap_response(report_soap.accepted(message_id)),
    refused=lambda reason, field, message_id, status: _soap_response(
        report_soap.fault("Client", reason, field=field, message_id=message_id), status),
    unstored=lambda reason: _soap_response(report_soap.fault("Server", reason), 503),
)
_REST_ANSWERS = _Answers(
    JSON,
    accepted=lambda message_id, status: JSONResponse({"message_id": message_id, "status": status}, 202),
    refused=_rest_refused,
    unstored=lambda reason: JSONResponse({"error": {"code": "not_stored", "reason": reason}}, 503),
)


def _refused(answers: _Answers, error: InputError | None, receipt: Receipt | None) -> Response:
    reason, field = _why(error, receipt)
    return answers.refused(reason, field, receipt.message_id if receipt else None, _status(error))


def _why(error: InputError | None, receipt: Receipt | None) -> tuple[str, str | None]:
    if receipt is not None and receipt.error:
        return str(receipt.error.get("reason") or error or "refused"), receipt.error.get("field") or (
            error.field if error else None)
    return (str(error) if error else "refused"), error.field if error else None


def _status(error: InputError | None) -> int:
    if isinstance(error, UnknownAccession):
        return 422
    if isinstance(error, AttachmentTooLarge):
        return 413
    return 400


__all__ = ["PacsOruConfig", "PacsOruSource", "PacsReportHttpConfig", "PacsReportHttpSource"]
