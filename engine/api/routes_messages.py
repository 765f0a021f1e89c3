"""Message reads and replay.

`GET /messages/{id}` (HIS or operator) shows status, verdict and deliveries, never payloads.
Payloads are only under `/stages` (operator), and every such read is written to the audit
table with the token's name and the client address. Listings and status views mask PHI in
correlation keys, business keys and reasons with the same redaction the logs use.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from engine.api.auth import Caller
from engine.api.responses import error_response, json_response, payload_json
from engine.logging import mask_value, redact
from engine.message import Party, Payload, StageName, Status
from engine.runtime import UnknownChannel
from engine.store.records import DeliveryView, MessageView

if TYPE_CHECKING:
    from engine.runtime import Engine

MAX_LIST_LIMIT = 500
DEFAULT_LIST_LIMIT = 50
ATTEMPT_FIELDS = ("number", "started_at", "duration_ms", "outcome", "http_status", "ack_code",
                  "party", "rule_id", "replay_of")
STAGE_NAMES = frozenset(s.value for s in StageName)


class BadQuery(ValueError):
    pass


class MessageEndpoints:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.redact_fields = tuple(engine.config.logging.redact_fields)
        self._masked_keys = frozenset(f.lower() for f in self.redact_fields)

    # --- status (his, operator) ---------------------------------------------------------

    async def status(self, request: Request, caller: Caller) -> Response:
        message_id = request.path_params["message_id"]
        view = await self.engine.store.get_message(message_id)
        if view is None:
            return no_message(message_id)
        return json_response(self._message_json(view, with_deliveries=True))

    # --- listing (operator) -------------------------------------------------------------

    async def listing(self, request: Request, caller: Caller) -> Response:
        try:
            filters = _list_filters(request)
        except BadQuery as exc:
            return error_response(400, "bad_query", str(exc))
        views = await self.engine.store.list_messages(**filters)
        return json_response({
            "messages": [self._message_json(view, with_deliveries=False) for view in views],
            "count": len(views),
            "limit": filters["limit"],
        })

    # --- payloads (operator, audited) ---------------------------------------------------

    async def stages(self, request: Request, caller: Caller) -> Response:
        message_id = request.path_params["message_id"]
        view = await self.engine.store.get_message(message_id, with_stages=True)
        if view is None:
            return no_message(message_id)
        await self._audit(request, caller, message_id)
        return json_response({
            "message_id": message_id,
            "stages": [_stage_json(stage) for stage in view.stages],
        })

    async def stage(self, request: Request, caller: Caller) -> Response:
        message_id = request.path_params["message_id"]
        name = request.path_params["name"]
        if name not in STAGE_NAMES:
            return error_response(
                404, "unknown_stage", f"no stage kind {name!r}; stages are {', '.join(sorted(STAGE_NAMES))}",
                message_id=message_id,
            )
        destination = request.query_params.get("destination")
        try:
            attempt = _optional_int(request.query_params.get("attempt"), "attempt")
        except BadQuery as exc:
            return error_response(400, "bad_query", str(exc))
        if await self.engine.store.get_message(message_id) is None:
            return no_message(message_id)
        payload = await self.engine.store.get_stage(message_id, name, delivery=destination, attempt=attempt)
        if payload is None:
            return error_response(
                404, "no_stage", f"message {message_id} has no stored {name} stage"
                + (f" for destination {destination}" if destination else "")
                + (f" at attempt {attempt}" if attempt is not None else ""),
                message_id=message_id,
            )
        await self._audit(request, caller, message_id)
        return json_response({"message_id": message_id, "name": name, **payload_json(payload),
                              "headers": dict(payload.headers)})

    async def _audit(self, request: Request, caller: Caller, message_id: str) -> None:
        remote = request.client.host if request.client else "unknown"
        await self.engine.store.audit_read(who=caller.name, message_id=message_id, action="api", remote=remote)

    # --- replay (operator) --------------------------------------------------------------

    async def replay(self, request: Request, caller: Caller) -> Response:
        message_id = request.path_params["message_id"]
        try:
            outcome = await self.engine.replay(message_id, by=caller.name)
        except UnknownChannel as exc:
            return error_response(
                409, "unknown_channel",
                f"message {message_id} came in on channel {exc.name!r}, which is no longer configured",
                message_id=message_id,
            )
        except LookupError as exc:
            return error_response(404, "not_replayable", str(exc), message_id=message_id)
        body: dict[str, Any] = {"replay_of": message_id, "message_id": outcome.message_id,
                                "status": outcome.status}
        if outcome.error:
            body["error"] = self._masked_error(outcome.error)
        return json_response(body, 200)

    # --- shaping ------------------------------------------------------------------------

    def _message_json(self, view: MessageView, *, with_deliveries: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": view.id,
            "channel": view.channel,
            "source": view.source,
            "received_at": view.received_at,
            "status": view.status,
            "party": view.party,
            "rule_id": view.rule_id,
            "reason": self._masked(view.reason),
            "correlation_key": self._masked(view.correlation_key),
            "business_keys": {name: self._masked_key(name, value) for name, value in view.business_keys.items()},
            "parent_id": view.parent_id,
            "content_type": view.content_type,
        }
        if with_deliveries:
            body["deliveries"] = [self._delivery_json(d) for d in view.deliveries]
        else:
            body["deliveries"] = [{"destination": d.destination, "status": d.status, "attempts": d.attempts}
                                  for d in view.deliveries]
        return body

    def _delivery_json(self, delivery: DeliveryView) -> dict[str, Any]:
        return {
            "destination": delivery.destination,
            "delivery": delivery.delivery,
            "status": delivery.status,
            "attempts": delivery.attempts,
            "next_attempt_at": delivery.next_attempt_at,
            "party": delivery.party,
            "rule_id": delivery.rule_id,
            "reason": self._masked(delivery.reason),
            "attempt_rows": [{key: row.get(key) for key in ATTEMPT_FIELDS} for row in delivery.attempt_rows],
        }

    def _masked(self, text: str | None) -> str | None:
        return None if text is None else redact(text, self.redact_fields)

    def _masked_key(self, name: str, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            return [self._masked_one(name, one) for one in value]
        return self._masked_one(name, value)

    def _masked_one(self, name: str, value: str) -> str:
        return mask_value(value) if name.lower() in self._masked_keys else redact(value, self.redact_fields)

    def _masked_error(self, error: dict[str, Any]) -> dict[str, Any]:
        return {k: self._masked(v) if k == "reason" and isinstance(v, str) else v for k, v in error.items()}


def no_message(message_id: str) -> Response:
    return error_response(404, "unknown_message", f"no message {message_id}", message_id=message_id)


def _stage_json(stage: dict[str, Any]) -> dict[str, Any]:
    payload = Payload(stage["body"], stage["content_type"] or "application/octet-stream")
    return {
        "name": stage["name"],
        "destination": stage.get("destination"),
        "attempt": stage.get("attempt"),
        "step": stage.get("step"),
        "created_at": stage.get("created_at"),
        "headers": stage.get("headers") or {},
        **payload_json(payload),
    }


def _list_filters(request: Request) -> dict[str, Any]:
    query = request.query_params
    filters: dict[str, Any] = {
        "channel": query.get("channel") or None,
        "limit": _optional_int(query.get("limit"), "limit") or DEFAULT_LIST_LIMIT,
    }
    if not 0 < filters["limit"] <= MAX_LIST_LIMIT:
        raise BadQuery(f"limit must be between 1 and {MAX_LIST_LIMIT}")
    status = query.get("status")
    if status:
        if status not in {s.value for s in Status}:
            raise BadQuery(f"status {status!r} is not one of {', '.join(s.value for s in Status)}")
        filters["status"] = status
    party = query.get("party")
    if party:
        if party not in {p.value for p in Party}:
            raise BadQuery(f"party {party!r} is not one of {', '.join(p.value for p in Party)}")
        filters["party"] = party
    key = query.get("key")
    if key:
        name, sep, value = key.partition(":")
        if not sep or not name or not value:
            raise BadQuery("key must be name:value, e.g. key=setl_id:S123")
        filters["key"] = (name, value)
    for bound in ("since", "until"):
        if query.get(bound):
            filters[bound] = _datetime(query[bound], bound)
    return filters


def _optional_int(text: str | None, name: str) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise BadQuery(f"{name} must be an integer, not {text!r}") from None


def _datetime(text: str, name: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(f"{name} must be an ISO 8601 time such as 2026-01-31T08:00:00+08:00, not {text!r}") from None
