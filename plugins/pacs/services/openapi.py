"""The OpenAPI 3.1 description of the PACS services, written from the models that validate
their requests (`plugins.pacs.services.models`), so the document cannot drift from the code.

Request bodies and answers are the models' JSON Schemas (OpenAPI 3.1 takes JSON Schema
2020-12 as pydantic writes it); path and query parameters are the properties of the query
models. `OPERATIONS` lists every route the services serve; a test checks both sides agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from plugins.pacs.services import paths
from plugins.pacs.services.models import (
    Accepted,
    Appointment,
    Booking,
    ErrorBody,
    ExamRef,
    Registration,
    ReportResult,
    ResultQuery,
    Workload,
    WorkloadQuery,
)

REF = "#/components/schemas/{model}"
NOT_BLANK = "[^\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
"""At least one character that is not White_Space, the set pydantic's whitespace trimming removes."""
TITLE = "hisbridge PACS services"
VERSION = "1.0.0"

ERRORS = {
    400: "unreadable body (not JSON, not an object): party his, field body",
    401: "missing or wrong bearer token",
    413: "body over api.max_body_bytes",
    422: "a field is invalid: `error.field` names it, `error.reason` says why; stored with party his",
    503: "the service has no channel, or its destination's breaker is open or suspended (Retry-After)",
}
ORDER_ERRORS = {**ERRORS, 502: "a sync PACS destination failed (party third_party or network)",
                504: "a sync PACS destination did not answer in time"}
UNROUTABLE = "no route: the engine routes no path whose parameter holds a line break"
QUERY_ERRORS = {code: text for code, text in ERRORS.items() if code not in (400, 413)}


@dataclass(frozen=True)
class ApiOperation:
    method: str
    path: str
    operation_id: str
    summary: str
    description: str
    answers: dict[int, tuple[type[BaseModel] | None, str]]
    body: type[BaseModel] | None = None
    parameters: type[BaseModel] | None = None
    errors: dict[int, str] = field(default_factory=lambda: dict(ERRORS))


def _accepted(what: str) -> dict[int, tuple[type[BaseModel] | None, str]]:
    return {
        202: (Accepted, f"{what} stored and queued for the PACS; follow message_id"),
        200: (Accepted, f"{what} delivered at once (a sync destination), or routed nowhere (filtered)"),
    }


OPERATIONS = [
    ApiOperation(
        "post", paths.REGISTRATIONS, "register", "登记: register a patient for an exam",
        "Becomes a new exam order for the PACS (and the worklist), sent by the engine's outbox.",
        _accepted("the registration"), body=Registration, errors=ORDER_ERRORS,
    ),
    ApiOperation(
        "delete", paths.REGISTRATION, "cancelRegistration", "cancel a registration",
        "Becomes a cancel order for the PACS.", _accepted("the cancel"), parameters=ExamRef, errors=ORDER_ERRORS,
    ),
    ApiOperation(
        "post", paths.APPOINTMENTS, "book", "预约: book an exam on a device or in a room",
        "Becomes a new exam order scheduled on the device (station AE title) or room.",
        _accepted("the appointment"), body=Appointment, errors=ORDER_ERRORS,
    ),
    ApiOperation(
        "put", paths.APPOINTMENT, "reschedule", "move an appointment (new slot, device or room)",
        "The whole appointment as it now stands; becomes a change order.",
        _accepted("the change"), body=Booking, parameters=ExamRef, errors=ORDER_ERRORS,
    ),
    ApiOperation(
        "delete", paths.APPOINTMENT, "cancelAppointment", "cancel an appointment",
        "Becomes a cancel order for the PACS.", _accepted("the cancel"), parameters=ExamRef, errors=ORDER_ERRORS,
    ),
    ApiOperation(
        "get", paths.RESULT, "result", "结果查询: the exam's report as structured data and base64 PDF/images",
        "The newest report (a correction supersedes the original) the engine received for the exam.",
        {200: (ReportResult, "the report"), 404: (ErrorBody, "the engine holds no report for this exam")},
        parameters=ResultQuery, errors=QUERY_ERRORS,
    ),
    ApiOperation(
        "get", paths.WORKLOAD, "workload", "工作量统计: exams per exam item, device and technician",
        "Exams whose first report was verified in the period, counted once each from the engine's archive.",
        {200: (Workload, "the counts")}, parameters=WorkloadQuery, errors=QUERY_ERRORS,
    ),
]


def openapi_document() -> dict[str, Any]:
    components = _schemas()
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": TITLE,
            "version": VERSION,
            "description": "登记, 预约, 结果查询 and 工作量统计 for other hospital systems. Every call is a "
                           "stored engine message; errors are {\"error\": {code, reason, party, field, ...}}.",
        },
        "paths": {},
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
    for operation in OPERATIONS:
        item = document["paths"].setdefault(paths.API_PREFIX + operation.path, {})
        item[operation.method] = _operation(operation, components)
    return document


def _schemas() -> dict[str, Any]:
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for operation in OPERATIONS:
        if operation.body is not None:
            models.append((operation.body, "validation"))
        models += [(model, "serialization") for model, _ in operation.answers.values() if model is not None]
    _, top = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    schemas: dict[str, Any] = top["$defs"]
    _forbid_blank(schemas)
    return schemas


def _forbid_blank(schema: Any) -> None:
    """The models trim surrounding whitespace before they check lengths, so a required text
    of only whitespace is refused: say so with a pattern (JSON Schema cannot say "trimmed")."""
    if isinstance(schema, list):
        for item in schema:
            _forbid_blank(item)
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and schema.get("minLength", 0) >= 1 and "pattern" not in schema:
        schema["pattern"] = NOT_BLANK
    for value in schema.values():
        _forbid_blank(value)


def _operation(operation: ApiOperation, components: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "description": operation.description,
        "tags": ["pacs"],
        "responses": {
            str(code): _response(description, model, components)
            for code, (model, description) in operation.answers.items()
        },
    }
    errors = dict(operation.errors)
    if "{" in operation.path:
        errors.setdefault(404, UNROUTABLE)
    for code, description in errors.items():
        spec["responses"].setdefault(str(code), _response(description, ErrorBody, components))
    if operation.parameters is not None:
        spec["parameters"] = _parameters(operation.parameters, operation.path)
    if operation.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(operation.body, components, "Input")}},
        }
    return spec


def _response(description: str, model: type[BaseModel] | None, components: dict[str, Any]) -> dict[str, Any]:
    if model is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": _ref(model, components, "Output")}}}


def _ref(model: type[BaseModel], components: dict[str, Any], mode: str) -> dict[str, str]:
    """pydantic names a model `X-Input`/`X-Output` when its two schemas differ."""
    name = model.__name__ if model.__name__ in components else f"{model.__name__}-{mode}"
    return {"$ref": REF.format(model=name)}


def _parameters(model: type[BaseModel], path: str) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        in_path = "{" + name + "}" in path
        parameters.append({
            "name": name,
            "in": "path" if in_path else "query",
            "required": in_path or name in required,
            "description": prop.get("description", ""),
            "schema": _without_null(prop),
        })
    return parameters


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value; it cannot be JSON null."""
    branches: list[dict[str, Any]] = [branch for branch in prop.get("anyOf", ()) if branch.get("type") != "null"]
    if len(branches) != 1:
        return {key: value for key, value in prop.items() if key not in ("title", "description")}
    return branches[0]


__all__ = ["OPERATIONS", "ApiOperation", "openapi_document"]
