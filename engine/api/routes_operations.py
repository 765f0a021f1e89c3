"""Operations: breakers (list, suspend, resume) and the probes (`/healthz`, `/readyz`,
`/metrics`). The probes take no token: they carry no payloads."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from engine.api.auth import Caller
from engine.api.responses import error_response, json_response
from engine.api.routes_channels import BodyTooLarge, read_limited_body, too_large
from engine.resilience.breaker import BreakerStatus

if TYPE_CHECKING:
    from engine.runtime import Engine

log = structlog.get_logger(__name__)

READY_STORE_TIMEOUT_SECONDS = 2.0
MAX_REASON_LENGTH = 500
MAX_SUSPEND_BODY_BYTES = 4096


def breaker_json(status: BreakerStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "state": status.state,
        "since": status.since,
        "reason": status.reason,
        "failures": status.failures,
        "suspended_by": status.suspended_by,
    }


class BreakerEndpoints:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def listing(self, request: Request, caller: Caller) -> Response:
        return json_response({"breakers": [breaker_json(s) for s in self.engine.breakers.states()]})

    async def suspend(self, request: Request, caller: Caller) -> Response:
        name = request.path_params["name"]
        if name not in self.engine.breakers:
            return self._unknown(name)
        reason = await _reason(request)
        if isinstance(reason, Response):
            return reason
        await self.engine.suspend(name, reason=reason, by=caller.name)
        log.warning("breaker suspended over the API", breaker=name, by=caller.name)
        return json_response(self._status(name))

    async def resume(self, request: Request, caller: Caller) -> Response:
        name = request.path_params["name"]
        if name not in self.engine.breakers:
            return self._unknown(name)
        await self.engine.resume(name, by=caller.name)
        return json_response(self._status(name))

    def _status(self, name: str) -> dict[str, Any]:
        return breaker_json(self.engine.breakers.get(name).status())

    def _unknown(self, name: str) -> Response:
        known = [s.name for s in self.engine.breakers.states()]
        return error_response(
            404, "unknown_breaker", f"no breaker named {name!r}; breakers: {', '.join(known) or 'none'}",
            breaker=name, known_breakers=known,
        )


async def _reason(request: Request) -> str | Response:
    """The required `reason` of a suspension, from a JSON body `{"reason": "..."}`."""
    try:
        body = await read_limited_body(request, MAX_SUSPEND_BODY_BYTES)
    except BodyTooLarge:
        return too_large(MAX_SUSPEND_BODY_BYTES, "fixed limit for suspend requests")
    try:
        data = json.loads(body) if body.strip() else {}
    except ValueError:
        return error_response(400, "bad_body", 'body must be JSON: {"reason": "why the interface is suspended"}')
    reason = data.get("reason") if isinstance(data, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return error_response(
            400, "reason_required",
            'a suspension needs a reason for the audit trail: send {"reason": "..."}', field="reason",
        )
    if len(reason) > MAX_REASON_LENGTH:
        return error_response(400, "reason_too_long", f"reason is limited to {MAX_REASON_LENGTH} characters",
                              field="reason")
    return reason.strip()


class ProbeEndpoints:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        problems = await self._problems()
        if problems:
            return json_response({"status": "not_ready", "reasons": problems}, 503)
        return json_response({"status": "ready", "channels": sorted(self.engine.channels)})

    async def _problems(self) -> list[str]:
        problems: list[str] = []
        try:
            await asyncio.wait_for(self.engine.store.suspensions(), READY_STORE_TIMEOUT_SECONDS)
        except TimeoutError:
            problems.append(f"store did not answer within {READY_STORE_TIMEOUT_SECONDS:g}s")
        except Exception as exc:  # noqa: BLE001 - any store failure means not ready, with its cause
            problems.append(f"store query failed: {type(exc).__name__}: {exc}")
        missing = sorted(set(self.engine.config.channels) - set(self.engine.channels))
        if missing:
            problems.append(f"channels not built: {', '.join(missing)}")
        return problems

    async def metrics(self, request: Request) -> Response:
        text = await self.engine.metrics.render(self.engine.store, self.engine.breakers.states())
        return Response(text, 200, media_type=CONTENT_TYPE_LATEST)
