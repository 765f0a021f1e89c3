"""`POST /api/v1/channels/{channel}`: the hot path HIS calls for every message.

The body is read with a hard limit, handed to `engine.call()`, and the `Outcome` is mapped
to an HTTP answer HIS can act on without reading our logs:

    replied          200  the destination's reply, as is
    queued           202  stored; delivered later by the outbox
    filtered         200  stored; no destination wanted it
    short_circuited  503  breaker open / interface suspended, with Retry-After
    failed  his      400  unreadable body (bad JSON, bad charset: field "body")
                     422  a named field is invalid
            device   400
            third_party 502, network 502, engine 500
            network or third_party: 504 when the destination did not answer in time

Refused before anything is stored (so without a message id): an unknown channel (404) and a
body over `api.max_body_bytes` (413), both with party `his` and an `api.*` rule id.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from engine.api.auth import Caller
from engine.api.responses import error_response, json_response
from engine.message import Payload, Status
from engine.sources import Outcome

if TYPE_CHECKING:
    from engine.runtime import Engine

MESSAGE_ID_HEADER = "X-Hisbridge-Message-Id"
DEFAULT_RETRY_AFTER_SECONDS = 30
WHOLE_BODY_FIELD = "body"  # intake names this field when the body cannot be parsed at all

_FAILED_BY_PARTY: dict[str, tuple[int, str]] = {
    "his": (400, "invalid_input"),
    "device": (400, "invalid_input"),
    "third_party": (502, "third_party_error"),
    "network": (502, "network_error"),
    "engine": (500, "engine_error"),
}


class BodyTooLarge(Exception):
    pass


async def read_limited_body(request: Request, limit: int) -> bytes:
    """The request body, or BodyTooLarge as soon as more than `limit` bytes are declared or
    arrive (a chunked body is not read past the limit)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int, setting: str = "api.max_body_bytes") -> Response:
    return error_response(
        413, "body_too_large", f"request body exceeds the limit of {limit} bytes ({setting})", limit=limit,
        party="his", rule_id="api.body_too_large",
    )


class ChannelEndpoint:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.limit = engine.config.api.max_body_bytes

    async def post(self, request: Request, caller: Caller) -> Response:
        name = request.path_params["channel"]
        channel = self.engine.channels.get(name)
        if channel is None:
            return unknown_channel(name, sorted(self.engine.channels))
        try:
            body = await read_limited_body(request, self.limit)
        except BodyTooLarge:
            return too_large(self.limit)
        content_type = request.headers.get("content-type") or channel.config.content_type
        outcome = await self.engine.call(name, Payload(body, content_type), caller=caller.name)
        return outcome_response(self.engine, outcome)


def unknown_channel(name: str, known: list[str]) -> Response:
    return error_response(
        404, "unknown_channel",
        f"no channel named {name!r}; configured channels: {', '.join(known) or 'none'}",
        channel=name, known_channels=known, party="his", rule_id="api.unknown_channel",
    )


def outcome_response(engine: Engine, outcome: Outcome) -> Response:
    status = outcome.status
    if status == Status.REPLIED:
        return _reply(outcome)
    if status == Status.QUEUED:
        return json_response({"message_id": outcome.message_id, "status": "queued"}, 202,
                             {MESSAGE_ID_HEADER: outcome.message_id})
    if status == Status.FILTERED:
        return json_response({"message_id": outcome.message_id, "status": "filtered"}, 200,
                             {MESSAGE_ID_HEADER: outcome.message_id})
    if status == Status.SHORT_CIRCUITED:
        return _short_circuited(engine, outcome)
    return _failed(outcome)


def _reply(outcome: Outcome) -> Response:
    headers = {MESSAGE_ID_HEADER: outcome.message_id}
    reply = outcome.reply
    if reply is None:
        return json_response({"message_id": outcome.message_id, "status": "replied"}, 200, headers)
    return Response(reply.body, 200, headers=headers, media_type=reply.content_type)


def _error_facts(outcome: Outcome) -> dict[str, Any]:
    error = dict(outcome.error or {})
    if not error.get("remedy"):
        error.pop("remedy", None)
    error.setdefault("party", None)
    error.setdefault("rule_id", None)
    error["message_id"] = outcome.message_id
    return error


def _failed(outcome: Outcome) -> Response:
    facts = _error_facts(outcome)
    reason = facts.pop("reason", None) or f"message {outcome.message_id} {outcome.status}"
    party = facts["party"]
    http_status, code = _FAILED_BY_PARTY.get(party, (500, "engine_error"))
    if party in ("his", "device") and facts.get("field") not in (None, "", WHOLE_BODY_FIELD):
        http_status, code = 422, "validation_failed"
    elif party in ("network", "third_party") and facts.get("condition") == "timeout":
        http_status, code = 504, "destination_timeout"
    return error_response(http_status, code, reason, headers={MESSAGE_ID_HEADER: outcome.message_id}, **facts)


def _short_circuited(engine: Engine, outcome: Outcome) -> Response:
    facts = _error_facts(outcome)
    facts.setdefault("destination", None)
    facts["state"] = facts.get("state") or "open"
    reason = facts.pop("reason", None) or f"destination {facts['destination']} is {facts['state']}"
    retry_after = _retry_after(engine, facts["destination"], facts["state"], facts.get("since"))
    headers = {MESSAGE_ID_HEADER: outcome.message_id, "Retry-After": str(retry_after)}
    return error_response(503, "destination_unavailable", reason, headers=headers, **facts)


def _retry_after(engine: Engine, destination: str | None, state: str, since: str | None) -> int:
    """Seconds until the breaker lets a probe through; a suspension has no end in sight,
    so HIS is told to ask again after the default."""
    if state != "open" or destination is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    timeout = _reset_timeout(engine, destination)
    if timeout is None:
        return DEFAULT_RETRY_AFTER_SECONDS
    elapsed = 0.0
    if since:
        try:
            elapsed = (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds()
        except (TypeError, ValueError):
            elapsed = 0.0
    return max(1, math.ceil(timeout - max(elapsed, 0.0)))


def _reset_timeout(engine: Engine, destination: str) -> float | None:
    for channel in engine.channels.values():
        for candidate in channel.destinations:
            if candidate.name == destination:
                return candidate.config.breaker.reset_timeout
    return None
