"""JSON responses and the one shape every API error takes:

    {"error": {"code": "...", "reason": "...", ...facts}}

No handler ever returns a traceback; `install_error_handlers` turns Starlette's own 404/405
and any unexpected exception into that shape too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Mapping
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


def shielded(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Answer an endpoint's unexpected exception here with the JSON 500. Left to Starlette's
    outermost handler, the exception would be re-raised to uvicorn, which then drops the
    keep-alive connection under the client."""

    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a JSON 500, logged with its traceback
            return await unexpected_exception(request, exc)

    run.__name__ = getattr(endpoint, "__name__", "endpoint")
    run.__doc__ = endpoint.__doc__
    return run


async def unexpected_exception(request: Request, exc: Exception) -> Response:
    log.exception("API request failed", method=request.method, path=request.url.path)
    return error_response(
        500, "internal_error",
        f"the engine failed to serve {request.method} {request.url.path} ({type(exc).__name__}); "
        "see the engine log",
        party="engine",
    )
