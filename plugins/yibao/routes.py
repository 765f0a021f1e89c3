"""`POST /api/v1/yibao/{infno}`: HIS sends only the business `input`, the engine adds the envelope.

The body is the transaction's input (`{"data": {...}}` for 2207), or the full form
`{"input": {...}, "insuplc_admdvs": "...", "opter": "...", "opter_name": "..."}`; the short
form takes `insuplc_admdvs`, `opter` and `opter_name` from the query string. The call runs
through the channel whose sync destination is a yibao adapter (`?channel=` picks one when
there are several), so storage, breakers and attribution apply as for any channel; the
answer is mapped exactly like `POST /api/v1/channels/{channel}`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.api.responses import error_response
from engine.api.routes_channels import BodyTooLarge, outcome_response, read_limited_body, too_large
from engine.message import Payload

if TYPE_CHECKING:
    from engine.runtime import Engine

ADAPTER_NAME = "yibao"
ENVELOPE_QUERY_FIELDS = ("insuplc_admdvs", "opter", "opter_name", "opter_type")


def yibao_routes(engine: Engine) -> list[BaseRoute]:
    endpoint = YibaoEndpoint(engine)
    return [Route("/yibao/{infno}", endpoint.post, methods=["POST"])]


class YibaoEndpoint:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def post(self, request: Request) -> Response:
        channel = self._channel(request.query_params.get("channel"))
        if isinstance(channel, Response):
            return channel
        limit = self.engine.config.api.max_body_bytes
        try:
            body = await read_limited_body(request, limit)
        except BodyTooLarge:
            return too_large(limit)
        call = _his_call(request, body)
        if isinstance(call, Response):
            return call
        caller = request.state.caller
        outcome = await self.engine.call(channel, Payload.from_json(call), caller=caller.name)
        return outcome_response(self.engine, outcome)

    def _channel(self, wanted: str | None) -> str | Response:
        candidates = sorted(
            name for name, channel in self.engine.channels.items()
            if channel.sync_destination is not None and channel.sync_destination.config.adapter == ADAPTER_NAME
        )
        if wanted is not None:
            if wanted in candidates:
                return wanted
            return error_response(404, "unknown_channel", f"no yibao channel named {wanted!r}",
                                  known_channels=candidates, party="his", rule_id="api.unknown_channel")
        if len(candidates) == 1:
            return candidates[0]
        reason = ("no channel has a sync yibao destination" if not candidates
                  else f"several yibao channels ({', '.join(candidates)}): name one with ?channel=")
        return error_response(404 if not candidates else 400, "yibao_channel", reason,
                              known_channels=candidates, party="his" if candidates else "engine",
                              rule_id="yibao.api.channel")


def _his_call(request: Request, body: bytes) -> dict[str, Any] | Response:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return error_response(400, "invalid_input", f"body: not JSON: {exc}", field="body", party="his",
                              rule_id="yibao.api.body")
    if not isinstance(parsed, dict):
        return error_response(400, "invalid_input", "body: must be a JSON object (the transaction's input)",
                              field="body", party="his", rule_id="yibao.api.body")
    infno = request.path_params["infno"]
    if "input" in parsed:
        return {**parsed, "infno": infno}
    call: dict[str, Any] = {"infno": infno, "input": parsed}
    for name in ENVELOPE_QUERY_FIELDS:
        value = request.query_params.get(name)
        if value:
            call[name] = value
    return call
