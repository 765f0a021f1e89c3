"""The PACS services' HTTP routes, mounted by the engine under `/api/v1` with its bearer tokens.

Every request becomes a message on its service's channel through `engine.call()`, so it
is stored, attributed and guarded by a breaker like any other; refusals and failures take
the engine's one error shape (`engine.api.routes_channels.outcome_response`). A service's
channel is found by what it holds (`SERVICES`), so sites name channels as they like; a
service without exactly one channel answers 503 naming what to configure.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.api.responses import error_response, json_response, shielded
from engine.api.routes_channels import (
    MESSAGE_ID_HEADER,
    BodyTooLarge,
    outcome_response,
    read_limited_body,
    too_large,
)
from engine.message import Payload, Status
from engine.sources import Outcome
from plugins.pacs.services import paths
from plugins.pacs.services.archive import ExamArchive
from plugins.pacs.services.models import Accepted, ResultQuery
from plugins.pacs.services.openapi import openapi_document
from plugins.pacs.services.queries import ArchiveReader, PacsResultsAdapter, PacsWorkloadAdapter, report_result
from plugins.pacs.services.scheduling import (
    AppointmentProcessor,
    ExamOrderProcessor,
    Operation,
    RegistrationProcessor,
    service_payload,
)

if TYPE_CHECKING:
    from engine.channels import Channel
    from engine.runtime import Engine

ACCEPTED_STATUSES = frozenset({Status.QUEUED, Status.REPLIED, Status.FILTERED})


@dataclass(frozen=True)
class Service:
    title: str
    needs: str  # what its channel must hold, for the 503 that says it is missing
    serves: Callable[[Channel], bool]


def _processor(kind: type[ExamOrderProcessor]) -> Callable[[Channel], bool]:
    return lambda channel: any(isinstance(processor, kind) for processor in channel.processors)


def _sync_destination(kind: type[ArchiveReader]) -> Callable[[Channel], bool]:
    return lambda channel: channel.sync_destination is not None and isinstance(channel.sync_destination.adapter, kind)


SERVICES = {
    "registration": Service("registration (登记)", "the processor pacs_registration",
                            _processor(RegistrationProcessor)),
    "appointment": Service("appointment (预约)", "the processor pacs_appointment", _processor(AppointmentProcessor)),
    "results": Service("result query (结果查询)", "a sync pacs_results destination",
                       _sync_destination(PacsResultsAdapter)),
    "workload": Service("workload statistics (工作量统计)", "a sync pacs_workload destination",
                        _sync_destination(PacsWorkloadAdapter)),
}


def pacs_service_routes(engine: Engine) -> list[BaseRoute]:
    """The routes, with the archive readers of every channel bound to this engine."""
    archive = ExamArchive(engine)
    for channel in engine.channels.values():
        for destination in channel.destinations:
            if isinstance(destination.adapter, ArchiveReader):
                destination.adapter.bind(archive)
    endpoints = PacsServiceEndpoints(engine, archive)

    def route(path: str, endpoint: Callable[[Request], Awaitable[Response]], method: str) -> Route:
        return Route(path, shielded(endpoint), methods=[method])

    return [
        route(paths.OPENAPI, endpoints.openapi, "GET"),
        route(paths.REGISTRATIONS, endpoints.register, "POST"),
        route(paths.REGISTRATION, endpoints.cancel_registration, "DELETE"),
        route(paths.APPOINTMENTS, endpoints.book, "POST"),
        route(paths.APPOINTMENT, endpoints.reschedule, "PUT"),
        route(paths.APPOINTMENT, endpoints.cancel_appointment, "DELETE"),
        route(paths.RESULT, endpoints.result, "GET"),
        route(paths.WORKLOAD, endpoints.workload, "GET"),
    ]


class PacsServiceEndpoints:
    def __init__(self, engine: Engine, archive: ExamArchive) -> None:
        self.engine = engine
        self.archive = archive
        self.limit = engine.config.api.max_body_bytes
        self.document = json.dumps(openapi_document(), ensure_ascii=False).encode()

    async def openapi(self, request: Request) -> Response:
        return Response(self.document, media_type="application/json")

    # --- 登记 and 预约: orders for the PACS ----------------------------------------------------

    async def register(self, request: Request) -> Response:
        return await self._order(request, "registration", "register")

    async def cancel_registration(self, request: Request) -> Response:
        return await self._order(request, "registration", "cancel")

    async def book(self, request: Request) -> Response:
        return await self._order(request, "appointment", "book")

    async def reschedule(self, request: Request) -> Response:
        return await self._order(request, "appointment", "reschedule")

    async def cancel_appointment(self, request: Request) -> Response:
        return await self._order(request, "appointment", "cancel")

    async def _order(self, request: Request, service: str, operation: Operation) -> Response:
        channel = self._channel(service)
        if isinstance(channel, Response):
            return channel
        accession: str | None = request.path_params.get("accession_number")
        if operation == "cancel":
            payload = service_payload(json.dumps({"accession_number": accession}).encode(),
                                      "application/json", operation, accession)
        else:
            try:
                body = await read_limited_body(request, self.limit)
            except BodyTooLarge:
                return too_large(self.limit)
            content_type = request.headers.get("content-type") or "application/json"
            payload = service_payload(body, content_type, operation, accession)
        outcome = await self._call(request, channel, payload)
        if outcome.status not in ACCEPTED_STATUSES:
            return outcome_response(self.engine, outcome)
        accepted = Accepted(
            message_id=outcome.message_id, status=outcome.status, operation=operation,
            accession_number=accession or str(json.loads(payload.body)["accession_number"]).strip(),
        )
        status = 202 if outcome.status == Status.QUEUED else 200
        return json_response(accepted.model_dump(mode="json"), status, {MESSAGE_ID_HEADER: outcome.message_id})

    # --- 结果查询 and 工作量统计: answers from the engine's archive --------------------------------

    async def result(self, request: Request) -> Response:
        channel = self._channel("results")
        if isinstance(channel, Response):
            return channel
        query: dict[str, Any] = {**request.query_params, "accession_number": request.path_params["accession_number"]}
        outcome = await self._call(request, channel, Payload.from_json(query))
        if outcome.status != Status.REPLIED or outcome.reply is None:
            return outcome_response(self.engine, outcome)
        answer = outcome.reply.json()
        headers = {MESSAGE_ID_HEADER: outcome.message_id}
        if answer.get("found") is False:
            return error_response(
                404, "no_report", f"the engine holds no report for accession number {query['accession_number']}",
                headers=headers, accession_number=query["accession_number"], message_id=outcome.message_id,
            )
        if ResultQuery.model_validate(query).include_attachments:
            answer = await self._with_attachment_data(answer)
        return json_response(answer, 200, headers)

    async def _with_attachment_data(self, answer: dict[str, Any]) -> dict[str, Any]:
        view = await self.engine.store.get_message(answer["report_message_id"])
        stored = await self.archive.report_of(view) if view is not None else None
        if stored is None:  # pruned between the query and now: answer with the digests only
            return answer
        return report_result(stored, await self.archive.attachment_data(stored.report)).model_dump(mode="json")

    async def workload(self, request: Request) -> Response:
        channel = self._channel("workload")
        if isinstance(channel, Response):
            return channel
        outcome = await self._call(request, channel, Payload.from_json(dict(request.query_params)))
        if outcome.status != Status.REPLIED or outcome.reply is None:
            return outcome_response(self.engine, outcome)
        return Response(outcome.reply.body, 200, {MESSAGE_ID_HEADER: outcome.message_id},
                        media_type="application/json")

    # --- shared ----------------------------------------------------------------------------------

    async def _call(self, request: Request, channel: str, payload: Payload) -> Outcome:
        return await self.engine.call(channel, payload, caller=request.state.caller.name)

    def _channel(self, service: str) -> str | Response:
        wanted = SERVICES[service]
        candidates = sorted(name for name, channel in self.engine.channels.items() if wanted.serves(channel))
        if len(candidates) == 1:
            return candidates[0]
        reason = (f"no channel serves the PACS {wanted.title}: configure one with {wanted.needs}" if not candidates
                  else f"several channels serve the PACS {wanted.title} ({', '.join(candidates)}): keep one")
        return error_response(503, "service_not_configured", reason, known_channels=candidates, party="engine",
                              rule_id="pacs.services.channel")


__all__ = ["SERVICES", "PacsServiceEndpoints", "pacs_service_routes"]
