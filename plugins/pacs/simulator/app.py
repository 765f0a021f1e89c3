"""The simulated PACS as one ASGI app: a SOAP service with its WSDL, REST endpoints, and a
control API for fault injection.

    GET  /ExamOrderService?wsdl             the WSDL (soap:address = this server)
    POST /ExamOrderService                  SOAP: PlaceExamOrder, ChangeExamOrder, CancelExamOrder
    POST /api/exam-orders                   REST: new order (201)
    PUT  /api/exam-orders/{accession}       REST: change (404 unknown, 409 cancelled)
    POST /api/exam-orders/{accession}/cancel
    GET  /api/exam-orders/{accession}       REST: the exam as scheduled
    POST /_control/faults                   inject a Fault (JSON fields of `Fault`)
    POST /_control/reset                    forget exams, calls and faults
    GET  /_control/calls                    every call with its outcome
    POST /_control/reports                  send a report for an exam back to the engine:
                                            {"accession_number", "style": hl7|soap|rest,
                                             "findings", "impression", "pdf": true}
                                            (needs a `ReportSender`: --report-hl7 / --report-url)
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import asdict
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plugins.pacs.model import study_uid
from plugins.pacs.simulator import soap
from plugins.pacs.simulator.reports import REPORT_STYLES, SAMPLE_PDF, ReportSender, ReportWriting
from plugins.pacs.simulator.state import Call, Exam, Fault, OrderRefused, PacsState
from plugins.pacs.simulator.wsdl import service_wsdl

log = structlog.get_logger(__name__)

SOAP_PATH = "/ExamOrderService"


class PacsSimulator:
    def __init__(self, state: PacsState | None = None, *, reporter: ReportSender | None = None) -> None:
        self.state = state or PacsState()
        self.reporter = reporter
        self.app = Starlette(
            routes=[
                Route(SOAP_PATH, self.soap_endpoint, methods=["GET", "POST"]),
                Route("/api/exam-orders", self.rest_new, methods=["POST"]),
                Route("/api/exam-orders/{accession}", self.rest_item, methods=["GET", "PUT"]),
                Route("/api/exam-orders/{accession}/cancel", self.rest_cancel, methods=["POST"]),
                Route("/_control/faults", self.control_fault, methods=["POST"]),
                Route("/_control/reset", self.control_reset, methods=["POST"]),
                Route("/_control/calls", self.control_calls, methods=["GET"]),
                Route("/_control/reports", self.control_report, methods=["POST"]),
            ]
        )

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # --- SOAP -------------------------------------------------------------------------------

    async def soap_endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            address = str(request.url.replace(query="", fragment=""))
            return Response(service_wsdl(address), media_type="text/xml; charset=utf-8")
        try:
            operation, fields = soap.read_request(await request.body())
        except soap.SoapRequestError as exc:
            self._record("soap", "?", None, "bad_request")
            return Response(soap.fault("Client", str(exc)), 500, media_type=soap.CONTENT_TYPE)
        accession = _soap_accession(fields)
        injected = await self._injected(operation)
        if injected is not None:
            self._record("soap", operation, accession, injected.kind)
            return _soap_fault_answer(operation, injected)
        status, body, outcome = soap.answer(self.state, operation, fields)
        self._record("soap", operation, accession, outcome)
        return Response(body, status, media_type=soap.CONTENT_TYPE)

    # --- REST -------------------------------------------------------------------------------

    async def rest_new(self, request: Request) -> Response:
        order = await _json_body(request)
        accession = str(order.get("accession_number") or "") if isinstance(order, dict) else ""
        return await self._rest("new", accession, lambda: self.state.place(accession, order), created=True)

    async def rest_item(self, request: Request) -> Response:
        accession = request.path_params["accession"]
        if request.method == "GET":
            exam = self.state.exams.get(accession)
            if exam is None:
                return _rest_error(OrderRefused(1, f"accession number {accession} not found", status=404))
            return JSONResponse(_exam_json(exam))
        order = await _json_body(request)
        return await self._rest("change", accession, lambda: self.state.change(accession, order))

    async def rest_cancel(self, request: Request) -> Response:
        accession = request.path_params["accession"]
        return await self._rest("cancel", accession, lambda: self.state.cancel(accession))

    async def _rest(self, operation: str, accession: str, apply: Any, *, created: bool = False) -> Response:
        injected = await self._injected(operation)
        if injected is not None:
            self._record("rest", operation, accession, injected.kind)
            return _rest_fault_answer(injected)
        try:
            exam: Exam = apply()
        except OrderRefused as refused:
            self._record("rest", operation, accession, "rejected")
            return _rest_error(refused)
        self._record("rest", operation, accession, "accepted")
        return JSONResponse(_exam_json(exam), 201 if created else 200)

    # --- control ----------------------------------------------------------------------------

    async def control_fault(self, request: Request) -> Response:
        try:
            fault = Fault.from_json(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        self.state.inject(fault)
        return JSONResponse({"injected": fault.kind})

    async def control_reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True})

    async def control_calls(self, request: Request) -> Response:
        return JSONResponse([vars(call) for call in self.state.calls])

    async def control_report(self, request: Request) -> Response:
        """Send a report back as the radiologist signs it; an exam the PACS never scheduled is
        reported too (to see the engine refuse it), for the patient named in the request."""
        if self.reporter is None:
            return JSONResponse({"error": "no report destination: start with --report-hl7 and/or --report-url"}, 409)
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("style", "hl7") not in REPORT_STYLES:
            return JSONResponse({"error": f"send accession_number and style, one of {', '.join(REPORT_STYLES)}"}, 400)
        accession = str(body.get("accession_number") or "")
        exam = self.state.exams.get(accession) or Exam(accession, "unscheduled", {
            "patientId": str(body.get("patient_id") or "P-TEST-0000"),
            "patientName": str(body.get("patient_name") or "测试患者"),
        }, study_uid(accession or "none"))
        writing = ReportWriting(
            str(body.get("findings") or "未见明显异常。"), str(body.get("impression") or "未见明显异常。"),
            SAMPLE_PDF if body.get("pdf") else None,
        )
        try:
            sent = await self.reporter.send(exam, writing, style=body.get("style", "hl7"))
        except (OSError, ValueError, TimeoutError) as exc:
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, 502)
        return JSONResponse(asdict(sent), 200 if sent.accepted else 422)

    async def _injected(self, operation: str) -> Fault | None:
        fault = self.state.take_fault(operation)
        if fault is not None and fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            return None
        return fault

    def _record(self, style: str, operation: str, accession: str | None, outcome: str) -> None:
        self.state.calls.append(Call(style, operation, accession, outcome))  # type: ignore[arg-type]


def _soap_accession(fields: dict[str, Any]) -> str | None:
    order = fields.get("order")
    value = order.get("accessionNumber") if isinstance(order, dict) else fields.get("accessionNumber")
    return str(value) if value else None


def _soap_fault_answer(operation: str, fault: Fault) -> Response:
    if fault.kind == "soap_fault":
        return Response(soap.fault("Server", fault.text), 500, media_type=soap.CONTENT_TYPE)
    if fault.kind == "reject":
        return Response(soap.result(operation, fault.code, fault.text), media_type=soap.CONTENT_TYPE)
    if fault.kind == "malformed":
        return Response(b'<?xml version="1.0"?><soap:Envelope><soap:Body><broken', media_type=soap.CONTENT_TYPE)
    return Response(b"<html><body><h1>500 Internal Server Error</h1></body></html>", 500, media_type="text/html")


def _rest_fault_answer(fault: Fault) -> Response:
    if fault.kind == "malformed":
        return Response(b'{"accession_number": ', media_type="application/json")
    if fault.kind == "reject":
        return JSONResponse({"error": {"code": str(fault.code), "message": fault.text}}, 422)
    if fault.kind == "soap_fault":
        return JSONResponse({"error": {"code": "SERVER", "message": fault.text}}, 500)
    return Response(b"<html><body><h1>500 Internal Server Error</h1></body></html>", 500, media_type="text/html")


def _rest_error(refused: OrderRefused) -> Response:
    return JSONResponse({"error": {"code": str(refused.code), "message": refused.message}}, refused.status)


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return {}


def _exam_json(exam: Exam) -> dict[str, Any]:
    return {
        "accession_number": exam.accession_number,
        "status": exam.status,
        "study_instance_uid": exam.study_instance_uid,
        "history": exam.history,
    }
