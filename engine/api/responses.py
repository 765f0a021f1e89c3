"""JSON responses and the one shape every API error takes:

    {"error": {"code": "...", "reason": "...", ...facts}}

No handler ever returns a traceback; `install_error_handlers` turns Starlette's own 404/405
and any unexpected exception into that shape too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from engine.message import Payload

log = structlog.get_logger(__name__)

JSON = "application/json"

HTTP_ERROR_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default).encode()


def json_response(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json_bytes(value), status, headers=headers, media_type=JSON)


def error_response(
    status: int, code: str, reason: str, *, headers: Mapping[str, str] | None = None, **facts: Any
) -> Response:
    return json_response({"error": {"code": code, "reason": reason, **facts}}, status, headers)


def payload_json(payload: Payload) -> dict[str, Any]:
    """A stored payload for JSON: text as is when it is UTF-8, otherwise base64."""
    try:
        text = payload.body.decode("utf-8")
    except UnicodeDecodeError:
        return {"content_type": payload.content_type, "encoding": "base64",
                "body": base64.b64encode(payload.body).decode("ascii")}
    return {"content_type": payload.content_type, "encoding": "utf-8", "body": text}


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        reason = f"no API route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        reason = f"{request.method} is not allowed on {request.url.path}"
    else:
        reason = str(exc.detail)
    return error_response(exc.status_code, code, reason, headers=exc.headers)


async def unexpected_exception(request: Request, exc: Exception) -> Response:
    log.exception("API request failed", method=request.method, path=request.url.path)
    return error_response(
        500, "internal_error",
        f"the engine failed to serve {request.method} {request.url.path} ({type(exc).__name__}); "
        "see the engine log",
        party="engine",
    )
