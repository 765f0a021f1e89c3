"""The HIS-facing HTTP API: a plain Starlette app over one running `Engine`.

Routes (all JSON; every error is `{"error": {"code", "reason", ...}}`):

    POST /api/v1/channels/{channel}                 his, operator   run a message
    GET  /api/v1/messages/{id}                      his, operator   status, no payloads
    GET  /api/v1/messages                           operator        listing, keys masked
    GET  /api/v1/messages/{id}/stages[/{name}]      operator        payloads, audited
    GET  /api/v1/messages/{id}/blobs/{ref}          operator        an attachment's bytes, audited
    POST /api/v1/messages/{id}/replay               operator
    GET  /api/v1/breakers                           operator
    POST /api/v1/breakers/{name}/suspend|resume     operator
    GET  /healthz  /readyz  /metrics                no token
    *    /api/v1/...                                his, operator   plugin routes

No middleware stack runs on the hot path: authentication is a wrapper on each core
endpoint, and only plugin routes sit behind the ASGI auth middleware.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from engine.api.auth import ANY_ROLE, OPERATOR_ONLY, BearerAuth, CallerEndpoint, TokenTable, guarded
from engine.api.responses import http_exception, shielded, unexpected_exception
from engine.api.routes_blobs import BlobEndpoints
from engine.api.routes_channels import ChannelEndpoint
from engine.api.routes_messages import MessageEndpoints
from engine.api.routes_operations import BreakerEndpoints, ProbeEndpoints

if TYPE_CHECKING:
    from engine.runtime import Engine

API_PREFIX = "/api/v1"


def create_app(engine: Engine, *, tokens: list[tuple[str, str, str]]) -> Starlette:
    """The API app for `engine`. `tokens` are (name, role, plaintext token) triples with
    role `his` or `operator`; only their SHA-256 hashes are kept."""
    table = TokenTable(tokens)
    channels = ChannelEndpoint(engine)
    messages = MessageEndpoints(engine)
    blobs = BlobEndpoints(engine)
    breakers = BreakerEndpoints(engine)
    probes = ProbeEndpoints(engine)

    def route(path: str, endpoint: CallerEndpoint, methods: list[str], roles: frozenset[str]) -> Route:
        return Route(API_PREFIX + path, guarded(table, roles, endpoint), methods=methods)

    routes: list[BaseRoute] = [
        route("/channels/{channel}", channels.post, ["POST"], ANY_ROLE),
        route("/messages", messages.listing, ["GET"], OPERATOR_ONLY),
        route("/messages/{message_id}", messages.status, ["GET"], ANY_ROLE),
        route("/messages/{message_id}/stages", messages.stages, ["GET"], OPERATOR_ONLY),
        route("/messages/{message_id}/stages/{name}", messages.stage, ["GET"], OPERATOR_ONLY),
        route("/messages/{message_id}/replay", messages.replay, ["POST"], OPERATOR_ONLY),
        route("/messages/{message_id}/blobs/{ref}", blobs.blob, ["GET"], OPERATOR_ONLY),
        route("/breakers", breakers.listing, ["GET"], OPERATOR_ONLY),
        route("/breakers/{name}/suspend", breakers.suspend, ["POST"], OPERATOR_ONLY),
        route("/breakers/{name}/resume", breakers.resume, ["POST"], OPERATOR_ONLY),
        Route("/healthz", probes.healthz, methods=["GET"]),
        Route("/readyz", shielded(probes.readyz), methods=["GET"]),
        Route("/metrics", shielded(probes.metrics), methods=["GET"]),
    ]
    plugin_routes = _plugin_routes(engine)
    if plugin_routes:
        routes.append(
            PluginMount(API_PREFIX, routes=plugin_routes, middleware=[Middleware(BearerAuth, tokens=table)])
        )
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_exception, Exception: unexpected_exception},
    )
    app.state.engine = engine
    return app


class PluginMount(Mount):
    """A mount that claims a path only when one of its routes does. A plain Mount claims
    every path under its prefix, so a wrong method on a core route would be answered by
    the mount (401, then 404) instead of 405, and an unknown path would ask for a token."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is Match.NONE:
            return match, child_scope
        inner_scope = {**scope, **child_scope}
        best = Match.NONE
        for route in self.routes:
            inner, _ = route.matches(inner_scope)
            if inner is Match.FULL:
                return Match.FULL, child_scope
            if inner is Match.PARTIAL:
                best = Match.PARTIAL
        return best, child_scope if best is not Match.NONE else {}


def _plugin_routes(engine: Engine) -> list[BaseRoute]:
    contributed: Iterable[list[BaseRoute] | None] = engine.pm.hook.hisbridge_register_routes(engine=engine)
    return [route for routes in contributed if routes for route in routes]
